//! Webhook intake: verify, claim the event id, hand the event to the queue, answer.
//! Contract: `docs/api.md`, "POST /api/stripe/webhook".
//!
//! A new event costs two sequential AWS calls: the claim (one conditional put of the
//! event record as `in_progress`, [`records::event`]) and the send (FIFO, the event id as
//! deduplication id). There is no third call marking the record `queued`: the record says
//! `in_progress` (and lists as `queued`) until the worker settles it `processed` or
//! `failed`, and that settlement is the only "handed over" mark that matters.
//!
//! Why nothing the crash-point suite proves is given up without the mark:
//! - The only state a crash can leave behind is a claim without a send (the claim landed,
//!   the send did not, or we never heard). Stripe redelivers anything not answered 2xx.
//! - A delivery that finds the record still `in_progress` therefore cannot know whether the
//!   event reached the queue, and it does not need to: it sends the event again, with the
//!   same deduplication id, before answering `duplicate`. SQS drops a second send of one
//!   deduplication id within five minutes, and past that the worker's guards apply an event
//!   once however often it arrives (fulfilment is idempotent per event). So a redelivery
//!   after any crash point ends with the event in the queue exactly once in effect, and a
//!   `duplicate` answer is only given once the event is known to be in the queue (sent by
//!   this delivery or settled by the worker).
//! - A failed send answers 5xx without touching the record: the retry re-sends it.
//! - Once the worker settled the record (`processed`, `failed`), a duplicate sends nothing.
//!
//! What the mark used to give, and what replaces it: a duplicate that arrives after the
//! first delivery but before the worker settles re-sends (an SQS request, dropped by the
//! deduplication), where it used to send nothing. That costs one SQS request per such
//! duplicate and saves one DynamoDB write and one round trip on every new event.
//!
//! The claim keeps its lock (`lock_until`): a redelivery after the lock expired takes the
//! claim over with a fresh put, which is equivalent to the re-send.
//!
//! An event of the other mode than the key's (a live event while the key is a test key, or
//! the reverse) is never recorded and never lost: intake answers 503 `mode_mismatch` and
//! counts it (`EventsModeMismatch`, alarmed in template.yaml), so Stripe retries it (for up
//! to three days in live mode) until the configuration agrees; and since nothing of it was
//! recorded, reconcile with the agreeing key ingests it too. The mode is that of the key in
//! use now (`Services::key_mode`, re-derived at each refresh of the secret), so a key rotated
//! from test to live switches the mode with it. Recording it `ignored` (as before) answered
//! 200, so Stripe never retried, and the record made replay and reconcile skip it.
//!
//! [`records::event`]: crate::store::records::event

use crate::app::Services;
use crate::app::config::KeyMode;
use crate::domain::ids::{EventId, InvalidId};
use crate::metrics::Metric;
use crate::queue::{OutgoingMessage, QueueError};
use crate::store::StoreError;
use crate::store::records::event::{self as record, Arrival, state};
use crate::stripe::Event;
use crate::stripe::event_types;
use crate::stripe::signature::{self, SignatureError, TOLERANCE_SECS};

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
    InvalidPayload(#[source] PayloadError),
    #[error("another delivery of this event is being handled")]
    InProgress,
    #[error(
        "the event is {} mode but the configured Stripe key is not; it is left for Stripe to retry",
        if *.event_live { "live" } else { "test" }
    )]
    ModeMismatch { event_live: bool },
    #[error("recording the event failed: {0}")]
    Store(#[from] StoreError),
    #[error("queueing the event failed: {0}")]
    Queue(#[from] QueueError),
}

/// Why a signed body is not a Stripe event; the cause is kept as the error's source.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("not UTF-8")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error(transparent)]
    NotAnEvent(#[from] serde_json::Error),
    #[error(transparent)]
    BadId(#[from] InvalidId),
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
    verify_with(
        services,
        &services.config.webhook_secrets,
        signature_header,
        body,
    )
}

/// [`verify`] against `secrets` (the deployment's current ones, see `runtime::secrets`).
pub fn verify_with(
    services: &Services,
    secrets: &[secrecy::SecretString],
    signature_header: Option<&str>,
    body: &[u8],
) -> Result<VerifiedEvent, IntakeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(IntakeError::PayloadTooLarge);
    }
    if secrets.is_empty() {
        return Err(IntakeError::NotConfigured);
    }
    let header = signature_header.ok_or(IntakeError::MissingSignature)?;
    let now = services.clock.now().timestamp();
    signature::verify(header, body, secrets, now, TOLERANCE_SECS)?;
    let raw = std::str::from_utf8(body).map_err(|e| IntakeError::InvalidPayload(e.into()))?;
    let event: Event =
        serde_json::from_str(raw).map_err(|e| IntakeError::InvalidPayload(e.into()))?;
    let id = EventId::parse(&event.id).map_err(|e| IntakeError::InvalidPayload(e.into()))?;
    Ok(VerifiedEvent {
        id,
        event,
        raw: raw.to_owned(),
    })
}

/// Why an event is recorded but never fulfilled, if it is.
pub fn ignore_reason(event: &Event) -> Option<&'static str> {
    (!event_types::handles(&event.kind)).then_some("the project does not act on this event type")
}

/// An event of the other mode than the key in use now is refused, unrecorded (see the
/// module's doc); with no key configured every event is taken.
pub fn check_mode(mode: Option<KeyMode>, event: &Event) -> Result<(), IntakeError> {
    match mode {
        Some(mode) if mode.is_live() != event.livemode => Err(IntakeError::ModeMismatch {
            event_live: event.livemode,
        }),
        _ => Ok(()),
    }
}

/// The whole intake of one delivery.
pub async fn receive(
    services: &Services,
    signature_header: Option<&str>,
    body: &[u8],
) -> Result<IntakeOutcome, IntakeError> {
    let secrets = services.webhook_secrets().await;
    let verified = verify_with(services, &secrets, signature_header, body)?;
    let span = record::span(&verified.event);
    let outcome = tracing::Instrument::instrument(record(services, verified), span.clone()).await;
    let _entered = span.enter();
    match &outcome {
        Ok(o) => {
            services.metrics.record(Metric::EventReceived);
            match o {
                IntakeOutcome::Duplicate => services.metrics.record(Metric::EventDuplicate),
                IntakeOutcome::Ignored => services.metrics.record(Metric::EventIgnored),
                IntakeOutcome::Queued => {}
            }
            tracing::info!(outcome = o.as_str(), "webhook event received");
        }
        Err(e @ IntakeError::ModeMismatch { .. }) => {
            services.metrics.record(Metric::EventModeMismatch);
            tracing::error!(error = %e, "webhook event of the other mode: Stripe will retry it");
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
        api_version: event.api_version.as_deref(),
        group: &group,
        // Stored redacted and capped; the queue message carries the event as Stripe sent it.
        payload: crate::app::redact::storable_payload(&raw),
        at: services.clock.now(),
    };

    if let Some(reason) = ignore_reason(&event) {
        return match services
            .table
            .apply(record::ignored(&arrival, reason))
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(IntakeOutcome::Ignored),
            Err(e) => Err(e.into()),
        };
    }

    // After the type: an event we never act on is recorded `ignored` in either mode.
    check_mode(services.key_mode().await, &event)?;
    let claim = record::claim(&arrival, services.config.in_progress_secs);
    let message = OutgoingMessage {
        group,
        dedup_id: id.to_string(),
        body: raw,
    };
    match services.table.apply(claim).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => return settle_duplicate(services, &id, &message).await,
        Err(e) => return Err(e.into()),
    }
    // A failed send leaves the claim: the retry finds it `in_progress` and sends again.
    services.queue.send(&message).await?;
    Ok(IntakeOutcome::Queued)
}

/// The event is recorded already. Until the worker settles it, this delivery cannot tell
/// whether an earlier one reached the queue (it may have crashed after its claim), so it
/// sends again under the same deduplication id; see the module's doc.
async fn settle_duplicate(
    services: &Services,
    id: &EventId,
    message: &OutgoingMessage,
) -> Result<IntakeOutcome, IntakeError> {
    let Some(found) = record::load(services.table.as_ref(), id).await? else {
        // The claim failed on a record that is gone (expired by TTL meanwhile): try later.
        return Err(IntakeError::InProgress);
    };
    match found.status.as_str() {
        state::IGNORED => Ok(IntakeOutcome::Ignored),
        state::IN_PROGRESS => {
            services.queue.send(message).await?;
            Ok(IntakeOutcome::Duplicate)
        }
        _ => Ok(IntakeOutcome::Duplicate),
    }
}
