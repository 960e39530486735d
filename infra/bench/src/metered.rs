//! Store and queue wrappers that count requests and the request units AWS bills for them,
//! from the items' sizes as DynamoDB computes them (attribute names plus values).
//!
//! Billing rules applied (DynamoDB and SQS pricing pages, on-demand):
//! - a single write costs one write request unit (WRU) per started KB of the larger of the
//!   item before and after, also when its condition fails;
//! - `TransactWriteItems` costs two WRUs per started KB of each item, condition checks
//!   included;
//! - a write that adds, changes or removes an item's entry in an index also writes the
//!   index: one WRU per started KB of the projected entry (keys plus the index's projected
//!   attributes), two writes when the index key changes;
//! - a strongly consistent read costs one read request unit (RRU) per started 4 KB of
//!   what it returns (at least one), a query per started 4 KB of all items returned;
//! - an SQS request carries up to 64 KB: a larger message is billed as several requests.

use async_trait::async_trait;
use billing_core::queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage};
use billing_core::store::schema::INDEXES;
use billing_core::store::{Cond, Index, Item, Key, Op, Page, StoreError, Table, Value, Write};
use serde_json::json;
use std::sync::Mutex;
use std::time::Duration;

/// What one phase cost, in requests and billed units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub ddb_reads: u64,
    pub ddb_writes: u64,
    pub ddb_transactions: u64,
    pub ddb_transaction_items: u64,
    pub rru: u64,
    pub wru: u64,
    pub gsi_wru: u64,
    pub sqs_sends: u64,
    pub sqs_receives: u64,
    pub sqs_deletes: u64,
    pub sqs_billed_requests: u64,
}

impl Counts {
    pub fn minus(&self, before: &Counts) -> Counts {
        Counts {
            ddb_reads: self.ddb_reads - before.ddb_reads,
            ddb_writes: self.ddb_writes - before.ddb_writes,
            ddb_transactions: self.ddb_transactions - before.ddb_transactions,
            ddb_transaction_items: self.ddb_transaction_items - before.ddb_transaction_items,
            rru: self.rru - before.rru,
            wru: self.wru - before.wru,
            gsi_wru: self.gsi_wru - before.gsi_wru,
            sqs_sends: self.sqs_sends - before.sqs_sends,
            sqs_receives: self.sqs_receives - before.sqs_receives,
            sqs_deletes: self.sqs_deletes - before.sqs_deletes,
            sqs_billed_requests: self.sqs_billed_requests - before.sqs_billed_requests,
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "ddb_reads": self.ddb_reads, "ddb_writes": self.ddb_writes,
            "ddb_transactions": self.ddb_transactions,
            "ddb_transaction_items": self.ddb_transaction_items,
            "rru": self.rru, "wru": self.wru, "gsi_wru": self.gsi_wru,
            "sqs_sends": self.sqs_sends, "sqs_receives": self.sqs_receives,
            "sqs_deletes": self.sqs_deletes, "sqs_billed_requests": self.sqs_billed_requests,
        })
    }
}

/// DynamoDB's size of an item: attribute names plus values (numbers: about one byte per
/// two significant digits, plus one).
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(name, v)| {
            name.len() as u64
                + match v {
                    Value::S(s) => s.len() as u64,
                    Value::N(n) => (n.unsigned_abs().to_string().len() as u64).div_ceil(2) + 1,
                    Value::B(_) => 1,
                }
        })
        .sum()
}

fn units(bytes: u64, unit: u64) -> u64 {
    bytes.div_ceil(unit).max(1)
}

fn index_key(index: &Index, item: Option<&Item>) -> Option<(Value, Option<Value>)> {
    let item = item?;
    Some((item.get(index.pk)?.clone(), item.get(index.sk).cloned()))
}

/// The size of an item's entry in `index`: only what the index projects.
fn entry_size(index: &Index, item: Option<&Item>) -> u64 {
    item.map(|i| {
        i.iter()
            .filter(|(name, _)| index.carries(name))
            .map(|(n, v)| item_size(&Item::from([(n.clone(), v.clone())])))
            .sum()
    })
    .unwrap_or(0)
}

/// WRUs the indexes cost for a base-table write from `before` to `after`.
fn gsi_units(before: Option<&Item>, after: Option<&Item>) -> u64 {
    INDEXES
        .iter()
        .map(|index| {
            let size = |i: Option<&Item>| entry_size(index, i);
            match (index_key(index, before), index_key(index, after)) {
                (None, None) => 0,
                (None, Some(_)) => units(size(after), 1024),
                (Some(_), None) => units(size(before), 1024),
                (Some(a), Some(b)) if a == b => units(size(before).max(size(after)), 1024),
                (Some(_), Some(_)) => units(size(before), 1024) + units(size(after), 1024),
            }
        })
        .sum()
}

/// The running counts of one metered adapter, shared by its calls.
#[derive(Default)]
struct Meter(Mutex<Counts>);

impl Meter {
    fn get(&self) -> Counts {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn add(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

pub struct MeteredTable<T> {
    pub inner: T,
    counts: Meter,
}

impl<T: Table> MeteredTable<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            counts: Meter::default(),
        }
    }
    pub fn counts(&self) -> Counts {
        self.counts.get()
    }
    fn add(&self, f: impl FnOnce(&mut Counts)) {
        self.counts.add(f)
    }
    /// The item as stored, without counting the read (it only sizes a write).
    async fn peek(&self, key: &Key) -> Option<Item> {
        self.inner.get(key).await.ok().flatten()
    }
    fn write_units(&self, before: Option<&Item>, after: Option<&Item>, factor: u64) -> (u64, u64) {
        let size = before
            .map(item_size)
            .unwrap_or(0)
            .max(after.map(item_size).unwrap_or(0));
        (factor * units(size, 1024), gsi_units(before, after))
    }
    /// Counts one put or update of `key`: billed also when its condition fails; the index is
    /// written only when the item changed.
    async fn count_single_write(&self, key: &Key, before: Option<Item>, changed: bool) {
        let after = self.peek(key).await;
        let (wru, gsi) = self.write_units(before.as_ref(), after.as_ref(), 1);
        self.add(|c| {
            c.ddb_writes += 1;
            c.wru += wru;
            if changed {
                c.gsi_wru += gsi;
            }
        });
    }
}

#[async_trait]
impl<T: Table> Table for MeteredTable<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let got = self.inner.get(key).await?;
        let bytes = got.as_ref().map(item_size).unwrap_or(0);
        self.add(|c| {
            c.ddb_reads += 1;
            c.rru += units(bytes, 4096);
        });
        Ok(got)
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let got = self.inner.query(pk, sk_prefix).await?;
        let bytes: u64 = got.iter().map(item_size).sum();
        self.add(|c| {
            c.ddb_reads += 1;
            c.rru += units(bytes, 4096);
        });
        Ok(got)
    }
    async fn query_index(
        &self,
        index: &Index,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        let got = self.inner.query_index(index, pk, limit, after).await?;
        let bytes: u64 = got.items.iter().map(item_size).sum();
        self.add(|c| {
            c.ddb_reads += 1;
            // Index reads are eventually consistent: half a unit per 4 KB, rounded up here.
            c.rru += units(bytes, 8192);
        });
        Ok(got)
    }
    async fn query_page(
        &self,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        let got = self.inner.query_page(pk, sk_prefix, limit, after).await?;
        let bytes: u64 = got.items.iter().map(item_size).sum();
        self.add(|c| {
            c.ddb_reads += 1;
            c.rru += units(bytes, 4096);
        });
        Ok(got)
    }
    async fn put(&self, key: &Key, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        let before = self.peek(key).await;
        let result = self.inner.put(key, item, cond).await;
        self.count_single_write(key, before, result.is_ok()).await;
        result
    }
    async fn update(
        &self,
        key: &Key,
        ops: Vec<Op>,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        let before = self.peek(key).await;
        let result = self.inner.update(key, ops, cond).await;
        self.count_single_write(key, before, result.is_ok()).await;
        result
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let keys: Vec<Key> = writes.iter().map(|w| w.key().clone()).collect();
        let mut before = Vec::with_capacity(keys.len());
        for k in &keys {
            before.push(self.peek(k).await);
        }
        let result = self.inner.transact(writes).await;
        let mut wru = 0;
        let mut gsi = 0;
        for (k, b) in keys.iter().zip(&before) {
            let after = self.peek(k).await;
            let (w, g) = self.write_units(b.as_ref(), after.as_ref(), 2);
            wru += w;
            gsi += g;
        }
        let changed = result.is_ok();
        self.add(|c| {
            c.ddb_transactions += 1;
            c.ddb_transaction_items += keys.len() as u64;
            c.wru += wru;
            if changed {
                c.gsi_wru += gsi;
            }
        });
        result
    }
}

pub struct MeteredQueue<Q> {
    pub inner: Q,
    counts: Meter,
}

impl<Q: Queue> MeteredQueue<Q> {
    pub fn new(inner: Q) -> Self {
        Self {
            inner,
            counts: Meter::default(),
        }
    }
    pub fn counts(&self) -> Counts {
        self.counts.get()
    }
    fn add(&self, f: impl FnOnce(&mut Counts)) {
        self.counts.add(f)
    }
}

#[async_trait]
impl<Q: Queue> Queue for MeteredQueue<Q> {
    async fn send(&self, message: &OutgoingMessage) -> Result<(), QueueError> {
        let chunks = units(message.body.len() as u64, 64 * 1024);
        self.add(|c| {
            c.sqs_sends += 1;
            c.sqs_billed_requests += chunks;
        });
        self.inner.send(message).await
    }
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let got = self.inner.receive(max, wait).await?;
        let bytes: u64 = got.iter().map(|m| m.body.len() as u64).sum();
        self.add(|c| {
            c.sqs_receives += 1;
            c.sqs_billed_requests += units(bytes, 64 * 1024);
        });
        Ok(got)
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.add(|c| {
            c.sqs_deletes += 1;
            c.sqs_billed_requests += 1;
        });
        self.inner.delete(receipt).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_core::store::memory::MemoryTable;

    fn item(pairs: &[(&str, Value)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn item_size_counts_names_and_values_as_dynamodb_does() {
        let i = item(&[
            ("pk", Value::S("USER#a".into())),
            ("n", Value::N(12345)),
            ("b", Value::B(true)),
        ]);
        assert_eq!(item_size(&i), (2 + 6) + (1 + 4) + (1 + 1));
    }

    #[tokio::test]
    async fn a_transaction_costs_two_units_per_item_and_a_put_one() {
        let t = MeteredTable::new(MemoryTable::new());
        t.put(&Key::new("a", "b"), Item::new(), None).await.unwrap();
        assert_eq!((t.counts().ddb_writes, t.counts().wru), (1, 1));
        t.transact(vec![
            Write::Update {
                key: Key::new("a", "b"),
                ops: vec![Op::add("n", 1)],
                cond: None,
            },
            Write::Check {
                key: Key::new("c", "d"),
                cond: Cond::ItemNotExists,
            },
        ])
        .await
        .unwrap();
        let c = t.counts();
        assert_eq!(
            (c.ddb_transactions, c.ddb_transaction_items, c.wru),
            (1, 2, 5)
        );
    }
}
