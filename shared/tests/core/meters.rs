//! Meter reports at every crash point of a track: units of a `stripe_meter` feature beyond
//! the allowance reach Stripe once, whatever fails between the track and Stripe's answer.
//!
//! A clean track of 10,004 units of `calls` (10,000 included on `api_monthly`) counts the
//! calls it makes to the store; then, for each of them, a fresh run fails it (`Unavailable`:
//! never lands; `LostAfter`: lands, the caller never hears, as a crash right after the
//! commit). Faults stop there; the table's stream is relayed to the queue (every record
//! twice, as a stream may redeliver), the worker drains the queue against the in-memory
//! Stripe, the caller retries with the same key (as it does after an error), and the relay
//! and the worker run again. Stripe (the in-memory one) must have received exactly one meter
//! report, of the 4 units beyond the allowance, with the key's identifier.

use billing_core::app::Services;
use billing_core::domain::clock::ManualClock;
use billing_core::domain::features::FeatureId;
use billing_core::domain::ids::UserId;
use billing_core::queue::Queue;
use billing_core::queue::memory::MemoryQueue;
use billing_core::store::memory::MemoryTable;
use billing_core::store::records::meter_report;
use billing_core::usecases::features::{TrackRequest, track};
use billing_core::usecases::{fulfil, stream};
use billing_testing::faults::{Fault, Faults, FaultyTable};
use billing_testing::memory_stripe::{MemoryStripe, Method};
use billing_testing::stream::StreamedTable;
use billing_testing::{config, event, subscription};
use chrono::{TimeZone, Utc};
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_795_000_000;

struct World {
    services: Services,
    table: Arc<FaultyTable<StreamedTable<MemoryTable>>>,
    queue: Arc<MemoryQueue>,
    faults: Arc<Faults>,
    stripe: Arc<MemoryStripe>,
}

/// `ann` holds `api_monthly` (customer `cus_ann`); Stripe takes meter events.
async fn world() -> World {
    let faults = Faults::new();
    let table = Arc::new(FaultyTable {
        inner: StreamedTable::new(MemoryTable::new()),
        faults: faults.clone(),
    });
    let queue = Arc::new(MemoryQueue::new(Duration::ZERO, 5));
    let stripe = Arc::new(MemoryStripe::new());
    let mut services = Services {
        config: Arc::new(config(&[])),
        table: table.clone(),
        queue: queue.clone(),
        clock: Arc::new(ManualClock::at(Utc.timestamp_opt(T0, 0).unwrap())),
        stripe: None,
        metrics: Arc::new(billing_core::metrics::memory::MemoryMetrics::default()),
        secrets: None,
    };
    let sub = subscription("sub_ann", "ann", "api_monthly", "active", T0 + 2_592_000);
    let created = event("evt_sub_ann", "customer.subscription.created", T0, sub);
    fulfil::process(&services, &created.to_string())
        .await
        .expect("the subscription applies");
    services.stripe = Some(stripe.clone());
    World {
        services,
        table,
        queue,
        faults,
        stripe,
    }
}

impl World {
    async fn track(&self) -> bool {
        let req = TrackRequest {
            units: 10_004,
            idempotency_key: "req-1".into(),
        };
        let ann = UserId::parse("ann").unwrap();
        track(&self.services, &ann, "calls", req).await.is_ok()
    }

    /// The stream mapping (each record twice) and the worker, until the queue is empty.
    async fn relay_and_work(&self) {
        for (id, message) in self.table.inner.meter_reports() {
            for _ in 0..2 {
                stream::queue_meter_report(&self.services, &id, &message)
                    .await
                    .expect("queued");
            }
        }
        for _ in 0..20 {
            let got = self.queue.receive(10, Duration::ZERO).await.unwrap();
            if got.is_empty() {
                return;
            }
            for m in got {
                if fulfil::process(&self.services, &m.body).await.is_ok() {
                    self.queue.delete(&m.receipt).await.unwrap();
                }
            }
        }
        panic!("the queue never drained");
    }

    /// Every meter report Stripe received (a report sent twice is here twice).
    fn meter_reports(&self) -> Vec<serde_json::Value> {
        self.stripe
            .calls_of(Method::ReportMeterUsage)
            .into_iter()
            .map(|c| c.args)
            .collect()
    }
}

#[tokio::test]
async fn a_crash_at_any_call_of_a_track_loses_no_overage_unit_and_doubles_none() {
    let identifier = meter_report::identifier(
        &UserId::parse("ann").unwrap(),
        &FeatureId::parse("calls").unwrap(),
        "req-1",
        T0,
    );
    let clean = world().await;
    let start = clean.faults.calls();
    assert!(clean.track().await);
    let calls = clean.faults.calls() - start;
    let mut runs = 0;
    for at in 0..calls {
        for fault in [Fault::Unavailable, Fault::LostAfter] {
            let w = world().await;
            w.faults.plan(w.faults.calls() + at, fault);
            let answered = w.track().await;
            w.faults.off();
            w.relay_and_work().await;
            if !answered {
                // The caller saw an error and retries with the same key.
                assert!(w.track().await, "{fault:?} at {at}:\n{}", w.faults.trace());
                w.relay_and_work().await;
            }
            let sent = w.meter_reports();
            assert_eq!(
                sent.len(),
                1,
                "{fault:?} at {at}: {sent:?}\n{}",
                w.faults.trace()
            );
            assert_eq!(sent[0]["units"], 4, "{fault:?} at {at}");
            assert_eq!(sent[0]["identifier"], identifier, "{fault:?} at {at}");
            assert_eq!(sent[0]["customer"], "cus_ann");
            runs += 1;
        }
    }
    assert!(runs >= 4, "the track made {calls} calls");
}
