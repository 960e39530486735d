//! Store and queue wrappers that add a fixed delay to every call, as a network round trip
//! to DynamoDB or SQS does: intake's latency on them shows what its sequential calls cost
//! in AWS, without AWS.

use async_trait::async_trait;
use billing_core::queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage};
use billing_core::store::{Cond, Index, Item, Key, Op, Page, StoreError, Table, Write};
use std::time::Duration;

pub struct Delayed<T> {
    pub inner: T,
    pub delay: Duration,
}

impl<T> Delayed<T> {
    pub fn new(inner: T, delay: Duration) -> Self {
        Self { inner, delay }
    }
    async fn wait(&self) {
        tokio::time::sleep(self.delay).await;
    }
}

#[async_trait]
impl<T: Table> Table for Delayed<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.wait().await;
        self.inner.get(key).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.wait().await;
        self.inner.query(pk, sk_prefix).await
    }
    async fn query_index(
        &self,
        index: &Index,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.wait().await;
        self.inner.query_index(index, pk, limit, after).await
    }
    async fn query_page(
        &self,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.wait().await;
        self.inner.query_page(pk, sk_prefix, limit, after).await
    }
    async fn put(&self, key: &Key, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.wait().await;
        self.inner.put(key, item, cond).await
    }
    async fn update(
        &self,
        key: &Key,
        ops: Vec<Op>,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        self.wait().await;
        self.inner.update(key, ops, cond).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.wait().await;
        self.inner.transact(writes).await
    }
}

#[async_trait]
impl<Q: Queue> Queue for Delayed<Q> {
    async fn send(&self, message: &OutgoingMessage) -> Result<(), QueueError> {
        self.wait().await;
        self.inner.send(message).await
    }
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.wait().await;
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.wait().await;
        self.inner.delete(receipt).await
    }
}
