//! What every function builds once per cold start (config, clients, clock), and the
//! whole `main` of an HTTP function ([`run_http`]) and of the queue worker ([`run_sqs`]).

use crate::domain::clock::{Clock, SystemClock};
use crate::edge::config::{Config, ConfigError};
use crate::edge::lazy::{AwsConfig, LazyQueue, LazyTable};
use crate::edge::logging::init_tracing;
use crate::edge::secrets::{CachedSecrets, SecretError};
use crate::queue::Queue;
use crate::queue::memory::MemoryQueue;
use crate::queue::sqs::SqsQueue;
use crate::store::Table;
use crate::store::dynamo::DynamoTable;
use crate::store::memory::MemoryTable;
use crate::stripe::api::{HttpStripe, RetryPolicy, StripeApi};
use std::sync::Arc;

/// The ports a use case runs on. Cheap to clone; built once per process.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub table: Arc<dyn Table>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// The Stripe API, when a secret key is configured.
    pub stripe: Option<Arc<dyn StripeApi>>,
    /// In AWS: the Stripe secrets of Secrets Manager, re-read after their TTL; the webhook
    /// secrets and the API key are taken from here, not from `config`, when it is set.
    pub secrets: Option<Arc<CachedSecrets>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

pub use crate::edge::secrets::SECRET_NAMES;

impl Services {
    /// AWS adapters from the environment: `BILLING_TABLE`, `FULFILMENT_QUEUE_URL`, and the
    /// SDK's own settings (`AWS_REGION`, `AWS_ENDPOINT_URL` for moto).
    /// In AWS the two Stripe secrets come from the Secrets Manager secret named by
    /// `STRIPE_SECRET_ARN`, read here and again whenever the copy is older than
    /// `STRIPE_SECRETS_TTL_SECONDS` ([`crate::edge::secrets`]); without it they come from
    /// the environment.
    ///
    /// Nothing else is built here: the SDK clients and the Stripe client's connections are
    /// built by their first call ([`crate::edge::lazy`]), so a cold start pays only for what
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
            secrets,
        }
    }

    /// The webhook secrets to verify a delivery with: Secrets Manager's current ones (after
    /// a rotation, the new ones within the TTL), else the configured ones.
    pub async fn webhook_secrets(&self) -> Vec<secrecy::SecretString> {
        match &self.secrets {
            Some(cache) => cache.current().await.webhook_secrets(),
            None => self.config.webhook_secrets.clone(),
        }
    }

    /// The mode of the Stripe key in use now: in AWS that of the key last read from Secrets
    /// Manager (a rotation from a test key to a live one switches it within the TTL), else
    /// that of the configured key. `None` when no key is configured.
    pub async fn key_mode(&self) -> Option<crate::edge::config::KeyMode> {
        match &self.secrets {
            Some(cache) => cache.current().await.key_mode(),
            None => self.config.key_mode(),
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

/// The services of this process, built once and kept for its life. A bad configuration (a
/// catalog that does not parse, an unreadable secret) fails the cold start with one log
/// line that says what and where, and the function serves nothing until it is fixed.
async fn cold_start() -> Result<&'static Services, StartupError> {
    match Services::from_env().await {
        Ok(services) => Ok(Box::leak(Box::new(services))),
        Err(e) => {
            tracing::error!(error = %e, "cold start failed: the function serves nothing until this is fixed");
            Err(e)
        }
    }
}

/// The whole `main` of an HTTP function: tracing, services built once (and kept for the
/// life of the process; their clients on first use), then the Lambda runtime loop.
pub async fn run_http<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(&'static Services, lambda_http::Request) -> Fut,
    Fut: std::future::Future<
            Output = Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>,
        > + Send,
{
    init_tracing();
    let services = cold_start().await?;
    lambda_http::run(lambda_http::service_fn(move |req| handler(services, req))).await
}

/// The whole `main` of an SQS-fed function: tracing, services built once, then the Lambda
/// runtime loop over `handler`.
pub async fn run_sqs<E, R, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    E: serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + Send + 'static,
    F: Fn(&'static Services, lambda_runtime::LambdaEvent<E>) -> Fut,
    Fut: std::future::Future<Output = Result<R, lambda_runtime::Error>> + Send,
{
    init_tracing();
    let services = cold_start().await?;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        handler(services, event)
    }))
    .await
}
