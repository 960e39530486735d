//! The table's stream, for the in-memory store: [`StreamedTable`] records the new image of
//! every outbox item a write commits (what the template's stream filter passes to the
//! publisher), numbered in commit order, as DynamoDB Streams does for the deployed table.
//! Put it under [`crate::faults::FaultyTable`]: a write that lands but whose answer is lost
//! still has its record, a write that never lands has none.

use async_trait::async_trait;
use billing_core::store::records::entitlements::{self, OutboxVersion};
use billing_core::store::{Cond, Index, Item, Key, Op, Page, StoreError, Table, Write};
use std::sync::Mutex;

pub struct StreamedTable<T> {
    pub inner: T,
    records: Mutex<Vec<OutboxVersion>>,
}

impl<T: Table> StreamedTable<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            records: Mutex::new(Vec::new()),
        }
    }

    /// Every outbox record so far, oldest first (a record's position is its sequence number).
    pub fn records(&self) -> Vec<OutboxVersion> {
        self.records.lock().unwrap().clone()
    }

    async fn recorded(&self, keys: impl Iterator<Item = &Key>) {
        for key in keys.filter(|k| k.sk == entitlements::SORT_KEY) {
            if let Ok(Some(item)) = self.inner.get(key).await
                && let Some(v) = OutboxVersion::from_item(&item)
            {
                self.records.lock().unwrap().push(v);
            }
        }
    }
}

#[async_trait]
impl<T: Table> Table for StreamedTable<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn query(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.inner.query(pk, prefix).await
    }
    async fn query_index(
        &self,
        index: &Index,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.inner.query_index(index, pk, limit, after).await
    }
    async fn query_page(
        &self,
        pk: &str,
        prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.inner.query_page(pk, prefix, limit, after).await
    }
    async fn put(&self, key: &Key, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.inner.put(key, item, cond).await?;
        self.recorded(std::iter::once(key)).await;
        Ok(())
    }
    async fn update(
        &self,
        key: &Key,
        ops: Vec<Op>,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        let item = self.inner.update(key, ops, cond).await?;
        self.recorded(std::iter::once(key)).await;
        Ok(item)
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let keys: Vec<Key> = writes.iter().map(|w| w.key().clone()).collect();
        self.inner.transact(writes).await?;
        self.recorded(keys.iter()).await;
        Ok(())
    }
}
