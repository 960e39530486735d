//! The application context: what a use case runs on ([`Services`]), the configuration read
//! once per cold start, and redaction of what is stored. It depends only on the ports
//! (store, queue, Stripe, metrics, clock) and the domain; how the context is built from the
//! environment, with which adapters, is the runtime's business (`crate::runtime`).

pub mod config;
pub mod redact;
pub mod secrets;

use crate::app::config::{Config, KeyMode};
use crate::app::secrets::SecretSource;
use crate::domain::clock::Clock;
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::store::Table;
use crate::stripe::api::StripeApi;
use std::sync::Arc;

/// The ports a use case runs on. Cheap to clone; built once per process (`crate::runtime`
/// builds it from the environment; tests from memory adapters).
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub table: Arc<dyn Table>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// The Stripe API, when a secret key is configured.
    pub stripe: Option<Arc<dyn StripeApi>>,
    /// What the billing rules count (CloudWatch metrics in AWS).
    pub metrics: Arc<dyn Metrics>,
    /// In AWS: the Stripe secrets of Secrets Manager, re-read after their TTL; the webhook
    /// secrets and the API key are taken from here, not from `config`, when it is set.
    pub secrets: Option<Arc<dyn SecretSource>>,
}

impl Services {
    /// The webhook secrets to verify a delivery with: the secret source's current ones
    /// (after a rotation, the new ones within the TTL), else the configured ones.
    pub async fn webhook_secrets(&self) -> Vec<secrecy::SecretString> {
        match &self.secrets {
            Some(source) => source.current().await.webhook_secrets(),
            None => self.config.webhook_secrets.clone(),
        }
    }

    /// The mode of the Stripe key in use now: in AWS that of the key last read from Secrets
    /// Manager (a rotation from a test key to a live one switches it within the TTL), else
    /// that of the configured key. `None` when no key is configured.
    pub async fn key_mode(&self) -> Option<KeyMode> {
        match &self.secrets {
            Some(source) => source.current().await.key_mode(),
            None => self.config.key_mode(),
        }
    }
}
