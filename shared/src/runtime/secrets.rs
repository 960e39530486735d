//! The two Stripe secrets of a deployment, read from Secrets Manager and kept for a TTL
//! (`STRIPE_SECRETS_TTL_SECONDS`, default five minutes: `config::DEFAULT_SECRETS_TTL_SECS`) instead of once per cold start, so
//! a rotated webhook secret or API key reaches warm functions without a redeploy.
//!
//! The first read happens at cold start and failing it fails the cold start (a function
//! must not run without its secrets). A later refresh that fails keeps the secrets last
//! read and logs a warning: a Secrets Manager hiccup never turns into refused webhooks.
//! One refresh at a time: concurrent invocations of one process wait for it.

use crate::app::secrets::{SECRET_NAMES, SecretSource, StripeSecrets};
use crate::stripe::api::SecretKeySource;
use async_trait::async_trait;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
#[error("the Stripe secret {arn} could not be read: {reason}")]
pub struct SecretError {
    pub arn: String,
    pub reason: String,
}

/// The secret named by an ARN, re-read when older than the TTL.
pub struct CachedSecrets {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    ttl: Duration,
    /// When to read again, and the secrets last read.
    state: Mutex<(Instant, Arc<StripeSecrets>)>,
}

/// After a failed refresh, the next attempt waits this long (or the TTL, if shorter), so an
/// outage of Secrets Manager costs one slow call per interval, not one per invocation.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

impl std::fmt::Debug for CachedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedSecrets")
            .field("arn", &self.arn)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CachedSecrets {
    /// Reads the secret now (cold start); an error here fails the cold start.
    pub async fn load(
        aws: &aws_config::SdkConfig,
        arn: &str,
        ttl: Duration,
    ) -> Result<Self, SecretError> {
        let client = aws_sdk_secretsmanager::Client::new(aws);
        let first = read(&client, arn).await?;
        Ok(Self {
            client,
            arn: arn.to_owned(),
            ttl,
            state: Mutex::new((Instant::now() + ttl, Arc::new(first))),
        })
    }

    /// The secrets, re-read first when the copy is older than the TTL.
    pub async fn current(&self) -> Arc<StripeSecrets> {
        let mut state = self.state.lock().await;
        if Instant::now() >= state.0 {
            match read(&self.client, &self.arn).await {
                Ok(fresh) => *state = (Instant::now() + self.ttl, Arc::new(fresh)),
                Err(e) => {
                    // Keep serving the last secrets; try again after a short pause.
                    state.0 = Instant::now() + self.ttl.min(RETRY_AFTER_FAILURE);
                    tracing::warn!(error = %e, "Stripe secrets refresh failed; keeping the last ones");
                }
            }
        }
        state.1.clone()
    }
}

#[async_trait]
impl SecretSource for CachedSecrets {
    async fn current(&self) -> Arc<StripeSecrets> {
        CachedSecrets::current(self).await
    }
}

#[async_trait]
impl SecretKeySource for CachedSecrets {
    async fn secret_key(&self) -> Option<SecretString> {
        self.current().await.secret_key()
    }
}

/// Reads the JSON secret `{"STRIPE_SECRET_KEY": …, "STRIPE_WEBHOOK_SECRET": …}`.
async fn read(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<StripeSecrets, SecretError> {
    let fail = |reason: String| SecretError {
        arn: arn.to_owned(),
        reason,
    };
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| fail(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string()))?;
    let text = out
        .secret_string()
        .ok_or_else(|| fail("the secret has no string value".into()))?;
    // The error never quotes the secret: serde's message names a position, not the content.
    let all: HashMap<String, String> = serde_json::from_str(text)
        .map_err(|e| fail(format!("not a JSON object of strings ({})", category(&e))))?;
    Ok(StripeSecrets {
        values: all
            .into_iter()
            .filter(|(k, _)| SECRET_NAMES.contains(&k.as_str()))
            .collect(),
    })
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "io",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "data",
        serde_json::error::Category::Eof => "eof",
    }
}
