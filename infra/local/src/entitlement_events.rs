//! The entitlement events, locally: the DynamoDB stream → publisher mapping (as Lambda's
//! event source mapping runs it in AWS) and the read-back of what reached the bus.
//!
//! The mapping reads the table's stream in moto from its oldest record (`TRIM_HORIZON`, as
//! the template's mapping starts), hands each batch to the publisher's real handler as the
//! DynamoDB stream event Lambda delivers, and when the handler reports a failed record
//! reads the shard again from that record (`ReportBatchItemFailures`), so a failed publish
//! is retried and nothing after it is skipped. The template's filter passes only outbox
//! items; the handler itself ignores every other record, so the mapping passes them all.
//!
//! The read-back is what an app's own subscription would be: a rule on the stack's bus
//! (in moto's EventBridge) targeting an SQS queue the stack drains into the last
//! [`KEPT`] events, served at `GET /_local/entitlement-events`.

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use billing_core::app::Services;
use billing_core::events::{DETAIL_TYPE, EventBus, SOURCE};
use publisher::{StreamData, StreamEvent, StreamRecord};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many published events the local stack keeps.
pub const KEPT: usize = 1000;

fn image_json(image: &HashMap<String, AttributeValue>) -> BTreeMap<String, Value> {
    image
        .iter()
        .filter_map(|(name, v)| {
            let value = match v {
                AttributeValue::S(s) => json!({ "S": s }),
                AttributeValue::N(n) => json!({ "N": n }),
                AttributeValue::Bool(b) => json!({ "BOOL": b }),
                _ => return None,
            };
            Some((name.clone(), value))
        })
        .collect()
}

/// Where the mapping reads a shard from next.
#[derive(Debug, Clone)]
enum Position {
    Oldest,
    After(String),
    /// The record the publisher reported failed: read again from it.
    At(String),
}

/// Runs until the task is dropped: every shard of `stream_arn`, oldest record first.
///
/// Each poll asks for a fresh iterator from the last record handled rather than keeping
/// the next iterator: moto rolls a cancelled transaction back by replacing the table with a
/// copy, and an iterator kept across that would read the replaced one (`infra/moto_atomic.py`).
pub async fn run_mapping(
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    services: Services,
    bus: Arc<dyn EventBus>,
    timeout: Duration,
) {
    let mut shards: HashMap<String, Position> = HashMap::new();
    let mut idle_polls = 0u32;
    loop {
        // New shards are looked for now and then (moto keeps one; DynamoDB splits them).
        if idle_polls.is_multiple_of(20)
            && let Ok(out) = streams
                .describe_stream()
                .stream_arn(&stream_arn)
                .send()
                .await
        {
            let found = out
                .stream_description
                .and_then(|d| d.shards)
                .unwrap_or_default();
            for shard in found {
                if let Some(id) = shard.shard_id {
                    shards.entry(id).or_insert(Position::Oldest);
                }
            }
        }
        let mut busy = false;
        for (shard, position) in shards.iter_mut() {
            let Some(it) = iterator(&streams, &stream_arn, shard, position).await else {
                continue;
            };
            let Ok(out) = streams.get_records().shard_iterator(&it).send().await else {
                continue;
            };
            let records = out.records.unwrap_or_default();
            let Some(last) = records
                .last()
                .and_then(|r| r.dynamodb.as_ref())
                .and_then(|d| d.sequence_number.clone())
            else {
                continue;
            };
            busy = true;
            let event = StreamEvent {
                records: records
                    .iter()
                    .filter_map(|r| {
                        let data = r.dynamodb.as_ref()?;
                        Some(StreamRecord {
                            event_name: r.event_name.as_ref()?.as_str().to_owned(),
                            dynamodb: StreamData {
                                sequence_number: data.sequence_number.clone()?,
                                new_image: data
                                    .new_image
                                    .as_ref()
                                    .map(image_json)
                                    .unwrap_or_default(),
                            },
                        })
                    })
                    .collect(),
            };
            let first = event
                .records
                .first()
                .map(|r| r.dynamodb.sequence_number.clone());
            // The publisher's Timeout from the template, as Lambda stops it: a batch stopped
            // there is retried whole, from its first record, as the stream mapping does.
            let Ok(response) = tokio::time::timeout(
                timeout,
                publisher::process_batch(&services, bus.as_ref(), event),
            )
            .await
            else {
                tracing::error!(
                    timeout_s = timeout.as_secs(),
                    "Task timed out: the publisher batch was stopped; retried whole"
                );
                if let Some(first) = first {
                    *position = Position::At(first);
                }
                continue;
            };
            *position = match response.batch_item_failures.first() {
                Some(failed) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Position::At(failed.item_identifier.clone())
                }
                None => Position::After(last),
            };
        }
        // Every poll takes moto's DynamoDB lock (infra/moto_atomic.py): an idle stack backs
        // off to a few polls a second so it does not slow the others sharing that moto.
        if busy {
            idle_polls = 0;
        } else {
            idle_polls = idle_polls.saturating_add(1);
            let pause = if idle_polls < 10 { 100 } else { 400 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
}

async fn iterator(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    shard: &str,
    position: &Position,
) -> Option<String> {
    let req = streams
        .get_shard_iterator()
        .stream_arn(stream_arn)
        .shard_id(shard);
    let req = match position {
        Position::Oldest => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
        Position::After(seq) => req
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(seq),
        Position::At(seq) => req
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(seq),
    };
    req.send().await.ok().and_then(|o| o.shard_iterator)
}

/// The events an SQS queue subscribed to the bus received, newest last.
#[derive(Debug, Default)]
pub struct Received {
    events: Mutex<VecDeque<Value>>,
}

impl Received {
    pub fn snapshot(&self) -> Vec<Value> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
    fn push(&self, event: Value) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push_back(event);
        while events.len() > KEPT {
            events.pop_front();
        }
    }
}

/// A subscription to the bus's entitlement events: an SQS queue and a rule targeting it.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

/// Subscribes a new queue `{name}` to the entitlement events of `bus`, with the rule an
/// app would write (docs/server.md, "Entitlement events").
pub async fn subscribe(
    events: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
    bus: &str,
    name: &str,
) -> Result<Subscription, String> {
    let err = |e: &dyn std::fmt::Display| format!("subscribing {name} to {bus}: {e}");
    let queue_url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| err(&aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .queue_url
        .unwrap_or_default();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| err(&aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .unwrap_or_default();
    let pattern = json!({ "source": [SOURCE], "detail-type": [DETAIL_TYPE] }).to_string();
    events
        .put_rule()
        .name(name)
        .event_bus_name(bus)
        .event_pattern(pattern)
        .send()
        .await
        .map_err(|e| err(&aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("entitlement-events")
        .arn(arn)
        .build()
        .map_err(|e| err(&e))?;
    events
        .put_targets()
        .rule(name)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .map_err(|e| err(&aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
    Ok(Subscription {
        sqs: sqs.clone(),
        queue_url,
    })
}

impl Subscription {
    /// The events waiting in the queue (EventBridge's envelopes), removed from it.
    pub async fn drain(&self, wait: Duration) -> Result<Vec<Value>, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait.as_secs() as i32)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let mut events = Vec::new();
        for m in out.messages.unwrap_or_default() {
            if let Some(body) = m.body.as_deref()
                && let Ok(event) = serde_json::from_str::<Value>(body)
            {
                events.push(event);
            }
            if let Some(receipt) = m.receipt_handle {
                let _ = self
                    .sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await;
            }
        }
        Ok(events)
    }

    /// Runs until the task is dropped, keeping what arrives in `into`.
    pub async fn run(self, into: Arc<Received>) {
        loop {
            match self.drain(Duration::from_secs(1)).await {
                Ok(events) => events.into_iter().for_each(|e| into.push(e)),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the entitlement events failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_back_keeps_the_last_thousand_events_oldest_first() {
        let received = Received::default();
        for n in 0..(KEPT + 5) {
            received.push(json!({ "n": n }));
        }
        let kept = received.snapshot();
        assert_eq!(
            (kept.len(), kept.first().cloned(), kept.last().cloned()),
            (
                KEPT,
                Some(json!({ "n": 5 })),
                Some(json!({ "n": KEPT + 4 }))
            )
        );
    }
}
