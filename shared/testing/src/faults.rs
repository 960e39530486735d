//! One fault wrapper for every store, queue and bus adapter: [`FaultyTable`], [`FaultyQueue`]
//! and [`FaultyBus`]
//! share a [`Faults`] controller, so calls are numbered across all three. A test either fails
//! the next few calls of one operation ([`Faults::fail_next`]) or plans one fault at the
//! n-th call of the run ([`Faults::plan`]), as the crash-point suite does for every call.

use async_trait::async_trait;
use billing_core::events::{BusError, EntitlementsChanged, EventBus};
use billing_core::queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage};
use billing_core::store::{Cond, Index, Item, Key, Op, Page, StoreError, Table, Write};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What goes wrong at a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request never lands (the service is down).
    Unavailable,
    /// The request is refused for load, as DynamoDB and SQS throttle.
    Throttled,
    /// The request lands but the caller never hears (a crash or a timeout right after).
    LostAfter,
    /// This call and the next two fail (a short outage across a boundary).
    Outage,
    /// A transaction cancelled by a concurrent one (transactions only).
    Conflict,
}

enum Decision {
    Pass,
    FailBefore(String),
    FailAfter,
    Conflict,
}

/// Which calls fail, and the trace of every call made.
#[derive(Default)]
pub struct Faults {
    calls: AtomicUsize,
    plan: Mutex<Option<(usize, Fault)>>,
    next: Mutex<HashMap<&'static str, usize>>,
    trace: Mutex<Vec<String>>,
    injected: AtomicUsize,
}

impl Faults {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The call numbered `at` (from 0, across the table and the queue) meets `fault`.
    pub fn plan(&self, at: usize, fault: Fault) {
        *self.plan.lock().unwrap() = Some((at, fault));
    }

    /// The next `n` calls of `operation` (`put`, `update`, `transact`, `send`, …) fail as
    /// if the service were unreachable.
    pub fn fail_next(&self, operation: &'static str, n: usize) {
        self.next.lock().unwrap().insert(operation, n);
    }

    /// No more faults from now on.
    pub fn off(&self) {
        *self.plan.lock().unwrap() = None;
        self.next.lock().unwrap().clear();
    }

    /// How many calls were made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// Every call made, numbered, one a line.
    pub fn trace(&self) -> String {
        self.trace.lock().unwrap().join("\n")
    }

    fn decide(&self, what: &'static str) -> Decision {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.trace.lock().unwrap().push(format!("{n}: {what}"));
        if let Some(left) = self.next.lock().unwrap().get_mut(what)
            && *left > 0
        {
            *left -= 1;
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Decision::FailBefore(format!("injected {what} failure"));
        }
        let Some((at, fault)) = *self.plan.lock().unwrap() else {
            return Decision::Pass;
        };
        let hit = match fault {
            Fault::Outage => (at..at + 3).contains(&n),
            _ => n == at,
        };
        let decision = match fault {
            _ if !hit => return Decision::Pass,
            Fault::Unavailable | Fault::Outage => {
                Decision::FailBefore("injected: service unavailable".into())
            }
            Fault::Throttled => {
                Decision::FailBefore("injected: ThrottlingException: rate exceeded".into())
            }
            Fault::LostAfter => Decision::FailAfter,
            Fault::Conflict if what == "transact" => Decision::Conflict,
            Fault::Conflict => return Decision::Pass,
        };
        self.injected.fetch_add(1, Ordering::SeqCst);
        decision
    }
}

/// Runs `call` under the fault decided for `what`; `err` builds the adapter's error.
macro_rules! guarded {
    ($faults:expr, $what:expr, $err:expr, $call:expr) => {
        match $faults.decide($what) {
            Decision::Pass => $call,
            Decision::FailBefore(msg) => Err($err(msg)),
            Decision::FailAfter => {
                let _landed = $call;
                Err($err(
                    "injected: the answer was lost after the request landed".into(),
                ))
            }
            Decision::Conflict => Err($err("conflict".into())),
        }
    };
}

/// A table adapter whose calls fail as its [`Faults`] decide.
pub struct FaultyTable<T> {
    pub inner: T,
    pub faults: Arc<Faults>,
}

fn store_err(msg: String) -> StoreError {
    match msg.as_str() {
        "conflict" => StoreError::Conflict,
        _ => StoreError::Unavailable(msg),
    }
}

#[async_trait]
impl<T: Table> Table for FaultyTable<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        guarded!(self.faults, "get", store_err, self.inner.get(key).await)
    }
    async fn query(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        guarded!(
            self.faults,
            "query",
            store_err,
            self.inner.query(pk, prefix).await
        )
    }
    async fn query_index(
        &self,
        index: &Index,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        guarded!(
            self.faults,
            "query_index",
            store_err,
            self.inner.query_index(index, pk, limit, after).await
        )
    }
    async fn query_page(
        &self,
        pk: &str,
        prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        guarded!(
            self.faults,
            "query_page",
            store_err,
            self.inner.query_page(pk, prefix, limit, after).await
        )
    }
    async fn put(&self, key: &Key, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        guarded!(
            self.faults,
            "put",
            store_err,
            self.inner.put(key, item, cond).await
        )
    }
    async fn update(
        &self,
        key: &Key,
        ops: Vec<Op>,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        guarded!(
            self.faults,
            "update",
            store_err,
            self.inner.update(key, ops, cond).await
        )
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        guarded!(
            self.faults,
            "transact",
            store_err,
            self.inner.transact(writes).await
        )
    }
}

/// A queue adapter whose calls fail as its [`Faults`] decide.
pub struct FaultyQueue<Q> {
    pub inner: Q,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl<Q: Queue> Queue for FaultyQueue<Q> {
    async fn send(&self, m: &OutgoingMessage) -> Result<(), QueueError> {
        guarded!(
            self.faults,
            "send",
            QueueError::Unavailable,
            self.inner.send(m).await
        )
    }
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        guarded!(
            self.faults,
            "receive",
            QueueError::Unavailable,
            self.inner.receive(max, wait).await
        )
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        guarded!(
            self.faults,
            "delete",
            QueueError::Unavailable,
            self.inner.delete(receipt).await
        )
    }
}

/// An event bus adapter whose publishes fail as its [`Faults`] decide (`publish`).
pub struct FaultyBus<B> {
    pub inner: B,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl<B: EventBus> EventBus for FaultyBus<B> {
    async fn publish(&self, event: &EntitlementsChanged) -> Result<(), BusError> {
        guarded!(
            self.faults,
            "publish",
            BusError::Unavailable,
            self.inner.publish(event).await
        )
    }
}
