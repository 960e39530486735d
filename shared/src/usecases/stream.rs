//! The table's stream, relayed in commit order (the publisher function): each new version of
//! an account's entitlement outbox is published as `billing.entitlements.changed`
//! ([`entitlement_events`]), and each new Stripe meter report is handed to the fulfilment
//! queue, whose worker reports it (`store::records::meter_report`).
//!
//! A stream record exists exactly when its transaction committed, so a report whose track
//! committed is queued even if the function that tracked it never got to answer (a crash
//! between the commit and the send), and one whose track did not commit never is. A
//! redelivered record queues the report again under the same deduplication id; the worker
//! sends a report once it is `processed` no more, and Stripe counts its identifier once.
//!
//! [`entitlement_events`]: super::entitlement_events

use crate::app::Services;
use crate::domain::ids::EventId;
use crate::events::EventBus;
use crate::queue::{OutgoingMessage, QueueError};
use crate::store::records::entitlements::OutboxVersion;
use crate::usecases::entitlement_events::{self, PublishError};

/// One stream record the relay acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relayed {
    /// A committed version of an account's entitlements.
    Version(OutboxVersion),
    /// A new meter report, with the message the worker reads.
    MeterReport { id: EventId, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Hands a meter report to the fulfilment queue: its own message group (reports need no
/// order, and one Stripe refuses holds back no other), its id as the deduplication id.
pub async fn queue_meter_report(
    services: &Services,
    id: &EventId,
    message: &str,
) -> Result<(), QueueError> {
    services
        .queue
        .send(&OutgoingMessage {
            group: id.to_string(),
            dedup_id: id.to_string(),
            body: message.to_owned(),
        })
        .await?;
    tracing::info!(report = %id, "meter report queued");
    Ok(())
}

/// Relays a batch of stream records in order: each is its sequence number and what it
/// holds (`None` for a record the relay does not act on). Stops at the first failure and
/// names its sequence number: the stream mapping hands the batch back from there.
pub async fn relay_in_order(
    services: &Services,
    bus: &dyn EventBus,
    records: Vec<(String, Option<Relayed>)>,
) -> Result<(), (String, RelayError)> {
    for (sequence, relayed) in records {
        let result = match &relayed {
            None => continue,
            Some(Relayed::Version(version)) => entitlement_events::publish(services, bus, version)
                .await
                .map(|_| ())
                .map_err(RelayError::from),
            Some(Relayed::MeterReport { id, message }) => queue_meter_report(services, id, message)
                .await
                .map_err(RelayError::from),
        };
        if let Err(e) = result {
            tracing::error!(sequence = %sequence, error = %e, "relaying failed; the stream hands it back");
            return Err((sequence, e));
        }
    }
    Ok(())
}
