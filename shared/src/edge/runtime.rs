//! What every function builds once per cold start (config, clients, clock), and the
//! whole `main` of an HTTP function ([`run_http`]) and of the queue worker ([`run_sqs`]).

use crate::domain::clock::{Clock, SystemClock};
use crate::edge::config::{Config, ConfigError};
use crate::edge::lazy::{AwsConfig, LazyQueue, LazyTable};
use crate::edge::logging::init_tracing;
use crate::queue::Queue;
use crate::queue::memory::MemoryQueue;
use crate::queue::sqs::SqsQueue;
use crate::store::Table;
use crate::store::dynamo::DynamoTable;
use crate::store::memory::MemoryTable;
use crate::stripe::api::{HttpStripe, RetryPolicy, StripeApi};
use std::collections::HashMap;
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
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the Stripe secret {arn} could not be read: {reason}")]
    Secret { arn: String, reason: String },
}

/// The only names a deployment takes from its Secrets Manager secret.
pub const SECRET_NAMES: [&str; 2] = ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"];

/// Reads the JSON secret `{"STRIPE_SECRET_KEY": …, "STRIPE_WEBHOOK_SECRET": …}`.
async fn read_stripe_secret(
    aws: &aws_config::SdkConfig,
    arn: &str,
) -> Result<HashMap<String, String>, StartupError> {
    let fail = |reason: String| StartupError::Secret {
        arn: arn.to_owned(),
        reason,
    };
    let out = aws_sdk_secretsmanager::Client::new(aws)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| fail(aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string()))?;
    let text = out
        .secret_string()
        .ok_or_else(|| fail("the secret has no string value".into()))?;
    // The error never quotes the secret: serde's message names a position, not the content.
    let all: HashMap<String, String> = serde_json::from_str(text).map_err(|e| {
        fail(format!(
            "not a JSON object of strings ({})",
            e.classify_name()
        ))
    })?;
    Ok(all
        .into_iter()
        .filter(|(k, _)| SECRET_NAMES.contains(&k.as_str()))
        .collect())
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}
impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        }
    }
}

impl Services {
    /// AWS adapters from the environment: `BILLING_TABLE`, `FULFILMENT_QUEUE_URL`, and the
    /// SDK's own settings (`AWS_REGION`, `AWS_ENDPOINT_URL` for moto).
    /// In AWS the two Stripe secrets come from the Secrets Manager secret named by
    /// `STRIPE_SECRET_ARN`, read once here; without it they come from the environment.
    ///
    /// Nothing else is built here: the AWS configuration, the SDK clients and the Stripe
    /// client are built by their first call ([`crate::edge::lazy`]), so a cold start pays
    /// only for what its first invocation uses.
    pub async fn from_env() -> Result<Self, StartupError> {
        let (aws, secrets) = match std::env::var("STRIPE_SECRET_ARN")
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(arn) => {
                let aws = aws_config::load_from_env().await;
                let secrets = read_stripe_secret(&aws, &arn).await?;
                (AwsConfig::loaded(aws), secrets)
            }
            None => (AwsConfig::default(), HashMap::new()),
        };
        let config = Config::from_lookup(|name| {
            secrets
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        })?;
        let aws = Arc::new(aws);
        let table = LazyTable::new(aws.clone(), config.table_name.clone());
        let queue = LazyQueue::new(aws, config.queue_url.clone().unwrap_or_default());
        let stripe = stripe_client(&config).map(|s| Arc::new(s) as Arc<dyn StripeApi>);
        Ok(Self {
            config: Arc::new(config),
            table: Arc::new(table),
            queue: Arc::new(queue),
            clock: Arc::new(SystemClock),
            stripe,
        })
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
    let services: &'static Services = Box::leak(Box::new(Services::from_env().await?));
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
    let services: &'static Services = Box::leak(Box::new(Services::from_env().await?));
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        handler(services, event)
    }))
    .await
}
