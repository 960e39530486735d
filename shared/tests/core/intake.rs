//! Webhook intake, on in-memory adapters: verification, idempotency, crash recovery.

use billing_core::domain::ids::EventId;
use billing_core::queue::Queue;
use billing_core::queue::memory::MemoryQueue;
use billing_core::store::records;
use billing_core::store::records::event::state;
use billing_core::store::{ItemExt, Table};
use billing_core::stripe::signature::SignatureError;
use billing_core::usecases::intake::{self, IntakeError, IntakeOutcome};
use billing_testing::harness::Harness;
use billing_testing::{TEST_WEBHOOK_SECRET, checkout_session, event, signature};
use std::sync::Arc;
use std::time::Duration;

const NOW: i64 = 1_795_000_000;

/// The core's harness, with the steps of a webhook delivery.
struct H(Harness);

impl std::ops::Deref for H {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.0
    }
}

fn harness(extra: &[(&str, &str)]) -> H {
    H(Harness::new(extra, MemoryQueue::default(), NOW))
}

fn credits_event(id: &str) -> String {
    let session = checkout_session(
        &format!("cs_test_{id}"),
        "user_1",
        "credits_starter",
        "paid",
        1000,
    );
    event(id, "checkout.session.completed", NOW - 5, session).to_string()
}

impl H {
    fn now(&self) -> i64 {
        use billing_core::domain::clock::Clock;
        self.clock.now().timestamp()
    }
    async fn deliver(&self, body: &str) -> Result<IntakeOutcome, IntakeError> {
        let header = signature(TEST_WEBHOOK_SECRET, self.now(), body);
        intake::receive(&self.services, Some(&header), body.as_bytes()).await
    }
    async fn record_status(&self, id: &str) -> Option<String> {
        let key = records::event::key(&EventId::parse(id).unwrap());
        self.table
            .get(&key)
            .await
            .unwrap()
            .and_then(|i| i.str("status").map(str::to_owned))
    }
    async fn queued_bodies(&self) -> Vec<String> {
        let got = self.queue.receive(10, Duration::ZERO).await.unwrap();
        got.into_iter().map(|m| m.body).collect()
    }
}

#[tokio::test]
async fn a_new_signed_event_is_recorded_and_queued_once_in_two_calls() {
    let h = harness(&[]);
    let body = credits_event("evt_new_1");
    assert_eq!(h.deliver(&body).await.unwrap(), IntakeOutcome::Queued);
    assert_eq!(h.faults.calls(), 2, "{}", h.faults.trace());
    // Claimed and sent; the worker settles the record, intake never marks it.
    assert_eq!(
        h.record_status("evt_new_1").await.as_deref(),
        Some(state::IN_PROGRESS)
    );
    assert_eq!(h.queued_bodies().await, vec![body]);
}

#[tokio::test]
async fn the_same_event_again_is_a_duplicate_and_is_queued_only_once() {
    let h = harness(&[]);
    let body = credits_event("evt_dup_1");
    h.deliver(&body).await.unwrap();
    assert_eq!(h.deliver(&body).await.unwrap(), IntakeOutcome::Duplicate);
    // Not settled yet: the duplicate re-sends under the same deduplication id, which the
    // queue drops.
    assert_eq!(h.queue.inner.depth(), 1);
}

#[tokio::test]
async fn a_duplicate_of_a_settled_event_sends_nothing() {
    let h = harness(&[]);
    let body = credits_event("evt_dup_settled");
    h.deliver(&body).await.unwrap();
    let m = h.queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
    billing_core::usecases::fulfil::process(&h.services, &m.body)
        .await
        .unwrap();
    h.queue.delete(&m.receipt).await.unwrap();
    let sends = h.queue.inner.send_requests();
    assert_eq!(h.deliver(&body).await.unwrap(), IntakeOutcome::Duplicate);
    assert_eq!(h.queue.inner.send_requests(), sends);
}

#[tokio::test]
async fn twenty_concurrent_deliveries_queue_the_event_once() {
    let h = Arc::new(harness(&[]));
    let body = credits_event("evt_storm_1");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (h, body) = (h.clone(), body.clone());
            tokio::spawn(async move { h.deliver(&body).await })
        })
        .collect();
    let mut queued = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(IntakeOutcome::Queued) => queued += 1,
            Ok(IntakeOutcome::Duplicate) | Err(IntakeError::InProgress) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(queued, 1);
    assert_eq!(h.queue.inner.depth(), 1);
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_stores_nothing() {
    let h = harness(&[]);
    let body = credits_event("evt_bad_sig");
    let header = signature("whsec_wrong", h.now(), &body);
    let err = intake::receive(&h.services, Some(&header), body.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        IntakeError::InvalidSignature(SignatureError::BadSignature)
    ));
    assert!(h.table.inner.is_empty());
    assert_eq!(h.queue.inner.depth(), 0);
}

#[tokio::test]
async fn a_stale_signature_is_refused_and_stores_nothing() {
    let h = harness(&[]);
    let body = credits_event("evt_stale");
    let header = signature(TEST_WEBHOOK_SECRET, h.now() - 301, &body);
    let err = intake::receive(&h.services, Some(&header), body.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        IntakeError::InvalidSignature(SignatureError::BadTimestamp)
    ));
    assert!(h.table.inner.is_empty());
}

#[tokio::test]
async fn a_missing_signature_an_oversized_body_and_a_non_event_are_refused() {
    let h = harness(&[]);
    let body = credits_event("evt_x");
    assert!(matches!(
        intake::receive(&h.services, None, body.as_bytes()).await,
        Err(IntakeError::MissingSignature)
    ));
    let huge = "x".repeat(intake::MAX_BODY_BYTES + 1);
    assert!(matches!(
        h.deliver(&huge).await,
        Err(IntakeError::PayloadTooLarge)
    ));
    assert!(matches!(
        h.deliver("{\"not\":\"an event\"}").await,
        Err(IntakeError::InvalidPayload(_))
    ));
    let bad_id = event(
        "not_an_evt_id",
        "checkout.session.completed",
        NOW,
        serde_json::json!({}),
    )
    .to_string();
    assert!(matches!(
        h.deliver(&bad_id).await,
        Err(IntakeError::InvalidPayload(_))
    ));
    assert!(h.table.inner.is_empty());
}

#[tokio::test]
async fn an_event_type_we_do_not_act_on_is_recorded_as_ignored_and_not_queued() {
    let h = harness(&[]);
    let body = event(
        "evt_plan_created",
        "plan.created",
        NOW,
        billing_testing::fixture("plan"),
    )
    .to_string();
    assert_eq!(h.deliver(&body).await.unwrap(), IntakeOutcome::Ignored);
    assert_eq!(h.deliver(&body).await.unwrap(), IntakeOutcome::Ignored);
    assert_eq!(
        h.record_status("evt_plan_created").await.as_deref(),
        Some(state::IGNORED)
    );
    assert_eq!(h.queue.inner.depth(), 0);
}

#[tokio::test]
async fn a_test_mode_event_under_a_live_key_is_left_for_stripe_to_retry_and_records_nothing() {
    let h = harness(&[("STRIPE_SECRET_KEY", "sk_live_123")]);
    let body = credits_event("evt_test_mode");
    assert!(matches!(
        h.deliver(&body).await,
        Err(IntakeError::ModeMismatch { event_live: false })
    ));
    assert_eq!(h.queue.inner.depth(), 0);
    // Nothing recorded: the retry (or reconcile) under an agreeing key takes it as new.
    assert_eq!(h.record_status("evt_test_mode").await, None);
    // An event type the project never acts on is still recorded ignored, in either mode.
    let other = event(
        "evt_plan_live",
        "plan.created",
        NOW,
        billing_testing::fixture("plan"),
    )
    .to_string();
    assert_eq!(h.deliver(&other).await.unwrap(), IntakeOutcome::Ignored);
}

#[tokio::test]
async fn an_unconfigured_webhook_secret_refuses_every_event() {
    let h = harness(&[("STRIPE_WEBHOOK_SECRET", "")]);
    assert!(matches!(
        h.deliver(&credits_event("evt_nc")).await,
        Err(IntakeError::NotConfigured)
    ));
}

#[tokio::test]
async fn a_failed_send_answers_an_error_and_stripes_retry_queues_the_event() {
    let h = harness(&[]);
    let body = credits_event("evt_send_fails");
    h.faults.fail_next("send", 1);
    assert!(matches!(h.deliver(&body).await, Err(IntakeError::Queue(_))));
    assert_eq!(h.queue.inner.depth(), 0);
    // Stripe retries at once: the claim is unsettled, so the retry sends the event.
    assert_eq!(h.deliver(&body).await.unwrap(), IntakeOutcome::Duplicate);
    assert_eq!(h.queued_bodies().await, vec![body]);
}

#[tokio::test]
async fn a_crash_between_the_claim_and_the_send_is_recovered_by_the_next_retry() {
    let h = harness(&[("IN_PROGRESS_SECONDS", "60")]);
    let body = credits_event("evt_crash");
    // The claim is written, then the send never lands (the process dies, or SQS is down).
    h.faults.fail_next("send", 1);
    assert!(h.deliver(&body).await.is_err());
    assert_eq!(
        h.record_status("evt_crash").await.as_deref(),
        Some(state::IN_PROGRESS)
    );
    assert_eq!(h.queue.inner.depth(), 0);
    // Stripe's retry, even inside the lock, finds the claim unsettled and sends the event.
    h.clock.advance_secs(10);
    assert_eq!(h.deliver(&body).await.unwrap(), IntakeOutcome::Duplicate);
    assert_eq!(h.queued_bodies().await, vec![body]);
}

#[tokio::test]
async fn a_store_outage_answers_an_error_and_queues_nothing() {
    let h = harness(&[]);
    h.faults.fail_next("put", 1);
    assert!(matches!(
        h.deliver(&credits_event("evt_store_down")).await,
        Err(IntakeError::Store(_))
    ));
    assert_eq!(h.queue.inner.depth(), 0);
    assert_eq!(
        h.deliver(&credits_event("evt_store_down")).await.unwrap(),
        IntakeOutcome::Queued
    );
}

#[tokio::test]
async fn an_event_whose_record_could_not_be_marked_queued_is_still_queued() {
    let h = harness(&[]);
    let body = credits_event("evt_mark_fails");
    h.faults.fail_next("update", 1);
    assert_eq!(h.deliver(&body).await.unwrap(), IntakeOutcome::Queued);
    assert_eq!(h.queue.inner.depth(), 1);
}

#[tokio::test]
async fn intake_counts_every_accepted_delivery_and_names_duplicates_and_ignored_types() {
    use billing_core::metrics::Metric::{EventDuplicate, EventIgnored, EventReceived};
    let h = harness(&[]);
    let body = credits_event("evt_counted_1");
    h.deliver(&body).await.unwrap();
    h.deliver(&body).await.unwrap();
    let ignored = event(
        "evt_counted_2",
        "customer.created",
        NOW - 5,
        serde_json::json!({"id": "cus_1", "object": "customer"}),
    )
    .to_string();
    assert_eq!(h.deliver(&ignored).await.unwrap(), IntakeOutcome::Ignored);
    assert_eq!(
        h.metrics.recorded(),
        [
            EventReceived,
            EventReceived,
            EventDuplicate,
            EventReceived,
            EventIgnored
        ]
    );
}
