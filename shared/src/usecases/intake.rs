//! Webhook intake: verify, claim the event id, hand the event to the queue, answer.
//!
//! The claim follows the idempotency-record pattern ([`records::event`]): one conditional
//! put writes the event record as `in_progress` with a short lock, unless a record exists
//! whose lock has not expired. A crash after the claim leaves a record whose lock expires,
//! so Stripe's retry claims it again and sends it; a send that fails releases the lock at
//! once. A duplicate never reaches the queue while its first delivery is in progress or
//! done, and the FIFO deduplication id (the event id) drops a second send within five
//! minutes regardless. Contract: `../shared/API.md`, "POST /api/stripe/webhook".

use crate::domain::ids::EventId;
use crate::edge::config::KeyMode;
use crate::edge::metrics::{self, Unit, names};
use crate::edge::runtime::Services;
use crate::queue::{OutgoingMessage, QueueError};
use crate::store::StoreError;
use crate::store::records::event::{self as record, Arrival, state};
use crate::stripe::Event;
use crate::stripe::event_types;
use crate::stripe::signature::{self, SignatureError, TOLERANCE_SECS};
use std::time::Duration;

/// Stripe's events are far smaller; anything larger is refused before any work.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeOutcome {
    Queued,
    Duplicate,
    Ignored,
}

impl IntakeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            IntakeOutcome::Queued => "queued",
            IntakeOutcome::Duplicate => "duplicate",
            IntakeOutcome::Ignored => "ignored",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the webhook secret is not configured")]
    NotConfigured,
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    #[error("the Stripe-Signature header is missing")]
    MissingSignature,
    #[error(transparent)]
    InvalidSignature(#[from] SignatureError),
    #[error("the body is not a Stripe event: {0}")]
    InvalidPayload(String),
    #[error("another delivery of this event is being handled")]
    InProgress,
    #[error("recording the event failed: {0}")]
    Store(#[from] StoreError),
    #[error("queueing the event failed: {0}")]
    Queue(#[from] QueueError),
}

/// A verified, parsed event, ready to be recorded.
#[derive(Debug)]
pub struct VerifiedEvent {
    pub id: EventId,
    pub event: Event,
    pub raw: String,
}

/// Everything that can be decided without I/O: size, signature, shape.
pub fn verify(
    services: &Services,
    signature_header: Option<&str>,
    body: &[u8],
) -> Result<VerifiedEvent, IntakeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(IntakeError::PayloadTooLarge);
    }
    let secrets = &services.config.webhook_secrets;
    if secrets.is_empty() {
        return Err(IntakeError::NotConfigured);
    }
    let header = signature_header.ok_or(IntakeError::MissingSignature)?;
    let now = services.clock.now().timestamp();
    signature::verify(header, body, secrets, now, TOLERANCE_SECS)?;
    let raw =
        std::str::from_utf8(body).map_err(|_| IntakeError::InvalidPayload("not UTF-8".into()))?;
    let event: Event =
        serde_json::from_str(raw).map_err(|e| IntakeError::InvalidPayload(e.to_string()))?;
    let id = EventId::parse(&event.id).map_err(|e| IntakeError::InvalidPayload(e.to_string()))?;
    Ok(VerifiedEvent {
        id,
        event,
        raw: raw.to_owned(),
    })
}

/// Why an event is recorded but never fulfilled, if it is.
pub fn ignore_reason(services: &Services, event: &Event) -> Option<&'static str> {
    if !event_types::handles(&event.kind) {
        return Some("the project does not act on this event type");
    }
    let live = match services.config.key_mode()? {
        KeyMode::Live => true,
        KeyMode::Test => false,
    };
    (event.livemode != live).then_some("livemode differs from the configured key's mode")
}

/// The whole intake of one delivery.
pub async fn receive(
    services: &Services,
    signature_header: Option<&str>,
    body: &[u8],
) -> Result<IntakeOutcome, IntakeError> {
    let verified = verify(services, signature_header, body)?;
    let span = record::span(&verified.event);
    let outcome = tracing::Instrument::instrument(record(services, verified), span.clone()).await;
    let _entered = span.enter();
    match &outcome {
        Ok(o) => {
            metrics::emit("webhook", names::EVENTS_RECEIVED, 1.0, Unit::Count);
            match o {
                IntakeOutcome::Duplicate => {
                    metrics::emit("webhook", names::EVENTS_DUPLICATE, 1.0, Unit::Count)
                }
                IntakeOutcome::Ignored => {
                    metrics::emit("webhook", names::EVENTS_IGNORED, 1.0, Unit::Count)
                }
                IntakeOutcome::Queued => {}
            }
            tracing::info!(outcome = o.as_str(), "webhook event received");
        }
        Err(e) => tracing::warn!(error = %e, "webhook event not accepted"),
    }
    outcome
}

/// Records a verified event and hands it to the queue (also the reconcile path).
pub async fn record(
    services: &Services,
    verified: VerifiedEvent,
) -> Result<IntakeOutcome, IntakeError> {
    let VerifiedEvent { id, event, raw } = verified;
    let group = event.ordering_key();
    let arrival = Arrival {
        id: &id,
        kind: &event.kind,
        livemode: event.livemode,
        group: &group,
        // Stored redacted and capped; the queue message carries the event as Stripe sent it.
        payload: crate::edge::redact::storable_payload(&raw),
        at: services.clock.now(),
    };

    if let Some(reason) = ignore_reason(services, &event) {
        return match services
            .table
            .apply(record::ignored(&arrival, reason))
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(IntakeOutcome::Ignored),
            Err(e) => Err(e.into()),
        };
    }

    let claim = record::claim(&arrival, services.config.in_progress_secs);
    match services.table.apply(claim).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => return settle_duplicate(services, &id).await,
        Err(e) => return Err(e.into()),
    }

    let message = OutgoingMessage {
        group,
        dedup_id: id.to_string(),
        body: raw,
    };
    if let Err(e) = services.queue.send(&message).await {
        if let Err(release_err) = services.table.apply(record::release(&id)).await {
            tracing::warn!(event_id = %id, error = %release_err, "could not release the intake lock; it expires by itself");
        }
        return Err(e.into());
    }

    match services.table.apply(record::queued(&id)).await {
        // ConditionFailed: the worker was faster and already settled the record.
        Ok(()) | Err(StoreError::ConditionFailed) => {}
        // The event is in the queue; the record catches up when the worker settles it.
        Err(e) => {
            tracing::warn!(event_id = %id, error = %e, "event queued but its record still says in_progress")
        }
    }
    Ok(IntakeOutcome::Queued)
}

/// Another delivery holds the claim: wait briefly for it to settle, so that concurrent
/// deliveries mostly answer `duplicate`; if it does not settle, ask Stripe to retry.
async fn settle_duplicate(services: &Services, id: &EventId) -> Result<IntakeOutcome, IntakeError> {
    for _ in 0..20 {
        let Some(found) = record::load(services.table.as_ref(), id).await? else {
            return Err(IntakeError::InProgress);
        };
        match found.status.as_str() {
            state::IN_PROGRESS => tokio::time::sleep(Duration::from_millis(100)).await,
            state::IGNORED => return Ok(IntakeOutcome::Ignored),
            _ => return Ok(IntakeOutcome::Duplicate),
        }
    }
    Err(IntakeError::InProgress)
}
