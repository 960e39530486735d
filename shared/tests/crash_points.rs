//! Fault injection at every boundary of intake and fulfilment: nothing lost, nothing doubled.
//!
//! A clean run of three deliveries (a paid credit pack, Stripe's duplicate of it, a new
//! subscription) and the worker's drain counts every call to the store and the queue. Then,
//! for every one of those calls in turn, a fresh run injects one fault there:
//! - `Unavailable`: the request never lands (store or queue down);
//! - `Throttled`: the request is refused for load, as DynamoDB and SQS throttle;
//! - `LostAfter`: the request lands but the caller never hears (a crash or timeout right after
//!   the claim, the send, the mark, the transaction, the delete);
//! - `Outage`: this call and the next two fail (a short outage across a boundary);
//! - `Conflict`: a transaction cancelled by a concurrent one (transactions only).
//!
//! Each run makes the retries AWS and Stripe make (Stripe redelivers until it gets a 2xx, a
//! little later each time; SQS redelivers an unacknowledged message after its visibility
//! timeout, and the worker reports failures instead of deleting) and must end in exactly the
//! state of the clean run.

use async_trait::async_trait;
use billing_core::account::account;
use billing_core::checkout_state::checkout_status;
use billing_core::clock::{Clock, ManualClock};
use billing_core::fulfil;
use billing_core::ids::{EventId, SessionId, UserId};
use billing_core::intake::{self, IntakeError, state};
use billing_core::keys;
use billing_core::queue::memory::MemoryQueue;
use billing_core::queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage};
use billing_core::runtime::Services;
use billing_core::store::memory::MemoryTable;
use billing_core::store::{Cond, Item, ItemExt, Key, Op, Page, StoreError, Table, Write};
use billing_core::testing::{
    self, TEST_WEBHOOK_SECRET, checkout_session, event, signature, subscription,
};
use chrono::{TimeZone, Utc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T0: i64 = 1_795_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Unavailable,
    Throttled,
    LostAfter,
    Outage,
    Conflict,
}

/// Which calls fail, shared by the store and the queue so that calls are numbered across both.
#[derive(Default)]
struct Faults {
    calls: AtomicUsize,
    plan: Mutex<Option<(usize, Fault)>>,
    trace: Mutex<Vec<String>>,
    injected: AtomicUsize,
    /// Calls made by deliveries and the drain, before the state is read back.
    work_calls: AtomicUsize,
}

enum Decision {
    Pass,
    FailBefore(&'static str),
    FailAfter,
    Conflict,
}

impl Faults {
    fn decide(&self, what: &str) -> Decision {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.trace.lock().unwrap().push(format!("{n}: {what}"));
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
                Decision::FailBefore("injected: service unavailable")
            }
            Fault::Throttled => {
                Decision::FailBefore("injected: ThrottlingException: rate exceeded")
            }
            Fault::LostAfter => Decision::FailAfter,
            Fault::Conflict if what == "transact" => Decision::Conflict,
            Fault::Conflict => return Decision::Pass,
        };
        self.injected.fetch_add(1, Ordering::SeqCst);
        decision
    }
    fn off(&self) {
        *self.plan.lock().unwrap() = None;
    }
}

struct ChaosTable {
    inner: MemoryTable,
    faults: Arc<Faults>,
}

struct ChaosQueue {
    inner: MemoryQueue,
    faults: Arc<Faults>,
}

fn store_err(msg: &str) -> StoreError {
    match msg {
        "conflict" => StoreError::Conflict,
        _ => StoreError::Unavailable(msg.to_owned()),
    }
}

/// Runs `call` under the fault decided for `what`.
macro_rules! guarded {
    ($faults:expr, $what:expr, $err:expr, $call:expr) => {
        match $faults.decide($what) {
            Decision::Pass => $call,
            Decision::FailBefore(msg) => Err($err(msg)),
            Decision::FailAfter => {
                let _landed = $call;
                Err($err(
                    "injected: the answer was lost after the request landed",
                ))
            }
            Decision::Conflict => Err($err("conflict")),
        }
    };
}

#[async_trait]
impl Table for ChaosTable {
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
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        guarded!(
            self.faults,
            "query_index",
            store_err,
            self.inner.query_index(pk, limit, after).await
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

fn queue_err(msg: &str) -> QueueError {
    QueueError::Unavailable(msg.to_owned())
}

#[async_trait]
impl Queue for ChaosQueue {
    async fn send(&self, m: &OutgoingMessage) -> Result<(), QueueError> {
        guarded!(self.faults, "send", queue_err, self.inner.send(m).await)
    }
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        guarded!(
            self.faults,
            "receive",
            queue_err,
            self.inner.receive(max, wait).await
        )
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        guarded!(
            self.faults,
            "delete",
            queue_err,
            self.inner.delete(receipt).await
        )
    }
}

struct Harness {
    services: Services,
    table: Arc<ChaosTable>,
    queue: Arc<ChaosQueue>,
    clock: ManualClock,
    faults: Arc<Faults>,
}

fn harness(plan: Option<(usize, Fault)>) -> Harness {
    let faults = Arc::new(Faults::default());
    *faults.plan.lock().unwrap() = plan;
    let table = Arc::new(ChaosTable {
        inner: MemoryTable::new(),
        faults: faults.clone(),
    });
    // Visibility zero: a message the worker did not delete is visible again at once, which
    // is what the visibility timeout does, only sooner.
    let queue = Arc::new(ChaosQueue {
        inner: MemoryQueue::new(Duration::ZERO, 5),
        faults: faults.clone(),
    });
    let clock = ManualClock::at(Utc.timestamp_opt(T0, 0).unwrap());
    let services = Services {
        config: Arc::new(testing::config(&[("IN_PROGRESS_SECONDS", "60")])),
        table: table.clone(),
        queue: queue.clone(),
        clock: Arc::new(clock.clone()),
        stripe: None,
    };
    Harness {
        services,
        table,
        queue,
        clock,
        faults,
    }
}

fn deliveries() -> Vec<String> {
    let credits = event(
        "evt_crash_credits",
        "checkout.session.completed",
        T0 - 30,
        checkout_session("cs_test_crash", "crash_a", "credits_starter", "paid", 1000),
    )
    .to_string();
    let sub = event(
        "evt_crash_sub",
        "customer.subscription.created",
        T0 - 20,
        subscription(
            "sub_crash",
            "crash_b",
            "pro_monthly",
            "active",
            T0 + 2_600_000,
        ),
    )
    .to_string();
    vec![credits.clone(), credits, sub]
}

impl Harness {
    /// Stripe: deliver until a 2xx, each retry a little later (past the intake's lock).
    async fn deliver(&self, body: &str) {
        for _ in 0..10 {
            self.clock.advance_secs(61);
            let header = signature(TEST_WEBHOOK_SECRET, self.clock.now().timestamp(), body);
            match intake::receive(&self.services, Some(&header), body.as_bytes()).await {
                Ok(_) => return,
                Err(IntakeError::Store(_) | IntakeError::Queue(_) | IntakeError::InProgress) => {
                    continue;
                }
                Err(other) => panic!("a delivery was refused: {other}"),
            }
        }
        panic!("Stripe gave up on a delivery:\n{}", self.trace());
    }

    /// The SQS event source mapping: receive, apply, delete what succeeded; what failed (or
    /// whose delete failed) comes back.
    async fn drain(&self) {
        for _ in 0..30 {
            let Ok(batch) = self.queue.receive(10, Duration::ZERO).await else {
                continue;
            };
            if batch.is_empty() && self.queue.inner.depth() == 0 {
                return;
            }
            for m in batch {
                if fulfil::process(&self.services, &m.body).await.is_ok() {
                    let _ = self.queue.delete(&m.receipt).await;
                }
            }
        }
        panic!("the queue never drained:\n{}", self.trace());
    }

    fn trace(&self) -> String {
        self.faults.trace.lock().unwrap().join("\n")
    }

    /// The whole observable state: accounts, checkout, records, queue.
    async fn outcome(&self) -> String {
        self.faults
            .work_calls
            .store(self.faults.calls.load(Ordering::SeqCst), Ordering::SeqCst);
        self.faults.off();
        let s = &self.services;
        let a = account(s, &UserId::parse("crash_a").unwrap())
            .await
            .unwrap();
        let b = account(s, &UserId::parse("crash_b").unwrap())
            .await
            .unwrap();
        let checkout = checkout_status(s, &SessionId::parse("cs_test_crash").unwrap())
            .await
            .unwrap();
        let mut records = Vec::new();
        for id in ["evt_crash_credits", "evt_crash_sub"] {
            let item = self
                .table
                .inner
                .get(&keys::event(&EventId::parse(id).unwrap()))
                .await
                .unwrap();
            records.push(item.and_then(|i| i.str("status").map(str::to_owned)));
        }
        format!(
            "a: balance {} purchases {}; b: tier {} sub {:?}; checkout {}; records {:?}; queue {} dead {}",
            a.credits.balance,
            a.purchases.len(),
            b.tier,
            b.subscription.map(|s| s.status),
            serde_json::to_value(checkout).unwrap()["state"],
            records,
            self.queue.inner.depth(),
            self.queue.inner.dead_letters().len(),
        )
    }

    async fn run(&self) -> String {
        for body in deliveries() {
            self.deliver(&body).await;
        }
        self.drain().await;
        self.outcome().await
    }
}

#[tokio::test]
async fn a_fault_at_any_boundary_loses_nothing_and_doubles_nothing_once_retried() {
    let clean = harness(None);
    let expected = clean.run().await;
    assert_eq!(
        expected,
        format!(
            "a: balance 1000 purchases 1; b: tier paid sub Some(\"active\"); checkout \"fulfilled\"; records [Some(\"{p}\"), Some(\"{p}\")]; queue 0 dead 0",
            p = state::PROCESSED
        )
    );
    let calls = clean.faults.work_calls.load(Ordering::SeqCst);
    let trace = clean.trace();
    assert!(
        calls >= 15,
        "the clean run crosses every boundary:\n{trace}"
    );
    for boundary in ["put", "send", "update", "receive", "transact", "delete"] {
        assert!(
            trace.contains(&format!(": {boundary}")),
            "{boundary} is exercised:\n{trace}"
        );
    }

    let mut runs = 0;
    for at in 0..calls {
        for fault in [
            Fault::Unavailable,
            Fault::Throttled,
            Fault::LostAfter,
            Fault::Outage,
            Fault::Conflict,
        ] {
            let h = harness(Some((at, fault)));
            let got = h.run().await;
            if fault != Fault::Conflict {
                assert!(
                    h.faults.injected.load(Ordering::SeqCst) > 0,
                    "{fault:?} at call {at} was injected"
                );
            }
            assert_eq!(
                got,
                expected,
                "{fault:?} at call {at} changed the outcome; calls:\n{}",
                h.trace()
            );
            runs += 1;
        }
    }
    assert!(runs >= 75);
}

#[tokio::test]
async fn a_worker_that_dies_after_its_transaction_is_redelivered_and_applies_nothing_twice() {
    let h = harness(None);
    let body = &deliveries()[0];
    h.deliver(body).await;
    // SQS at-least-once: the worker applies, dies before the delete, and the message comes
    // back three more times.
    for _ in 0..4 {
        let batch = h.queue.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(batch.len(), 1);
        fulfil::process(&h.services, &batch[0].body).await.unwrap();
    }
    let a = account(&h.services, &UserId::parse("crash_a").unwrap())
        .await
        .unwrap();
    assert_eq!((a.credits.balance, a.purchases.len()), (1000, 1));
}
