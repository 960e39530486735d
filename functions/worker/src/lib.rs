//! The queue worker: applies each Stripe event of an SQS batch (API.md, Fulfilment).
//!
//! Reports partial batch failures, so only failed messages return to the queue. The queue
//! is FIFO: once a message of a group fails, the group's later messages in the batch are
//! handed back unprocessed, so one account's events still apply in order.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use billing_core::fulfil;
use billing_core::runtime::Services;
use lambda_runtime::{Error, LambdaEvent};
use std::collections::HashSet;

pub async fn handle(
    services: &Services,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    Ok(process_batch(services, event.payload).await)
}

pub async fn process_batch(services: &Services, batch: SqsEvent) -> SqsBatchResponse {
    let mut failed_groups = HashSet::new();
    let mut response = SqsBatchResponse::default();
    for record in batch.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_default();
        let failed = if failed_groups.contains(&group) {
            true
        } else {
            let body = record.body.as_deref().unwrap_or_default();
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
            failed_groups.insert(group);
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
