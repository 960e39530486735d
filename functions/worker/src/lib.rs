//! The queue worker: applies each Stripe event of an SQS batch (`docs/api.md`, "Fulfilment semantics").
//!
//! Reports partial batch failures, so only failed messages return to the queue. The queue
//! is FIFO: once a message of a group fails, the group's later messages in the batch are
//! handed back unprocessed, so one account's events still apply in order; on their last
//! receive they are recorded `failed` ([`fulfil::held_back`]), as they go to the
//! dead-letter queue with it.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use billing_core::edge::runtime::Services;
use billing_core::usecases::fulfil;
use lambda_runtime::{Error, LambdaEvent};
use std::collections::HashMap;

pub async fn handle(
    services: &Services,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(process_batch(services, event.payload).await)
}

pub async fn process_batch(services: &Services, batch: SqsEvent) -> SqsBatchResponse {
    // Each failed group and the event that failed it.
    let mut failed_groups: HashMap<String, String> = HashMap::new();
    let mut response = SqsBatchResponse::default();
    for record in batch.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let failed = if let Some(behind) = failed_groups.get(&group) {
            let receives = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            fulfil::held_back(services, body, receives, behind).await;
            true
        } else {
            match fulfil::process(services, body).await {
                Ok(outcome) => {
                    tracing::info!(message_id = %id, ?outcome, "event applied");
                    false
                }
                // The error is already recorded on the event and logged by the use case.
                Err(_) => true,
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
        let response = process_batch(&services, event).await;
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
    async fn a_redelivered_batch_changes_nothing() {
        let services = memory_services(&[]);
        for _ in 0..3 {
            let event: SqsEvent = serde_json::from_str(SAMPLE).unwrap();
            assert!(
                process_batch(&services, event)
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
