//! Reconcile against the in-memory Stripe, which lists events as Stripe does (newest first,
//! 100 a page, by window and type): only handled types ingested, oldest first within the
//! window, resumable by cursor, stuck records re-driven.

use billing_core::domain::clock::Clock;
use billing_core::domain::ids::EventId;
use billing_core::queue::Queue;
use billing_core::queue::memory::MemoryQueue;
use billing_core::store::records;
use billing_core::usecases::admin::{self, ReconcileRequest, SLICE_PAGES, reconcile_within};
use billing_core::usecases::intake;
use billing_testing::harness::Harness;
use billing_testing::memory_stripe::{MemoryStripe, Method};
use billing_testing::{
    TEST_WEBHOOK_SECRET, checkout_session, event, memory_services, memory_services_with_stripe,
    signature,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn credits(n: usize, created: i64) -> Value {
    let session = checkout_session(
        &format!("cs_test_rc_{n:05}"),
        &format!("rc_user_{}", n % 7),
        "credits_starter",
        "paid",
        1000,
    );
    event(
        &format!("evt_rc_{n:05}"),
        "checkout.session.completed",
        created,
        session,
    )
}

/// A Stripe account that stores `events`.
fn stripe_with(events: Vec<Value>) -> Arc<MemoryStripe> {
    let stripe = MemoryStripe::new();
    for e in &events {
        stripe.put_event(e);
    }
    Arc::new(stripe)
}

/// The ids the queue holds, in the order they were sent.
async fn queued_ids(queue: &dyn Queue) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let batch = queue.receive(10, Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            return ids;
        }
        for m in batch {
            let body: Value = serde_json::from_str(&m.body).unwrap();
            ids.push(body["id"].as_str().unwrap().to_owned());
            queue.delete(&m.receipt).await.unwrap();
        }
    }
}

/// Unix seconds as the time a reconcile command carries.
fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap()
}

#[tokio::test]
async fn reconcile_ingests_handled_types_oldest_first_within_the_window() {
    let t = now() - 3600;
    let mut events: Vec<Value> = (0..5).map(|n| credits(n, t + n as i64 * 60)).collect();
    let mut unhandled = credits(5, t + 10);
    unhandled["type"] = "customer.created".into();
    events.push(unhandled);
    events.push(credits(6, t - 600)); // before the window
    let stripe = stripe_with(events);
    let s = memory_services_with_stripe(&stripe, &[("STRIPE_SECRET_KEY", "sk_test_rc")]);

    let req = ReconcileRequest {
        since: Some(at(t)),
        ..Default::default()
    };
    let out = admin::reconcile(&s, req).await.unwrap();
    assert_eq!((out.fetched, out.ingested, out.next), (5, 5, None));
    assert_eq!(
        queued_ids(s.queue.as_ref()).await,
        [
            "evt_rc_00000",
            "evt_rc_00001",
            "evt_rc_00002",
            "evt_rc_00003",
            "evt_rc_00004"
        ]
    );
    let asked = &stripe.calls_of(Method::ListEvents)[0].args;
    assert_eq!(asked["created_gte"], t);
    assert!(asked["created_lte"].is_i64());
    let types: Vec<&str> = asked["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(types.contains(&"checkout.session.completed"));
    assert!(!types.contains(&"customer.created"));
}

#[tokio::test]
async fn a_reconcile_out_of_time_answers_a_cursor_that_continues_where_it_stopped() {
    let t = now() - 7 * 86400;
    // 120 events over 2 hours: more than one slice's worth is never needed here, so the
    // stops come from the budget (zero: each call does the least it may).
    let events: Vec<Value> = (0..120).map(|n| credits(n, t + n as i64 * 60)).collect();
    let stripe = stripe_with(events);
    let s = memory_services_with_stripe(&stripe, &[("STRIPE_SECRET_KEY", "sk_test_rc")]);

    let mut req = ReconcileRequest {
        since: Some(at(t)),
        ..Default::default()
    };
    let (mut calls, mut ingested) = (0, 0);
    loop {
        let out = reconcile_within(&s, req, Duration::ZERO).await.unwrap();
        calls += 1;
        ingested += out.ingested;
        let Some(next) = out.next else { break };
        req = ReconcileRequest {
            cursor: Some(next),
            ..Default::default()
        };
        assert!(calls < 1000, "a call made no progress");
    }
    assert!(calls > 1, "the budget stopped at least one call");
    assert_eq!(ingested, 120);
    let ids = queued_ids(s.queue.as_ref()).await;
    let expected: Vec<String> = (0..120).map(|n| format!("evt_rc_{n:05}")).collect();
    assert_eq!(ids, expected, "every event once, oldest first");
}

#[tokio::test]
async fn a_slice_too_busy_to_list_is_halved_and_every_event_still_arrives() {
    let t = now() - 86400;
    let busy = SLICE_PAGES * 100 + 150;
    let events: Vec<Value> = (0..busy).map(|n| credits(n, t + n as i64)).collect();
    let stripe = stripe_with(events);
    let s = memory_services_with_stripe(&stripe, &[("STRIPE_SECRET_KEY", "sk_test_rc")]);

    let req = ReconcileRequest {
        since: Some(at(t)),
        ..Default::default()
    };
    let out = reconcile_within(&s, req, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!((out.ingested, out.next), (busy, None));
    assert_eq!(queued_ids(s.queue.as_ref()).await.len(), busy);
}

#[test]
fn the_operators_window_is_rfc_3339_or_unix_seconds_and_anything_else_is_refused_where_it_enters() {
    use billing_core::inbound::commands;
    let window =
        commands::reconcile(br#"{"since": "2026-11-30T10:00:00Z", "until": 1796040000}"#).unwrap();
    assert_eq!(window.since, Some(at(1_796_032_800)));
    assert_eq!(window.until, Some(at(1_796_040_000)));
    assert_eq!(
        commands::reconcile(b"").unwrap(),
        ReconcileRequest::default()
    );
    assert_eq!(
        commands::reconcile(b"{}").unwrap(),
        ReconcileRequest::default()
    );
    for body in [
        r#"{"since": "yesterday"}"#,
        r#"{"until": true}"#,
        r#"{"since": 1.5}"#,
        r#"{"since": 99999999999999999}"#,
        r#"{"window": 3}"#,
        r#""last week""#,
    ] {
        assert!(
            matches!(
                commands::reconcile(body.as_bytes()),
                Err(admin::AdminError::InvalidRequest(_))
            ),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_cursor_reconcile_never_gave_is_refused() {
    let s = memory_services(&[("STRIPE_SECRET_KEY", "sk_test_rc")]);
    let req = ReconcileRequest {
        cursor: Some("rc1.9.1.x".into()),
        ..Default::default()
    };
    assert!(matches!(
        admin::reconcile(&s, req).await,
        Err(admin::AdminError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn a_record_stuck_in_progress_past_its_lock_is_re_driven() {
    let t = now();
    let stuck = credits(1, t - 300);
    let stripe = stripe_with(vec![stuck.clone()]);
    let env = [
        ("STRIPE_SECRET_KEY", "sk_test_rc"),
        ("IN_PROGRESS_SECONDS", "60"),
    ];
    let mut h = Harness::new(&env, MemoryQueue::default(), t);
    h.services.stripe = Some(stripe);
    // A delivery claims the event, then its send never lands, and Stripe gives up.
    h.faults.fail_next("send", 1);
    let body = stuck.to_string();
    let header = signature(TEST_WEBHOOK_SECRET, h.clock.now().timestamp(), &body);
    assert!(
        intake::receive(&h.services, Some(&header), body.as_bytes())
            .await
            .is_err()
    );
    assert_eq!(h.queue.inner.depth(), 0);

    // Inside the lock the claim may still be finishing: left alone.
    let out = admin::reconcile(&h.services, ReconcileRequest::default())
        .await
        .unwrap();
    assert_eq!((out.fetched, out.ingested), (1, 0));
    h.clock.advance_secs(61);
    let out = admin::reconcile(&h.services, ReconcileRequest::default())
        .await
        .unwrap();
    assert_eq!((out.fetched, out.ingested), (1, 1));
    assert_eq!(queued_ids(h.queue.as_ref()).await, ["evt_rc_00001"]);
    let record = records::event::load(h.table.as_ref(), &EventId::parse("evt_rc_00001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, "in_progress", "queued, awaiting the worker");
}
