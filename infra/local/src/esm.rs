//! The local SQS event source mapping: polls the fulfilment queue, hands batches to the
//! worker's real handler as an `SqsEvent`, deletes what succeeded and leaves the reported
//! failures to come back after the visibility timeout (and, after `maxReceiveCount`, to go
//! to the dead-letter queue), as Lambda's mapping does with `ReportBatchItemFailures`.
//! Each batch runs under the worker's `Timeout` from the template, with the deadline in its
//! context as Lambda gives it: a batch that runs past it is stopped there (its future
//! dropped), nothing of it is deleted, and all its messages come back after the visibility
//! timeout, as from Lambda.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use billing_core::app::Services;
use billing_core::queue::{Queue, ReceivedMessage};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

fn to_record(m: &ReceivedMessage, queue_arn: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(m.message_id.clone());
    record.receipt_handle = Some(m.receipt.clone());
    record.body = Some(m.body.clone());
    record.event_source = Some("aws:sqs".into());
    record.event_source_arn = Some(queue_arn.to_owned());
    record.aws_region = Some("us-east-1".into());
    record.attributes = HashMap::from([
        ("MessageGroupId".to_owned(), m.group.clone()),
        (
            "ApproximateReceiveCount".to_owned(),
            m.receive_count.to_string(),
        ),
    ]);
    record
}

/// Runs until the task is dropped. While `paused` it does not poll, so messages gather in
/// the queue and the next receive takes them as one batch (as Lambda's mapping does when
/// the function was busy).
pub async fn run(
    services: Services,
    queue: Arc<dyn Queue>,
    queue_arn: String,
    paused: Arc<AtomicBool>,
    timeout: Duration,
) {
    loop {
        if paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let messages = match queue.receive(10, Duration::from_secs(1)).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "polling the fulfilment queue failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(|m| to_record(m, &queue_arn)).collect();
        let deadline = SystemTime::now() + timeout;
        let Ok(response) =
            tokio::time::timeout(timeout, worker::process_batch(&services, event, deadline)).await
        else {
            tracing::error!(
                timeout_s = timeout.as_secs(),
                messages = messages.len(),
                "Task timed out: the worker batch was stopped; its messages return after the visibility timeout"
            );
            continue;
        };
        let failed: HashSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        for m in messages
            .iter()
            .filter(|m| !failed.contains(m.message_id.as_str()))
        {
            if let Err(e) = queue.delete(&m.receipt).await {
                tracing::warn!(error = %e, "deleting a processed message failed; it will be redelivered harmlessly");
            }
        }
    }
}
