//! The in-memory table: the store port's reference semantics for unit tests.
//! It evaluates conditions and updates exactly as the DynamoDB adapter renders them, and the
//! contract suite keeps the two in step.

use super::{
    Cond, Index, Item, Key, Op, Page, StoreError, Table, Value, Write, validate_transaction,
};
use crate::store::schema::{PK, SK};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct MemoryTable {
    items: Mutex<BTreeMap<Key, Item>>,
    /// How many write requests reached the table (for the cost-per-event figures).
    writes: AtomicUsize,
}

impl MemoryTable {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn write_requests(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
    pub fn len(&self) -> usize {
        self.lock().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Item>> {
        // A panic while holding the lock cannot leave a half-applied write: every write
        // computes its result before it touches the map.
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn compare(item: Option<&Item>, attr: &str, v: &Value) -> Option<std::cmp::Ordering> {
    match (item?.get(attr)?, v) {
        (Value::S(a), Value::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::N(a), Value::N(b)) => Some(a.cmp(b)),
        (Value::B(a), Value::B(b)) if a == b => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

pub(crate) fn holds(cond: &Cond, item: Option<&Item>) -> bool {
    use std::cmp::Ordering::*;
    match cond {
        Cond::ItemExists => item.is_some(),
        Cond::ItemNotExists => item.is_none(),
        Cond::Exists(a) => item.is_some_and(|i| i.contains_key(a)),
        Cond::NotExists(a) => !item.is_some_and(|i| i.contains_key(a)),
        Cond::Eq(a, v) => compare(item, a, v) == Some(Equal),
        Cond::Lt(a, v) => compare(item, a, v) == Some(Less),
        Cond::Ge(a, v) => matches!(compare(item, a, v), Some(Greater | Equal)),
        Cond::In(a, vs) => vs.iter().any(|v| compare(item, a, v) == Some(Equal)),
        Cond::And(cs) => cs.iter().all(|c| holds(c, item)),
        Cond::Or(cs) => cs.iter().any(|c| holds(c, item)),
    }
}

fn with_key(key: &Key, mut item: Item) -> Item {
    item.insert(PK.into(), Value::S(key.pk.clone()));
    item.insert(SK.into(), Value::S(key.sk.clone()));
    item
}

fn apply_ops(key: &Key, current: Option<&Item>, ops: &[Op]) -> Result<Item, StoreError> {
    let mut item = with_key(key, current.cloned().unwrap_or_default());
    for op in ops {
        match op {
            Op::Set(a, v) => {
                item.insert(a.clone(), v.clone());
            }
            Op::SetIfMissing(a, v) => {
                item.entry(a.clone()).or_insert_with(|| v.clone());
            }
            Op::Add(a, n) => {
                let now = match item.get(a) {
                    None => 0,
                    Some(Value::N(x)) => *x,
                    Some(_) => {
                        return Err(StoreError::Invalid(format!(
                            "ADD to non-number attribute {a}"
                        )));
                    }
                };
                item.insert(a.clone(), Value::N(now + n));
            }
            Op::Remove(a) => {
                item.remove(a);
            }
        }
    }
    Ok(item)
}

#[async_trait]
impl Table for MemoryTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let items = self.lock();
        Ok(items
            .iter()
            .filter(|(k, _)| k.pk == pk && k.sk.starts_with(sk_prefix))
            .map(|(_, v)| v.clone())
            .collect())
    }

    async fn query_index(
        &self,
        index: &Index,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        let items = self.lock();
        let mut matching: Vec<(&str, &Item)> = items
            .values()
            .filter(|i| i.get(index.pk).and_then(Value::as_str) == Some(pk))
            .filter_map(|i| Some((i.get(index.sk)?.as_str()?, i)))
            .filter(|(sk, _)| after.is_none_or(|cursor| *sk < cursor))
            .collect();
        matching.sort_by(|a, b| b.0.cmp(a.0));
        let more = matching.len() > limit;
        matching.truncate(limit);
        let next = if more {
            matching.last().map(|(sk, _)| sk.to_string())
        } else {
            None
        };
        // An index entry is a copy of the projected attributes, as in DynamoDB.
        let projected = |i: &Item| -> Item {
            i.iter()
                .filter(|(name, _)| index.carries(name))
                .map(|(name, v)| (name.clone(), v.clone()))
                .collect()
        };
        Ok(Page {
            items: matching.into_iter().map(|(_, i)| projected(i)).collect(),
            next,
        })
    }

    async fn query_page(
        &self,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        let items = self.lock();
        // The map is ordered by key: walk the partition backwards from the cursor.
        let mut page: Vec<(&Key, &Item)> = items
            .iter()
            .filter(|(k, _)| k.pk == pk && k.sk.starts_with(sk_prefix))
            .filter(|(k, _)| after.is_none_or(|cursor| k.sk.as_str() < cursor))
            .rev()
            .take(limit + 1)
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let next = if more {
            page.last().map(|(k, _)| k.sk.clone())
        } else {
            None
        };
        Ok(Page {
            items: page.into_iter().map(|(_, i)| i.clone()).collect(),
            next,
        })
    }
    async fn put(&self, key: &Key, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut items = self.lock();
        if let Some(c) = &cond
            && !holds(c, items.get(key))
        {
            return Err(StoreError::ConditionFailed);
        }
        items.insert(key.clone(), with_key(key, item));
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        ops: Vec<Op>,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut items = self.lock();
        if let Some(c) = &cond
            && !holds(c, items.get(key))
        {
            return Err(StoreError::ConditionFailed);
        }
        let new = apply_ops(key, items.get(key), &ops)?;
        items.insert(key.clone(), new.clone());
        Ok(new)
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_transaction(&writes)?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut items = self.lock();
        let failed: Vec<usize> = writes
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                let current = items.get(w.key());
                match w {
                    Write::Put { cond, .. }
                    | Write::Update { cond, .. }
                    | Write::Delete { cond, .. } => {
                        cond.as_ref().is_some_and(|c| !holds(c, current))
                    }
                    Write::Check { cond, .. } => !holds(cond, current),
                }
            })
            .map(|(i, _)| i)
            .collect();
        if !failed.is_empty() {
            return Err(StoreError::TransactionConditionFailed(failed));
        }
        // Compute every new item before changing any, so an invalid op changes nothing.
        let mut staged = Vec::with_capacity(writes.len());
        for w in &writes {
            match w {
                Write::Put { key, item, .. } => {
                    staged.push((key.clone(), Some(with_key(key, item.clone()))))
                }
                Write::Update { key, ops, .. } => {
                    staged.push((key.clone(), Some(apply_ops(key, items.get(key), ops)?)))
                }
                Write::Delete { key, .. } => staged.push((key.clone(), None)),
                Write::Check { .. } => {}
            }
        }
        for (key, item) in staged {
            match item {
                Some(item) => items.insert(key, item),
                None => items.remove(&key),
            };
        }
        Ok(())
    }
}
