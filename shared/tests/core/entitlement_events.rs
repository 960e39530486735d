//! `billing.entitlements.changed`: every committed entitlement change raises the account's
//! outbox version once, in its own transaction; the stream's records are published in
//! order, at least once, each under its own version; a crash anywhere between the commit
//! and the bus's answer still publishes, and a failed transaction publishes nothing.
//!
//! The store is the memory adapter under its stream ([`StreamedTable`]) under the fault
//! wrapper; the bus is the memory adapter under the same fault wrapper; the stream mapping
//! is emulated as Lambda runs it: a batch from the last checkpoint, handed back from the
//! record the publisher reports.

use billing_core::app::Services;
use billing_core::domain::clock::ManualClock;
use billing_core::domain::ids::UserId;
use billing_core::events::EntitlementsChanged;
use billing_core::events::memory::MemoryBus;
use billing_core::queue::memory::MemoryQueue;
use billing_core::store::memory::MemoryTable;
use billing_core::store::records::entitlements;
use billing_core::usecases::admin::{GrantRequest, grant};
use billing_core::usecases::entitlement_events::publish_in_order;
use billing_core::usecases::fulfil::{self, Outcome};
use billing_core::usecases::usage::{UsageRequest, consume};
use billing_testing::faults::{Fault, Faults, FaultyBus, FaultyTable};
use billing_testing::stream::StreamedTable;
use billing_testing::{checkout_session, config, event, object, subscription};
use chrono::{TimeZone, Utc};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_795_000_000;

struct World {
    services: Services,
    table: Arc<FaultyTable<StreamedTable<MemoryTable>>>,
    bus: Arc<FaultyBus<MemoryBus>>,
    faults: Arc<Faults>,
    /// The stream mapping's checkpoint: records before it were published.
    checkpoint: usize,
}

fn world() -> World {
    let faults = Faults::new();
    let table = Arc::new(FaultyTable {
        inner: StreamedTable::new(MemoryTable::new()),
        faults: faults.clone(),
    });
    let bus = Arc::new(FaultyBus {
        inner: MemoryBus::default(),
        faults: faults.clone(),
    });
    let services = Services {
        config: Arc::new(config(&[])),
        table: table.clone(),
        queue: Arc::new(MemoryQueue::new(Duration::ZERO, 5)),
        clock: Arc::new(ManualClock::at(Utc.timestamp_opt(T0, 0).unwrap())),
        stripe: None,
        metrics: Arc::new(billing_core::metrics::memory::MemoryMetrics::default()),
        secrets: None,
    };
    World {
        services,
        table,
        bus,
        faults,
        checkpoint: 0,
    }
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn buy(event_id: &str, user: &str) -> String {
    event(
        event_id,
        "checkout.session.completed",
        T0 - 30,
        checkout_session(
            &format!("cs_test_{user}"),
            user,
            "credits_starter",
            "paid",
            1000,
        ),
    )
    .to_string()
}

impl World {
    /// One invocation of the stream mapping: the records after the checkpoint as one batch;
    /// the checkpoint moves past what was published, or to the record reported failed.
    async fn map_once(&mut self) -> bool {
        let records = self.table.inner.records();
        let batch = records[self.checkpoint..]
            .iter()
            .enumerate()
            .map(|(i, v)| ((self.checkpoint + i).to_string(), Some(v.clone())))
            .collect();
        match publish_in_order(&self.services, self.bus.as_ref(), batch).await {
            Ok(()) => {
                self.checkpoint = records.len();
                true
            }
            Err((failed, _)) => {
                self.checkpoint = failed.parse().unwrap();
                false
            }
        }
    }

    /// The mapping retries until the stream is published.
    async fn map(&mut self) {
        for _ in 0..10 {
            if self.map_once().await {
                return;
            }
        }
        panic!("the stream was never published:\n{}", self.faults.trace());
    }

    /// The worker (with SQS's redeliveries) until the event is settled.
    async fn fulfil(&self, raw: &str) -> Outcome {
        for _ in 0..10 {
            if let Ok(outcome) = fulfil::process(&self.services, raw).await {
                return outcome;
            }
        }
        panic!("the event never settled:\n{}", self.faults.trace());
    }

    fn published(&self) -> Vec<EntitlementsChanged> {
        self.bus.inner.published()
    }

    async fn version(&self, id: &str) -> i64 {
        entitlements::load(self.services.table.as_ref(), &user(id))
            .await
            .unwrap()
            .map_or(0, |v| v.version)
    }
}

#[tokio::test]
async fn each_purchase_grant_spend_subscription_and_refund_raises_the_version_once() {
    let mut w = world();
    assert_eq!(w.fulfil(&buy("evt_ee_1", "ada")).await, Outcome::Applied);
    assert_eq!(w.version("ada").await, 1);
    let operator = billing_testing::operator("ops");
    let req = GrantRequest {
        user: billing_core::domain::ids::UserId::parse("ada").unwrap(),
        days: Some(3),
        credits: None,
        reason: "goodwill".into(),
        idempotency_key: None,
        feature: None,
        units: None,
    };
    grant(&w.services, &operator, req).await.unwrap();
    assert_eq!(w.version("ada").await, 2);
    let spend = UsageRequest {
        units: 5,
        idempotency_key: "k1".into(),
    };
    consume(&w.services, &user("ada"), spend.clone())
        .await
        .unwrap();
    assert_eq!(w.version("ada").await, 3);
    // The same call again answers the first and changes nothing.
    consume(&w.services, &user("ada"), spend).await.unwrap();
    assert_eq!(w.version("ada").await, 3);
    let sub = subscription("sub_ada", "ada", "pro_monthly", "active", T0 + 2_600_000);
    w.fulfil(&event("evt_ee_2", "customer.subscription.created", T0 - 20, sub).to_string())
        .await;
    assert_eq!(w.version("ada").await, 4);
    let charge = object(
        "charge",
        json!({ "id": "ch_ada", "payment_intent": "pi_cs_test_ada", "amount": 1000, "amount_refunded": 1000 }),
    );
    w.fulfil(&event("evt_ee_3", "charge.refunded", T0 - 10, charge).to_string())
        .await;
    assert_eq!(w.version("ada").await, 5);

    w.map().await;
    let published = w.published();
    let seen: Vec<(String, i64, String)> = published
        .iter()
        .map(|e| (e.id.clone(), e.version, e.cause.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("ada:1".into(), 1, "evt_ee_1".into()),
            ("ada:2".into(), 2, published[1].cause.clone()),
            ("ada:3".into(), 3, "usage:k1".into()),
            ("ada:4".into(), 4, "evt_ee_2".into()),
            ("ada:5".into(), 5, "evt_ee_3".into()),
        ]
    );
    assert!(published[1].cause.starts_with("grant:"));
    let last = &published[4];
    assert_eq!(
        (
            last.tier.as_str(),
            last.plan_id.as_deref(),
            last.subscription_status.as_deref()
        ),
        ("paid", Some("pro_monthly"), Some("active"))
    );
}

#[tokio::test]
async fn a_duplicate_stripe_event_and_a_non_entitlement_write_raise_no_version() {
    let mut w = world();
    let raw = buy("evt_ee_dup", "bea");
    assert_eq!(w.fulfil(&raw).await, Outcome::Applied);
    assert_eq!(w.fulfil(&raw).await, Outcome::AlreadyApplied);
    // The account's first read creates its referral code: not an entitlement.
    billing_core::usecases::account::account(&w.services, &user("bea"))
        .await
        .unwrap();
    w.map().await;
    let ids: Vec<String> = w.published().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, vec!["bea:1".to_owned()]);
}

#[tokio::test]
async fn a_failed_transaction_publishes_nothing() {
    let mut w = world();
    w.faults.fail_next("transact", 100);
    assert!(
        fulfil::process(&w.services, &buy("evt_ee_fail", "cy"))
            .await
            .is_err()
    );
    w.faults.off();
    w.map().await;
    assert_eq!((w.table.inner.records().len(), w.published().len()), (0, 0));
}

#[tokio::test]
async fn a_crash_between_the_commit_and_the_publish_still_publishes_when_the_record_comes_back() {
    let mut w = world();
    w.fulfil(&buy("evt_ee_crash", "dan")).await;
    w.faults.fail_next("publish", 1);
    assert!(
        !w.map_once().await,
        "the first attempt fails and is reported"
    );
    assert!(w.published().is_empty());
    w.map().await;
    let ids: Vec<String> = w.published().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, vec!["dan:1".to_owned()]);
}

#[tokio::test]
async fn a_retry_publishes_its_own_version_even_after_a_later_change() {
    let mut w = world();
    w.fulfil(&buy("evt_ee_later", "eve")).await;
    // The bus takes the event but the answer is lost (the function crashed): the record
    // comes back, and meanwhile the account changed again.
    w.faults.plan(w.faults.calls() + 2, Fault::LostAfter);
    assert!(!w.map_once().await);
    w.faults.off();
    let spend = UsageRequest {
        units: 1,
        idempotency_key: "k".into(),
    };
    consume(&w.services, &user("eve"), spend).await.unwrap();
    w.map().await;
    let seen: Vec<(String, i64)> = w
        .published()
        .into_iter()
        .map(|e| (e.id, e.version))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("eve:1".into(), 1),
            ("eve:1".into(), 1),
            ("eve:2".into(), 2)
        ]
    );
}

/// Every call of a clean run, in turn, meets every fault: the same ids are published, at
/// least once each, and every delivery of one id is the same event.
#[tokio::test]
async fn a_fault_at_any_call_publishes_every_version_at_least_once_and_never_a_different_one() {
    async fn run(plan: Option<(usize, Fault)>) -> (Vec<EntitlementsChanged>, usize) {
        let mut w = world();
        if let Some((at, fault)) = plan {
            w.faults.plan(at, fault);
        }
        w.fulfil(&buy("evt_ee_s1", "fay")).await;
        w.map().await;
        w.fulfil(&buy("evt_ee_s1", "fay")).await;
        let sub = subscription("sub_fay", "fay", "pro_monthly", "active", T0 + 2_600_000);
        w.fulfil(&event("evt_ee_s2", "customer.subscription.created", T0 - 20, sub).to_string())
            .await;
        w.map().await;
        (w.published(), w.faults.calls())
    }
    let (clean, calls) = run(None).await;
    let clean_ids: Vec<&str> = clean.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(clean_ids, vec!["fay:1", "fay:2"]);
    for at in 0..calls {
        for fault in [
            Fault::Unavailable,
            Fault::LostAfter,
            Fault::Outage,
            Fault::Conflict,
        ] {
            let (published, _) = run(Some((at, fault))).await;
            let mut ids: Vec<&str> = published.iter().map(|e| e.id.as_str()).collect();
            ids.dedup();
            assert_eq!(ids, clean_ids, "{fault:?} at call {at}");
            for e in &published {
                let first = clean.iter().find(|c| c.id == e.id).unwrap();
                assert_eq!(e, first, "{fault:?} at call {at}: a delivery differs");
            }
        }
    }
}
