//! The publisher's thin handler: a batch of DynamoDB stream records (the mapping's filter
//! passes only the outbox items) → one `billing.entitlements.changed` per new version, in
//! order. The first record that fails is reported (`ReportBatchItemFailures`): the mapping
//! retries from it, so nothing after it is skipped and what came before is not repeated.

use billing_core::edge::runtime::Services;
use billing_core::events::EventBus;
use billing_core::store::records::entitlements::OutboxVersion;
use billing_core::store::{Item, Value};
use billing_core::usecases::entitlement_events;
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

/// Publishes each record's version in order; reports the first that failed.
pub async fn process_batch(
    services: &Services,
    bus: &dyn EventBus,
    event: StreamEvent,
) -> StreamResponse {
    let records = event
        .records
        .into_iter()
        .map(|r| {
            let version = OutboxVersion::from_item(&image_item(&r.dynamodb.new_image));
            (r.dynamodb.sequence_number, version)
        })
        .collect();
    match entitlement_events::publish_in_order(services, bus, records).await {
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
