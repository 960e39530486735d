//! The table's stream, for the in-memory store: [`StreamedTable`] records the new image of
//! every outbox item a write commits (what the template's stream filter passes to the
//! publisher), numbered in commit order, as DynamoDB Streams does for the deployed table.
//! Put it under [`crate::faults::FaultyTable`]: a write that lands but whose answer is lost
//! still has its record, a write that never lands has none.

use async_trait::async_trait;
use billing_core::domain::ids::EventId;
use billing_core::store::records::entitlements::{self, OutboxVersion};
use billing_core::store::records::meter_report;
use billing_core::store::{Cond, Index, Item, Key, Op, Page, StoreError, Table, Write};
use std::sync::Mutex;

pub struct StreamedTable<T> {
    pub inner: T,
    records: Mutex<Vec<OutboxVersion>>,
    /// The meter reports inserted (what the stream filter's second pattern passes).
    meter_reports: Mutex<Vec<(EventId, String)>>,
}

impl<T: Table> StreamedTable<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            records: Mutex::new(Vec::new()),
            meter_reports: Mutex::new(Vec::new()),
        }
    }

    /// Every outbox record so far, oldest first (a record's position is its sequence number).
    pub fn records(&self) -> Vec<OutboxVersion> {
        self.records.lock().unwrap().clone()
    }

    /// Every meter report inserted so far, oldest first.
    pub fn meter_reports(&self) -> Vec<(EventId, String)> {
        self.meter_reports.lock().unwrap().clone()
    }

    async fn recorded(&self, keys: impl Iterator<Item = &Key>) {
        let keys: Vec<&Key> = keys.collect();
        for key in keys
            .iter()
            .filter(|k| k.pk.starts_with(meter_report::KEY_PREFIX))
        {
            if let Ok(Some(item)) = self.inner.get(key).await
                && let Some((id, message)) = meter_report::to_relay(&item)
            {
                let mut reports = self.meter_reports.lock().unwrap();
                // Only its insert makes a stream record the relay takes.
                if !reports.iter().any(|(known, _)| *known == id) {
                    reports.push((id, message));
                }
            }
        }
        for key in keys.into_iter().filter(|k| k.sk == entitlements::SORT_KEY) {
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
