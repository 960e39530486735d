//! Fault injection at every boundary of intake and fulfilment: nothing lost, nothing doubled.
//!
//! A clean run of three deliveries (a paid credit pack, Stripe's duplicate of it, a new
//! subscription) and the worker's drain counts every call to the store and the queue. Then,
//! for every one of those calls in turn, a fresh run injects one fault there:
//! - `Unavailable`: the request never lands (store or queue down);
//! - `Throttled`: the request is refused for load, as DynamoDB and SQS throttle;
//! - `LostAfter`: the request lands but the caller never hears (a crash or timeout right after
//!   the claim, the send, the transaction, the delete);
//! - `Outage`: this call and the next two fail (a short outage across a boundary);
//! - `Conflict`: a transaction cancelled by a concurrent one (transactions only).
//!
//! Each run makes the retries AWS and Stripe make (Stripe redelivers until it gets a 2xx, a
//! little later each time; SQS redelivers an unacknowledged message after its visibility
//! timeout, and the worker reports failures instead of deleting) and must end in exactly the
//! state of the clean run.

use billing_core::domain::clock::Clock;
use billing_core::domain::ids::{EventId, SessionId, UserId};
use billing_core::queue::Queue;
use billing_core::queue::memory::MemoryQueue;
use billing_core::store::records::event::state;
use billing_core::store::{ItemExt, Table, records};
use billing_core::usecases::account::account;
use billing_core::usecases::checkout_status::checkout_status;
use billing_core::usecases::fulfil;
use billing_core::usecases::intake::{self, IntakeError};
use billing_testing::faults::Fault;
use billing_testing::harness::Harness;
use billing_testing::{TEST_WEBHOOK_SECRET, checkout_session, event, signature, subscription};
use std::time::Duration;

const T0: i64 = 1_795_000_000;

/// The core's harness with a planned fault, and the calls made before the state is read.
struct H {
    h: Harness,
    work_calls: std::sync::atomic::AtomicUsize,
}

impl std::ops::Deref for H {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

fn harness(plan: Option<(usize, Fault)>) -> H {
    // Visibility zero: a message the worker did not delete is visible again at once, which
    // is what the visibility timeout does, only sooner.
    let h = Harness::new(
        &[("IN_PROGRESS_SECONDS", "60")],
        MemoryQueue::new(Duration::ZERO, 5),
        T0,
    );
    if let Some((at, fault)) = plan {
        h.faults.plan(at, fault);
    }
    H {
        h,
        work_calls: Default::default(),
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

impl H {
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
        self.faults.trace()
    }

    /// The whole observable state: accounts, checkout, records, queue.
    async fn outcome(&self) -> String {
        self.work_calls
            .store(self.faults.calls(), std::sync::atomic::Ordering::SeqCst);
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
                .get(&records::event::key(&EventId::parse(id).unwrap()))
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
    let calls = clean.work_calls.load(std::sync::atomic::Ordering::SeqCst);
    let trace = clean.trace();
    // Two calls per delivery (claim, send), a transaction and a delete per message (the
    // checkout's plan reads its PaymentIntent first; neither reads a referral any more:
    // only a paid subscription invoice earns one), and the drain's receive.
    assert!(
        calls >= 12,
        "the clean run crosses every boundary:\n{trace}"
    );
    // Intake is the claim (put) and the send; it no longer marks the record (an update).
    for boundary in ["put", "send", "receive", "transact", "delete"] {
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
                    h.faults.injected() > 0,
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
    assert!(
        runs >= 60,
        "every kind of fault at each of the {calls} calls"
    );
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
