//! The queue worker: applies each Stripe event of an SQS batch (`docs/api.md`, "Fulfilment semantics").
//!
//! Reports partial batch failures, so only failed messages return to the queue. The queue
//! is FIFO: once a message of a group fails, the group's later messages in the batch are
//! handed back unprocessed, so one account's events still apply in order; on their last
//! receive they are recorded `failed` ([`fulfil::held_back`]), as they go to the
//! dead-letter queue with it.
//!
//! The worker keeps a time budget (docs/stripe-fidelity.md): it starts no event it could
//! not finish before the invocation's deadline (Lambda's context gives it) with Stripe at
//! its slowest ([`fulfil::worst_case_event`]), and hands that event and the rest of the
//! batch back as batch item failures, so Lambda never has to stop a batch half-way. An
//! event that still runs too long is dropped [`FINISHING`] before the deadline (it wrote
//! nothing: its effects are one transaction) and handed back too. Messages on their last
//! receive are recorded `failed` first ([`fulfil::last_receive`]), so even a batch that is
//! stopped leaves no record `queued` once its messages reach the dead-letter queue.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use billing_core::app::Services;
use billing_core::stripe::api::RetryPolicy;
use billing_core::usecases::fulfil;
use lambda_runtime::{Error, LambdaEvent};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// Kept free before the deadline to record what was handed back and answer.
pub const FINISHING: Duration = Duration::from_secs(2);

pub async fn handle(
    services: &Services,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(process_batch(services, event.payload, deadline_of(event.context.deadline)).await)
}

/// The worker's `Timeout` in template.yaml, for a runtime that gives no deadline.
pub const TEMPLATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The invocation's deadline from the context (Unix milliseconds). Lambda always sets it;
/// an emulator that does not (`cargo lambda watch` gives none) gets the template's timeout
/// from now, so a batch is not handed back whole for want of a deadline.
pub fn deadline_of(context_deadline_ms: u64) -> SystemTime {
    let given = SystemTime::UNIX_EPOCH + Duration::from_millis(context_deadline_ms);
    if given > SystemTime::now() {
        given
    } else {
        tracing::warn!(
            context_deadline_ms,
            "the runtime gave no future deadline; assuming the template's timeout"
        );
        SystemTime::now() + TEMPLATE_TIMEOUT
    }
}

fn receives(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// Applies the batch's events in order until `deadline` comes too close (see the module).
pub async fn process_batch(
    services: &Services,
    batch: SqsEvent,
    deadline: SystemTime,
) -> SqsBatchResponse {
    let budget = fulfil::worst_case_event(&RetryPolicy::default());
    for record in &batch.records {
        fulfil::last_receive(
            services,
            record.body.as_deref().unwrap_or_default(),
            receives(record),
        )
        .await;
    }
    // Each failed group and the event that failed it.
    let mut failed_groups: HashMap<String, String> = HashMap::new();
    let mut out_of_time = false;
    let mut response = SqsBatchResponse::default();
    for record in batch.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        out_of_time = out_of_time || left < budget + FINISHING;
        let failed = if out_of_time {
            tracing::warn!(message_id = %id, left_ms = left.as_millis() as u64, "not started: the batch's time budget is spent; handed back");
            fulfil::out_of_time(services, body, receives(&record)).await;
            true
        } else if let Some(behind) = failed_groups.get(&group) {
            fulfil::held_back(services, body, receives(&record), behind).await;
            true
        } else {
            match tokio::time::timeout(left - FINISHING, fulfil::process(services, body)).await {
                Ok(Ok(outcome)) => {
                    tracing::info!(message_id = %id, ?outcome, "event applied");
                    false
                }
                // The error is already recorded on the event and logged by the use case.
                Ok(Err(_)) => true,
                Err(_) => {
                    tracing::error!(message_id = %id, "event stopped before the deadline; handed back");
                    out_of_time = true;
                    fulfil::out_of_time(services, body, receives(&record)).await;
                    true
                }
            }
        };
        if failed {
            failed_groups
                .entry(group)
                .or_insert_with(|| fulfil::event_id_of(body, &id));
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_core::domain::ids::UserId;
    use billing_core::usecases::account::account;
    use billing_testing::memory_services;

    const SAMPLE: &str = include_str!("../../../events/worker-sqs.json");

    /// The deadline of an invocation that just started, as the template's 30 s give it.
    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(30)
    }

    fn batch(bodies: &[(&str, &str, String)]) -> SqsEvent {
        let mut event: SqsEvent = serde_json::from_str(SAMPLE).unwrap();
        let template = event.records[0].clone();
        event.records = bodies
            .iter()
            .map(|(id, group, body)| {
                let mut r = template.clone();
                r.message_id = Some(id.to_string());
                r.body = Some(body.clone());
                r.attributes
                    .insert("MessageGroupId".into(), group.to_string());
                r
            })
            .collect();
        event
    }

    #[tokio::test]
    async fn the_sample_batch_applies_and_reports_no_failure() {
        let services = memory_services(&[]);
        let event: SqsEvent = serde_json::from_str(SAMPLE).unwrap();
        let response = process_batch(&services, event, later()).await;
        assert!(response.batch_item_failures.is_empty());
        let user = UserId::parse("user_demo").unwrap();
        assert_eq!(
            account(&services, &user).await.unwrap().credits.balance,
            1000
        );
    }

    #[tokio::test]
    async fn a_failure_holds_back_the_rest_of_its_group_but_not_other_groups() {
        let services = memory_services(&[]);
        let sample: SqsEvent = serde_json::from_str(SAMPLE).unwrap();
        let good = sample.records[0].body.clone().unwrap();
        let other_group = good
            .replace("evt_demo_credits_starter_completed", "evt_other")
            .replace("cs_test_demo_credits_starter", "cs_test_other");
        let response = process_batch(
            &services,
            batch(&[
                ("m1", "cus_a", "not json".into()),
                ("m2", "cus_a", good.clone()),
                ("m3", "cus_b", other_group),
            ]),
            later(),
        )
        .await;
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["m1", "m2"]);
        let user = UserId::parse("user_demo").unwrap();
        assert_eq!(
            account(&services, &user).await.unwrap().credits.balance,
            1000,
            "only m3 applied"
        );
    }

    #[tokio::test]
    async fn a_batch_without_time_for_one_more_event_hands_the_rest_back_unstarted() {
        let services = memory_services(&[]);
        let sample: SqsEvent = serde_json::from_str(SAMPLE).unwrap();
        let good = sample.records[0].body.clone().unwrap();
        // Less time left than one worst-case event needs: nothing is started.
        let soon = SystemTime::now() + fulfil::worst_case_event(&RetryPolicy::default());
        let response =
            process_batch(&services, batch(&[("m1", "cus_a", good.clone())]), soon).await;
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["m1"]);
        let user = UserId::parse("user_demo").unwrap();
        assert_eq!(account(&services, &user).await.unwrap().credits.balance, 0);
        // With the budget, the same message applies.
        let response = process_batch(&services, batch(&[("m1", "cus_a", good)]), later()).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(
            account(&services, &user).await.unwrap().credits.balance,
            1000
        );
    }

    #[tokio::test]
    async fn a_redelivered_batch_changes_nothing() {
        let services = memory_services(&[]);
        for _ in 0..3 {
            let event: SqsEvent = serde_json::from_str(SAMPLE).unwrap();
            assert!(
                process_batch(&services, event, later())
                    .await
                    .batch_item_failures
                    .is_empty()
            );
        }
        let user = UserId::parse("user_demo").unwrap();
        assert_eq!(
            account(&services, &user).await.unwrap().credits.balance,
            1000
        );
    }
}
