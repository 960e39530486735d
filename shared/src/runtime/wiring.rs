//! How the application context is built in a process: from the environment (AWS adapters
//! built on first use, the Stripe secrets from Secrets Manager), on given AWS clients, or
//! over memory adapters. Inherent methods of [`Services`], declared here so that the
//! context itself (`crate::app`) knows no adapter.

use crate::app::Services;
use crate::app::config::{Config, ConfigError};
use crate::domain::clock::SystemClock;
use crate::metrics::emf::EmfMetrics;
use crate::queue::memory::MemoryQueue;
use crate::queue::sqs::SqsQueue;
use crate::runtime::lazy::{AwsConfig, LazyQueue, LazyTable};
use crate::runtime::secrets::{CachedSecrets, SecretError};
use crate::store::dynamo::DynamoTable;
use crate::store::memory::MemoryTable;
use crate::stripe::api::{HttpStripe, RetryPolicy, StripeApi};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl Services {
    /// AWS adapters from the environment: `BILLING_TABLE`, `FULFILMENT_QUEUE_URL`, and the
    /// SDK's own settings (`AWS_REGION`, `AWS_ENDPOINT_URL` for moto).
    /// In AWS the two Stripe secrets come from the Secrets Manager secret named by
    /// `STRIPE_SECRET_ARN`, read here and again whenever the copy is older than
    /// `STRIPE_SECRETS_TTL_SECONDS` ([`crate::runtime::secrets`]); without it they come from
    /// the environment.
    ///
    /// Nothing else is built here: the SDK clients and the Stripe client's connections are
    /// built by their first call ([`crate::runtime::lazy`]), so a cold start pays only for what
    /// its first invocation uses.
    pub async fn from_env() -> Result<Self, StartupError> {
        let env = |name: &str| std::env::var(name).ok();
        match env("STRIPE_SECRET_ARN").filter(|v| !v.is_empty()) {
            Some(arn) => Self::with_secret_arn(aws_config::load_from_env().await, &arn, env).await,
            None => {
                let config = Config::from_lookup(env)?;
                Ok(Self::lazy(config, AwsConfig::default(), None))
            }
        }
    }

    /// As deployed: the configuration from `env`, the Stripe secrets from the Secrets
    /// Manager secret `arn` (kept for the configured TTL), AWS clients from `aws`.
    pub async fn with_secret_arn(
        aws: aws_config::SdkConfig,
        arn: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StartupError> {
        // The TTL is configuration, read before the secret it applies to.
        let ttl = Config::from_lookup(&env)?.secrets_ttl_secs;
        let ttl = std::time::Duration::from_secs(u64::try_from(ttl).unwrap_or(0));
        let secrets = CachedSecrets::load(&aws, arn, ttl).await?;
        let first = secrets.current().await;
        let config =
            Config::from_lookup(|name| first.values.get(name).cloned().or_else(|| env(name)))?;
        Ok(Self::lazy(
            config,
            AwsConfig::loaded(aws),
            Some(Arc::new(secrets)),
        ))
    }

    fn lazy(config: Config, aws: AwsConfig, secrets: Option<Arc<CachedSecrets>>) -> Self {
        let aws = Arc::new(aws);
        let table = LazyTable::new(aws.clone(), config.table_name.clone());
        let queue = LazyQueue::new(aws, config.queue_url.clone().unwrap_or_default());
        let stripe = match &secrets {
            // The key is asked of the cache on each call, so a rotated key is picked up.
            Some(cache) if config.stripe_configured() => Some(HttpStripe::with_key_source(
                &config.stripe_api_base,
                cache.clone(),
                RetryPolicy::default(),
            )),
            _ => stripe_client(&config),
        };
        Self {
            config: Arc::new(config),
            table: Arc::new(table),
            queue: Arc::new(queue),
            clock: Arc::new(SystemClock),
            stripe: stripe.map(|s| Arc::new(s) as Arc<dyn StripeApi>),
            metrics: Arc::new(EmfMetrics),
            secrets: secrets.map(|s| s as _),
        }
    }

    pub fn on_aws(config: Config, aws: &aws_config::SdkConfig) -> Self {
        let table = DynamoTable::new(
            aws_sdk_dynamodb::Client::new(aws),
            config.table_name.clone(),
        );
        let queue = SqsQueue::new(
            aws_sdk_sqs::Client::new(aws),
            config.queue_url.clone().unwrap_or_default(),
        );
        let stripe = stripe_client(&config).map(|s| Arc::new(s) as Arc<dyn StripeApi>);
        Self {
            config: Arc::new(config),
            table: Arc::new(table),
            queue: Arc::new(queue),
            clock: Arc::new(SystemClock),
            stripe,
            metrics: Arc::new(EmfMetrics),
            secrets: None,
        }
    }

    /// In-memory adapters, for unit tests and benchmarks.
    pub fn in_memory(config: Config) -> Self {
        Self {
            stripe: stripe_client(&config).map(|s| Arc::new(s) as Arc<dyn StripeApi>),
            config: Arc::new(config),
            table: Arc::new(MemoryTable::new()),
            queue: Arc::new(MemoryQueue::default()),
            clock: Arc::new(SystemClock),
            metrics: Arc::new(EmfMetrics),
            secrets: None,
        }
    }
}

/// The HTTP Stripe client for the configured key and base URL, if a key is configured.
pub fn stripe_client(config: &Config) -> Option<HttpStripe> {
    let key = config.stripe_secret_key.clone()?;
    Some(HttpStripe::new(
        &config.stripe_api_base,
        key,
        RetryPolicy::default(),
    ))
}
