//! The publisher's thin handler: a batch of DynamoDB stream records (the mapping's filter
//! passes only the outbox items and new meter reports) → one `billing.entitlements.changed`
//! per new version, and each new meter report onto the fulfilment queue, in order
//! (`usecases::stream`). The first record that fails is reported (`ReportBatchItemFailures`):
//! the mapping retries from it, so nothing after it is skipped and what came before is not
//! repeated.

use billing_core::app::Services;
use billing_core::events::EventBus;
use billing_core::store::records::entitlements::OutboxVersion;
use billing_core::store::records::meter_report;
use billing_core::store::{Item, Value};
use billing_core::usecases::stream::{self, Relayed};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The variable naming the bus (`template.yaml` gives it to this function only).
pub const BUS_ENV: &str = "EVENT_BUS_NAME";

#[derive(Debug, thiserror::Error)]
#[error("{BUS_ENV} is not set")]
pub struct NoBus;

pub fn bus_name(lookup: impl Fn(&str) -> Option<String>) -> Result<String, NoBus> {
    lookup(BUS_ENV).filter(|v| !v.is_empty()).ok_or(NoBus)
}

/// A DynamoDB stream batch, as Lambda delivers it (only what the publisher reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamRecord {
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    pub dynamodb: StreamData,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamData {
    #[serde(rename = "SequenceNumber")]
    pub sequence_number: String,
    #[serde(rename = "NewImage", default)]
    pub new_image: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// A stream image (DynamoDB's attribute-value JSON) as a store item; attributes of other
/// types than the store's are left out.
pub fn image_item(image: &BTreeMap<String, serde_json::Value>) -> Item {
    image
        .iter()
        .filter_map(|(name, v)| {
            let value = if let Some(s) = v.get("S").and_then(|s| s.as_str()) {
                Value::S(s.to_owned())
            } else if let Some(n) = v.get("N").and_then(|n| n.as_str()) {
                Value::N(n.parse().ok()?)
            } else {
                Value::B(v.get("BOOL")?.as_bool()?)
            };
            Some((name.clone(), value))
        })
        .collect()
}

/// What a stream record holds for the relay: an outbox version, or a meter report's insert
/// (only its insert: the worker's later updates of the record relay nothing).
fn relayed(record: &StreamRecord) -> Option<Relayed> {
    let image = image_item(&record.dynamodb.new_image);
    if let Some(version) = OutboxVersion::from_item(&image) {
        return Some(Relayed::Version(version));
    }
    let (id, message) = meter_report::to_relay(&image).filter(|_| record.event_name == "INSERT")?;
    Some(Relayed::MeterReport { id, message })
}

/// Relays each record in order; reports the first that failed.
pub async fn process_batch(
    services: &Services,
    bus: &dyn EventBus,
    event: StreamEvent,
) -> StreamResponse {
    let records = event
        .records
        .iter()
        .map(|r| (r.dynamodb.sequence_number.clone(), relayed(r)))
        .collect();
    match stream::relay_in_order(services, bus, records).await {
        Ok(()) => StreamResponse::default(),
        Err((sequence, _)) => StreamResponse {
            batch_item_failures: vec![ItemFailure {
                item_identifier: sequence,
            }],
        },
    }
}

pub async fn handle(
    services: &Services,
    bus: &dyn EventBus,
    event: LambdaEvent<StreamEvent>,
) -> Result<StreamResponse, lambda_runtime::Error> {
    Ok(process_batch(services, bus, event.payload).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_core::events::memory::MemoryBus;
    use billing_testing::faults::{Faults, FaultyBus};
    use billing_testing::memory_services;

    const SAMPLE: &str = include_str!("../../../events/publisher-stream.json");

    #[tokio::test]
    async fn the_sample_record_publishes_user_demos_version_1() {
        let bus = MemoryBus::default();
        let event: StreamEvent = serde_json::from_str(SAMPLE).unwrap();
        let response = process_batch(&memory_services(&[]), &bus, event).await;
        assert_eq!(response, StreamResponse::default());
        let published: Vec<(String, i64)> = bus
            .published()
            .into_iter()
            .map(|e| (e.id, e.version))
            .collect();
        assert_eq!(published, vec![("user_demo:1".to_owned(), 1)]);
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_published_is_reported_by_its_sequence_number() {
        let event: StreamEvent = serde_json::from_str(SAMPLE).unwrap();
        let sequence = event.records[0].dynamodb.sequence_number.clone();
        let faults = Faults::new();
        faults.fail_next("publish", 1);
        let bus = FaultyBus {
            inner: MemoryBus::default(),
            faults,
        };
        let response = process_batch(&memory_services(&[]), &bus, event).await;
        assert_eq!(
            response.batch_item_failures,
            vec![ItemFailure {
                item_identifier: sequence
            }]
        );
    }

    #[tokio::test]
    async fn a_record_of_another_item_publishes_nothing() {
        let bus = MemoryBus::default();
        let mut event: StreamEvent = serde_json::from_str(SAMPLE).unwrap();
        event.records[0]
            .dynamodb
            .new_image
            .insert("sk".into(), serde_json::json!({ "S": "PROFILE" }));
        let response = process_batch(&memory_services(&[]), &bus, event).await;
        assert_eq!(
            (response, bus.published().len()),
            (StreamResponse::default(), 0)
        );
    }
}
