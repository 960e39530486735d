//! The store port: one DynamoDB-shaped table (partition + sort key, one index) with
//! conditional writes and all-or-nothing transactions.
//!
//! The port is deliberately small and DynamoDB-shaped so that every adapter can honour it
//! exactly: [`memory::MemoryTable`] for unit tests and [`dynamo::DynamoTable`] for AWS (and
//! moto). The contract suite (`tests/tests/contracts/store.rs`) runs against both. Use cases
//! never build [`Write`]s or [`Cond`]itions themselves: [`records`] owns every item's key,
//! attribute names and conditions, and use cases compose its writes into transactions.

pub mod dynamo;
pub mod memory;
pub mod records;
pub mod schema;

pub use schema::Index;

use crate::domain::clock::rfc3339;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The attribute values the project stores. Numbers are whole (minor units, credits, epochs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    S(String),
    N(i64),
    B(bool),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::S(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::N(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::B(b) => Some(*b),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::S(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::S(s)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::N(n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::B(b)
    }
}
/// A time is stored as the one text the API prints (RFC 3339, seconds, `Z`): it becomes
/// text here, where it is written, and nowhere before.
impl From<DateTime<Utc>> for Value {
    fn from(t: DateTime<Utc>) -> Self {
        Value::S(rfc3339(t))
    }
}

pub type Item = BTreeMap<String, Value>;

/// Typed reads from an item; a missing or mistyped attribute reads as `None`.
pub trait ItemExt {
    fn str(&self, name: &str) -> Option<&str>;
    fn num(&self, name: &str) -> Option<i64>;
    fn boolean(&self, name: &str) -> Option<bool>;
}

impl ItemExt for Item {
    fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
    fn num(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }
    fn boolean(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// A condition on the item a write targets, evaluated as DynamoDB does: a comparison with
/// a missing attribute, or between different types, is false.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    ItemExists,
    ItemNotExists,
    Exists(String),
    NotExists(String),
    Eq(String, Value),
    Lt(String, Value),
    Ge(String, Value),
    In(String, Vec<Value>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

impl Cond {
    pub fn eq(attr: &str, v: impl Into<Value>) -> Self {
        Cond::Eq(attr.to_owned(), v.into())
    }
    pub fn lt(attr: &str, v: impl Into<Value>) -> Self {
        Cond::Lt(attr.to_owned(), v.into())
    }
    pub fn ge(attr: &str, v: impl Into<Value>) -> Self {
        Cond::Ge(attr.to_owned(), v.into())
    }
    pub fn missing(attr: &str) -> Self {
        Cond::NotExists(attr.to_owned())
    }
    pub fn present(attr: &str) -> Self {
        Cond::Exists(attr.to_owned())
    }
    pub fn one_of(attr: &str, values: &[&str]) -> Self {
        Cond::In(
            attr.to_owned(),
            values.iter().map(|v| Value::from(*v)).collect(),
        )
    }
}

/// One change to an item's attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Set(String, Value),
    /// Sets the attribute only if the item does not have it yet.
    SetIfMissing(String, Value),
    /// Adds to a number, starting from zero when it is missing.
    Add(String, i64),
    Remove(String),
}

impl Op {
    pub fn set(attr: &str, v: impl Into<Value>) -> Self {
        Op::Set(attr.to_owned(), v.into())
    }
    pub fn set_if_missing(attr: &str, v: impl Into<Value>) -> Self {
        Op::SetIfMissing(attr.to_owned(), v.into())
    }
    pub fn add(attr: &str, n: i64) -> Self {
        Op::Add(attr.to_owned(), n)
    }
    pub fn remove(attr: &str) -> Self {
        Op::Remove(attr.to_owned())
    }
}

/// One write of a transaction. `Update` creates the item when it is missing.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put {
        key: Key,
        item: Item,
        cond: Option<Cond>,
    },
    Update {
        key: Key,
        ops: Vec<Op>,
        cond: Option<Cond>,
    },
    Check {
        key: Key,
        cond: Cond,
    },
    Delete {
        key: Key,
        cond: Option<Cond>,
    },
}

impl Write {
    pub fn key(&self) -> &Key {
        match self {
            Write::Put { key, .. }
            | Write::Update { key, .. }
            | Write::Check { key, .. }
            | Write::Delete { key, .. } => key,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A single conditional write's condition did not hold; nothing changed.
    #[error("the write's condition did not hold")]
    ConditionFailed,
    /// A transaction was cancelled because these writes' conditions did not hold; nothing changed.
    #[error("the transaction was cancelled: the conditions of writes {0:?} did not hold")]
    TransactionConditionFailed(Vec<usize>),
    /// Another transaction touched the same items at the same time; retrying may succeed.
    #[error("a concurrent transaction touched the same items")]
    Conflict,
    /// The request itself is not acceptable (two writes to one item, too many writes).
    #[error("the store refused the request: {0}")]
    Invalid(String),
    /// The store could not be reached or refused for load; retrying later may succeed.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// The most writes one DynamoDB transaction takes.
pub const MAX_TRANSACTION_WRITES: usize = 100;

/// One page of an index query, newest first, with the cursor to the next page (`None`
/// when nothing follows).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

#[async_trait]
pub trait Table: Send + Sync {
    /// A strongly consistent read of one item.
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// All items of a partition whose sort key starts with `sk_prefix`, in sort-key order.
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError>;
    /// Up to `limit` entries of `index` under partition `pk`, newest (largest index sort
    /// key) first, after the `after` cursor of a previous page. `limit` holds however
    /// DynamoDB pages its answer (1 MB per request), and `next` is set whenever more
    /// entries may follow. Entries carry the keys and the index's projected attributes
    /// only. Eventually consistent, like a DynamoDB GSI.
    async fn query_index(
        &self,
        index: &Index,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError>;
    /// Up to `limit` items of partition `pk` whose sort key starts with `sk_prefix`, largest
    /// sort key first, after the `after` cursor (a sort key of a previous page's `next`).
    /// Strongly consistent; reads the page, however many items the partition holds.
    async fn query_page(
        &self,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError>;
    /// Writes one item, replacing any item with the same key, if `cond` holds.
    async fn put(&self, key: &Key, item: Item, cond: Option<Cond>) -> Result<(), StoreError>;
    /// Applies `ops` to one item (creating it if missing) if `cond` holds; returns the new item.
    async fn update(&self, key: &Key, ops: Vec<Op>, cond: Option<Cond>)
    -> Result<Item, StoreError>;
    /// Applies every write, or none: all conditions are checked before anything changes.
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// Applies one write on its own: a put or an update directly, anything else as a
    /// transaction of one. A failed condition is always [`StoreError::ConditionFailed`].
    async fn apply(&self, write: Write) -> Result<(), StoreError> {
        match write {
            Write::Put { key, item, cond } => self.put(&key, item, cond).await,
            Write::Update { key, ops, cond } => self.update(&key, ops, cond).await.map(|_| ()),
            other => match self.transact(vec![other]).await {
                Err(StoreError::TransactionConditionFailed(_)) => Err(StoreError::ConditionFailed),
                done => done,
            },
        }
    }
}

/// Checks the shape rules DynamoDB enforces on a transaction, so both adapters refuse alike.
pub(crate) fn validate_transaction(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() || writes.len() > MAX_TRANSACTION_WRITES {
        return Err(StoreError::Invalid(format!(
            "a transaction takes 1 to {MAX_TRANSACTION_WRITES} writes, not {}",
            writes.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for w in writes {
        if !seen.insert(w.key()) {
            return Err(StoreError::Invalid(
                "a transaction cannot write one item twice".into(),
            ));
        }
    }
    Ok(())
}
