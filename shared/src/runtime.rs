//! What every function builds once per cold start: config, clients, clock.

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::queue::Queue;
use crate::queue::memory::MemoryQueue;
use crate::queue::sqs::SqsQueue;
use crate::store::Table;
use crate::store::dynamo::DynamoTable;
use crate::store::memory::MemoryTable;
use std::sync::Arc;

/// The ports a use case runs on. Cheap to clone; built once per process.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub table: Arc<dyn Table>,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Services {
    /// AWS adapters from the environment: `BILLING_TABLE`, `FULFILMENT_QUEUE_URL`, and the
    /// SDK's own settings (`AWS_REGION`, `AWS_ENDPOINT_URL` for moto).
    pub async fn from_env() -> Result<Self, StartupError> {
        let config = Config::from_env()?;
        let aws = aws_config::load_from_env().await;
        Ok(Self::on_aws(config, &aws))
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
        Self {
            config: Arc::new(config),
            table: Arc::new(table),
            queue: Arc::new(queue),
            clock: Arc::new(SystemClock),
        }
    }

    /// In-memory adapters, for unit tests and benchmarks.
    pub fn in_memory(config: Config) -> Self {
        Self {
            config: Arc::new(config),
            table: Arc::new(MemoryTable::new()),
            queue: Arc::new(MemoryQueue::default()),
            clock: Arc::new(SystemClock),
        }
    }
}

/// JSON logs for CloudWatch; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .try_init();
}
