//! The Stripe secrets a deployment may change under a running function (a rotated webhook
//! secret or API key): what one read of them holds, and the port that hands out the current
//! read. The Secrets Manager adapter that keeps them for a TTL is `crate::runtime::secrets`.

use crate::app::config::{KeyMode, split_secrets};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Arc;

/// The only names a deployment takes from its Secrets Manager secret: the two Stripe
/// secrets, and the stack's own secret that signs Payment Link references (optional).
pub const SECRET_NAMES: [&str; 3] = [
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "CLIENT_REFERENCE_SECRET",
];

/// What one read of the secret gave.
#[derive(Debug, Clone, Default)]
pub struct StripeSecrets {
    /// The raw values by name (only [`SECRET_NAMES`]), for the configuration.
    pub values: HashMap<String, String>,
}

impl StripeSecrets {
    pub fn secret_key(&self) -> Option<SecretString> {
        self.values
            .get("STRIPE_SECRET_KEY")
            .filter(|v| !v.trim().is_empty())
            .map(|v| SecretString::from(v.trim().to_owned()))
    }
    /// The mode of the key of this read: derived again from each refresh, so a key rotated
    /// from test to live switches the mode with it.
    pub fn key_mode(&self) -> Option<KeyMode> {
        self.secret_key().map(|k| KeyMode::of(k.expose_secret()))
    }
    pub fn webhook_secrets(&self) -> Vec<SecretString> {
        self.values
            .get("STRIPE_WEBHOOK_SECRET")
            .map(|v| split_secrets(v))
            .unwrap_or_default()
    }
}

/// Where the current Stripe secrets come from when they can change under a running process.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The secrets as they are now (a source may re-read them first).
    async fn current(&self) -> Arc<StripeSecrets>;
}
