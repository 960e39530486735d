//! The AWS adapters of a function, built on their first call instead of at start-up.
//!
//! A cold start answers its first invocation sooner when it builds nothing that
//! invocation does not use: loading the AWS configuration (credentials chain, region, the
//! HTTPS client and its root certificates) and building the SDK clients is done by the
//! first store or queue call, once, and shared by every later call. A function whose path
//! never touches the queue never builds an SQS client.

use crate::queue::sqs::SqsQueue;
use crate::queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage};
use crate::store::dynamo::DynamoTable;
use crate::store::{Cond, Index, Item, Key, Op, Page, StoreError, Table, Write};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The AWS SDK configuration, loaded from the environment at most once per process.
#[derive(Debug, Default)]
pub struct AwsConfig(OnceCell<aws_config::SdkConfig>);

impl AwsConfig {
    /// One already loaded (start-up needed it, e.g. to read the Stripe secret).
    pub fn loaded(config: aws_config::SdkConfig) -> Self {
        Self(OnceCell::new_with(Some(config)))
    }
    pub async fn get(&self) -> &aws_config::SdkConfig {
        self.0.get_or_init(aws_config::load_from_env).await
    }
}

/// The DynamoDB table, its client built by the first call.
pub struct LazyTable {
    aws: Arc<AwsConfig>,
    name: String,
    table: OnceCell<DynamoTable>,
}

impl LazyTable {
    pub fn new(aws: Arc<AwsConfig>, name: String) -> Self {
        Self {
            aws,
            name,
            table: OnceCell::new(),
        }
    }
    async fn table(&self) -> &DynamoTable {
        self.table
            .get_or_init(|| async {
                let client = aws_sdk_dynamodb::Client::new(self.aws.get().await);
                DynamoTable::new(client, self.name.clone())
            })
            .await
    }
}

#[async_trait]
impl Table for LazyTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.table().await.get(key).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.table().await.query(pk, sk_prefix).await
    }
    async fn query_index(
        &self,
        index: &Index,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.table()
            .await
            .query_index(index, pk, limit, after)
            .await
    }
    async fn query_page(
        &self,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.table()
            .await
            .query_page(pk, sk_prefix, limit, after)
            .await
    }
    async fn put(&self, key: &Key, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.table().await.put(key, item, cond).await
    }
    async fn update(
        &self,
        key: &Key,
        ops: Vec<Op>,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        self.table().await.update(key, ops, cond).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.table().await.transact(writes).await
    }
}

/// The SQS queue, its client built by the first call.
pub struct LazyQueue {
    aws: Arc<AwsConfig>,
    url: String,
    queue: OnceCell<SqsQueue>,
}

impl LazyQueue {
    pub fn new(aws: Arc<AwsConfig>, url: String) -> Self {
        Self {
            aws,
            url,
            queue: OnceCell::new(),
        }
    }
    async fn queue(&self) -> &SqsQueue {
        self.queue
            .get_or_init(|| async {
                let client = aws_sdk_sqs::Client::new(self.aws.get().await);
                SqsQueue::new(client, self.url.clone())
            })
            .await
    }
}

#[async_trait]
impl Queue for LazyQueue {
    async fn send(&self, message: &OutgoingMessage) -> Result<(), QueueError> {
        self.queue().await.send(message).await
    }
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.queue().await.receive(max, wait).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.queue().await.delete(receipt).await
    }
}
