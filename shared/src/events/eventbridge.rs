//! The EventBridge adapter of the event bus port: one `PutEvents` entry per event, on the
//! stack's bus, with [`SOURCE`] and [`DETAIL_TYPE`]. An entry EventBridge reports as failed
//! is an error, so the caller publishes it again (at least once).

use super::{BusError, DETAIL_TYPE, EntitlementsChanged, EventBus, SOURCE};
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, event: &EntitlementsChanged) -> Result<(), BusError> {
        let detail = serde_json::to_string(event)
            .map_err(|e| BusError::Unavailable(format!("unserialisable event: {e}")))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| BusError::Unavailable(DisplayErrorContext(e).to_string()))?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(BusError::Unavailable(format!("entry refused: {why}")));
        }
        Ok(())
    }
}
