//! Webhook intake: verify, claim the event id, hand the event to the queue, answer.
//!
//! The claim follows the idempotency-record pattern: one conditional put writes the event
//! record as `in_progress` with a short lock, unless a record exists whose lock has not
//! expired. A crash after the claim leaves a record whose lock expires, so Stripe's retry
//! claims it again and sends it; a send that fails releases the lock at once. A duplicate
//! never reaches the queue while its first delivery is in progress or done, and the FIFO
//! deduplication id (the event id) drops a second send within five minutes regardless.

use crate::clock::rfc3339;
use crate::config::KeyMode;
use crate::fulfil;
use crate::ids::EventId;
use crate::keys::{self, GSI1_PK, GSI1_SK, TTL_ATTR};
use crate::metrics::{self, Unit, names};
use crate::queue::{OutgoingMessage, QueueError};
use crate::runtime::Services;
use crate::signature::{self, SignatureError, TOLERANCE_SECS};
use crate::store::{Cond, Item, ItemExt, Op, StoreError, Value};
use crate::stripe::Event;
use std::time::Duration;

/// Stripe's events are far smaller; anything larger is refused before any work.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long event records are kept (Stripe keeps events 30 days; replays need them).
pub const RECORD_TTL_SECS: i64 = 90 * 24 * 3600;

/// The stored states of an event record.
pub mod state {
    pub const IN_PROGRESS: &str = "in_progress";
    pub const QUEUED: &str = "queued";
    pub const IGNORED: &str = "ignored";
    pub const PROCESSED: &str = "processed";
    pub const FAILED: &str = "failed";
}

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
    if !fulfil::handles(&event.kind) {
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
    let span = event_span(&verified.event);
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

/// The span every log line about one event carries: its id and type, and the user and
/// checkout session it concerns (from our metadata, when the object has it).
pub fn event_span(event: &Event) -> tracing::Span {
    let refs = event.refs();
    let user = refs.user().unwrap_or("");
    let session = refs.id().filter(|id| id.starts_with("cs_")).unwrap_or("");
    tracing::info_span!("event", event_id = %event.id, event_type = %event.kind, user = %user, session = %session)
}

/// Records a verified event and hands it to the queue (also the reconcile path).
pub async fn record(
    services: &Services,
    verified: VerifiedEvent,
) -> Result<IntakeOutcome, IntakeError> {
    let VerifiedEvent { id, event, raw } = verified;
    let key = keys::event(&id);
    let now = services.clock.now();
    let now_secs = now.timestamp();
    let received_at = rfc3339(now);
    let group = event.ordering_key();

    let mut item = Item::new();
    item.insert("type".into(), event.kind.clone().into());
    item.insert("received_at".into(), received_at.clone().into());
    item.insert("livemode".into(), event.livemode.into());
    item.insert("group".into(), group.clone().into());
    // Stored redacted and capped; the queue message carries the event as Stripe sent it.
    match crate::redact::storable_payload(&raw) {
        Some(payload) => item.insert("payload".into(), payload.into()),
        None => item.insert("payload_omitted".into(), true.into()),
    };
    item.insert(TTL_ATTR.into(), (now_secs + RECORD_TTL_SECS).into());
    item.insert(GSI1_SK.into(), format!("{received_at}#{id}").into());

    if let Some(reason) = ignore_reason(services, &event) {
        item.insert("status".into(), state::IGNORED.into());
        item.insert("error".into(), reason.into());
        item.insert(GSI1_PK.into(), keys::events_by_state(state::IGNORED).into());
        return match services
            .table
            .put(&key, item, Some(Cond::ItemNotExists))
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(IntakeOutcome::Ignored),
            Err(e) => Err(e.into()),
        };
    }

    item.insert("status".into(), state::IN_PROGRESS.into());
    item.insert(
        "lock_until".into(),
        (now_secs + services.config.in_progress_secs).into(),
    );
    // An in-flight event lists as queued: it is being handed over.
    item.insert(GSI1_PK.into(), keys::events_by_state(state::QUEUED).into());
    let claim = Cond::Or(vec![
        Cond::ItemNotExists,
        Cond::And(vec![
            Cond::eq("status", state::IN_PROGRESS),
            Cond::lt("lock_until", now_secs),
        ]),
    ]);
    match services.table.put(&key, item, Some(claim)).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => return settle_duplicate(services, &key).await,
        Err(e) => return Err(e.into()),
    }

    let message = OutgoingMessage {
        group,
        dedup_id: id.to_string(),
        body: raw,
    };
    if let Err(e) = services.queue.send(&message).await {
        // Let the next retry claim the event at once instead of waiting for the lock.
        let release = services
            .table
            .update(
                &key,
                vec![Op::set("lock_until", 0)],
                Some(Cond::eq("status", state::IN_PROGRESS)),
            )
            .await;
        if let Err(release_err) = release {
            tracing::warn!(event_id = %id, error = %release_err, "could not release the intake lock; it expires by itself");
        }
        return Err(e.into());
    }

    let mark = services
        .table
        .update(
            &key,
            vec![Op::set("status", state::QUEUED), Op::remove("lock_until")],
            Some(Cond::eq("status", state::IN_PROGRESS)),
        )
        .await;
    match mark {
        // ConditionFailed: the worker was faster and already settled the record.
        Ok(_) | Err(StoreError::ConditionFailed) => {}
        // The event is in the queue; the record catches up when the worker settles it.
        Err(e) => {
            tracing::warn!(event_id = %id, error = %e, "event queued but its record still says in_progress")
        }
    }
    Ok(IntakeOutcome::Queued)
}

/// Another delivery holds the claim: wait briefly for it to settle, so that concurrent
/// deliveries mostly answer `duplicate`; if it does not settle, ask Stripe to retry.
async fn settle_duplicate(
    services: &Services,
    key: &crate::store::Key,
) -> Result<IntakeOutcome, IntakeError> {
    for _ in 0..20 {
        let Some(record) = services.table.get(key).await? else {
            return Err(IntakeError::InProgress);
        };
        match record.str("status") {
            Some(state::IN_PROGRESS) => tokio::time::sleep(Duration::from_millis(100)).await,
            Some(state::IGNORED) => return Ok(IntakeOutcome::Ignored),
            _ => return Ok(IntakeOutcome::Duplicate),
        }
    }
    Err(IntakeError::InProgress)
}

/// Reads a stored record's status, for tests and the admin view.
pub fn record_status(item: &Item) -> Option<&str> {
    item.get("status").and_then(Value::as_str)
}
