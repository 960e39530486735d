//! Reliability under duplicates and disorder, on in-memory adapters (the store and queue
//! contract suites keep them faithful to DynamoDB and SQS).

use billing_core::app::Services;
use billing_core::domain::ids::UserId;
use billing_core::usecases::account::account;
use billing_core::usecases::fulfil::{self, Outcome};
use billing_core::usecases::intake;
use billing_testing::{
    TEST_WEBHOOK_SECRET, checkout_session, event, memory_services, signature, subscription,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_795_000_000;

/// A small seeded generator, so every run shuffles the same way.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_500_events_each_delivered_5_times_fulfils_each_once() {
    let s = Arc::new(memory_services(&[]));
    let events: Vec<String> = (0..500)
        .map(|i| {
            let user = format!("storm{}", i % 50);
            let session = checkout_session(
                &format!("cs_test_storm_{i}"),
                &user,
                "credits_starter",
                "paid",
                1000,
            );
            event(
                &format!("evt_storm_{i}"),
                "checkout.session.completed",
                T0,
                session,
            )
            .to_string()
        })
        .collect();
    let mut deliveries: Vec<String> = events
        .iter()
        .flat_map(|e| std::iter::repeat_n(e.clone(), 5))
        .collect();
    SplitMix(7).shuffle(&mut deliveries);
    let tasks: Vec<_> = deliveries
        .into_iter()
        .map(|body| {
            let s = s.clone();
            tokio::spawn(async move {
                let header = signature(TEST_WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
                // An in-progress answer is a 409 that Stripe retries: retry like Stripe.
                loop {
                    match intake::receive(&s, Some(&header), body.as_bytes()).await {
                        Err(intake::IntakeError::InProgress) => {
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                        other => return other.unwrap(),
                    }
                }
            })
        })
        .collect();
    let mut queued = 0;
    for t in tasks {
        queued += (t.await.unwrap() == intake::IntakeOutcome::Queued) as usize;
    }
    assert_eq!(queued, 500);

    // The worker drains the queue; SQS may deliver twice, so every message goes through twice.
    let mut applied = 0;
    loop {
        let batch = s.queue.receive(10, Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            for _ in 0..2 {
                if fulfil::process(&s, &m.body).await.unwrap() == Outcome::Applied {
                    applied += 1;
                }
            }
            s.queue.delete(&m.receipt).await.unwrap();
        }
    }
    assert_eq!(applied, 500);
    for u in 0..50 {
        let a = account(&s, &UserId::parse(&format!("storm{u}")).unwrap())
            .await
            .unwrap();
        assert_eq!(a.credits.balance, 10 * 1000, "storm{u}");
        assert_eq!(a.purchases.len(), 10);
    }
}

fn lifecycle() -> Vec<Value> {
    let sub = |status: &str, cancel: bool| {
        let mut s = subscription("sub_life", "life", "pro_monthly", status, T0 + 2_600_000);
        s["cancel_at_period_end"] = cancel.into();
        s
    };
    vec![
        event(
            "evt_life_1",
            "customer.subscription.created",
            T0,
            sub("trialing", false),
        ),
        event(
            "evt_life_2",
            "customer.subscription.updated",
            T0 + 10,
            sub("active", false),
        ),
        event(
            "evt_life_3",
            "customer.subscription.updated",
            T0 + 20,
            sub("past_due", false),
        ),
        event(
            "evt_life_4",
            "customer.subscription.updated",
            T0 + 30,
            sub("active", false),
        ),
        event(
            "evt_life_5",
            "customer.subscription.updated",
            T0 + 40,
            sub("active", true),
        ),
        // Same second as the one before: the tie is broken the same way whatever the order.
        event(
            "evt_life_6",
            "customer.subscription.updated",
            T0 + 40,
            sub("past_due", true),
        ),
        event(
            "evt_life_7",
            "customer.subscription.deleted",
            T0 + 50,
            sub("canceled", true),
        ),
    ]
}

async fn final_state(events: &[Value], upto: usize) -> (String, Value) {
    let s: Services = memory_services(&[]);
    for e in &events[..upto] {
        fulfil::process(&s, &e.to_string()).await.unwrap();
    }
    let a = account(&s, &UserId::parse("life").unwrap()).await.unwrap();
    (
        a.tier.to_string(),
        serde_json::to_value(a.subscription).unwrap(),
    )
}

#[tokio::test]
async fn a_thousand_orders_of_a_subscriptions_lifecycle_end_in_the_in_order_state() {
    let in_order = lifecycle();
    let mut rng = SplitMix(42);
    for upto in [in_order.len(), in_order.len() - 1, 4] {
        let expected = final_state(&in_order, upto).await;
        for _ in 0..(1000 / 3 + 1) {
            let mut shuffled: Vec<Value> = in_order[..upto].to_vec();
            rng.shuffle(&mut shuffled);
            assert_eq!(
                final_state(&shuffled, upto).await,
                expected,
                "order: {:?}",
                shuffled.iter().map(|e| e["id"].clone()).collect::<Vec<_>>()
            );
        }
    }
}
