//! `POST /api/billing/admin/reconcile`: Stripe's events of a window that were never
//! recorded here (or whose intake never finished), ingested through the intake path.
//!
//! It lists only the handled event types, oldest first, and stops within a time budget:
//! the answer's `next` is a cursor to send back, so an outage of any size is reached from
//! its start in as many calls as it takes, each well inside the HTTP API's 30 s.
//!
//! Stripe lists events newest first only. To go oldest first, the window is cut into
//! slices of time taken in order: each slice is listed with `created[gte]`/`created[lte]`
//! and `starting_after` paging, then ingested in reverse (oldest first). A slice that
//! holds more than [`SLICE_PAGES`] pages is halved (the cursor remembers the width), so a
//! busy hour costs a few extra list calls, not an unbounded walk.

use super::{AdminError, STRIPE_EVENT_RETENTION_DAYS};
use crate::app::Services;
use crate::domain::ids::EventId;
use crate::store::records::event;
use crate::stripe::Event;
use crate::stripe::api::EventsQuery;
use crate::stripe::event_types::HANDLED;
use crate::usecases::intake::{self, IntakeError, VerifiedEvent};
use chrono::{DateTime, Duration as Days, Utc};
use serde::Serialize;
use std::time::{Duration, Instant};

/// How long one call works before it answers with a cursor (the HTTP API cuts at 30 s;
/// the last slice's listing and ingestion may run past the budget).
pub const RECONCILE_BUDGET: Duration = Duration::from_secs(15);
/// The most pages (of 100 events) one slice of the window is listed in before it is halved.
pub const SLICE_PAGES: usize = 10;

/// Which window to reconcile, as `inbound::commands::reconcile` parses the operator's body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileRequest {
    /// Default and floor: 30 days ago.
    pub since: Option<DateTime<Utc>>,
    /// Default: now.
    pub until: Option<DateTime<Utc>>,
    /// The `next` of an earlier answer: continues that window where it stopped.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileOutcome {
    /// Events Stripe listed to this call.
    pub fetched: usize,
    /// Events this call handed to the queue: never recorded, or stuck `in_progress`.
    pub ingested: usize,
    /// Send back as `cursor` to continue; null when the window is done.
    pub next: Option<String>,
}

/// Where a window's reconciliation stands: the slice `[from, from + width)` comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    from: i64,
    until: i64,
    width: i64,
}

impl Position {
    fn encode(&self) -> String {
        format!("rc1.{}.{}.{}", self.from, self.until, self.width)
    }
    fn decode(cursor: &str, floor: i64, now: i64) -> Result<Self, AdminError> {
        let invalid = || AdminError::InvalidRequest("cursor is not a reconcile cursor".into());
        let mut parts = cursor.strip_prefix("rc1.").ok_or_else(invalid)?.split('.');
        let mut number = || -> Result<i64, AdminError> {
            parts
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(invalid)
        };
        let (from, until, width) = (number()?, number()?, number()?);
        if width < 1 || from > until || until > now {
            return Err(invalid());
        }
        // Stripe has dropped what is older than 30 days since the cursor was made.
        Ok(Self {
            from: from.max(floor),
            until,
            width,
        })
    }
}

fn start(req: &ReconcileRequest, now: DateTime<Utc>) -> Result<Position, AdminError> {
    let floor = (now - Days::days(STRIPE_EVENT_RETENTION_DAYS)).timestamp();
    let now = now.timestamp();
    if let Some(cursor) = req.cursor.as_deref().filter(|c| !c.is_empty()) {
        return Position::decode(cursor, floor, now);
    }
    let since = req.since.map_or(floor, |t| t.timestamp());
    let until = req.until.map_or(now, |t| t.timestamp());
    if since > now {
        return Err(AdminError::InvalidRequest("since is in the future".into()));
    }
    if until < since {
        return Err(AdminError::InvalidRequest("until is before since".into()));
    }
    let from = since.max(floor);
    let until = until.min(now);
    Ok(Position {
        from,
        until,
        width: (until - from + 1).max(1),
    })
}

/// `POST /api/billing/admin/reconcile`, within [`RECONCILE_BUDGET`].
pub async fn reconcile(
    services: &Services,
    req: ReconcileRequest,
) -> Result<ReconcileOutcome, AdminError> {
    reconcile_within(services, req, RECONCILE_BUDGET).await
}

/// Reconciles slices of the window, oldest first, until it is done or `budget` is spent.
/// Each call makes progress however small the budget: it always lists one slice and, if
/// the slice fits, handles at least the events of its first second.
pub async fn reconcile_within(
    services: &Services,
    req: ReconcileRequest,
    budget: Duration,
) -> Result<ReconcileOutcome, AdminError> {
    let mut at = start(&req, services.clock.now())?;
    let stripe = services
        .stripe
        .as_ref()
        .ok_or(AdminError::StripeUnavailable)?;
    let started = Instant::now();
    let mut out = ReconcileOutcome {
        fetched: 0,
        ingested: 0,
        next: None,
    };
    let mut first = true;
    while at.from <= at.until {
        if !first && started.elapsed() >= budget {
            out.next = Some(at.encode());
            return Ok(out);
        }
        first = false;
        let to = at.from.saturating_add(at.width - 1).min(at.until);
        let Some(events) = list_slice(stripe.as_ref(), at.from, to, &mut out.fetched).await? else {
            // Too many events for one slice: halve it and list again.
            at.width = (at.width / 2).max(1);
            continue;
        };
        // Stripe lists newest first; ingest oldest first. Out of time inside a slice: the
        // next call resumes at the second of the first event not handled (events of that
        // second handled already are recorded by then, and skipped).
        for raw in events.into_iter().rev() {
            let created = raw
                .get("created")
                .and_then(|c| c.as_i64())
                .unwrap_or(at.from);
            if created > at.from && started.elapsed() >= budget {
                at.from = created;
                out.next = Some(at.encode());
                return Ok(out);
            }
            out.ingested += usize::from(ingest(services, raw).await?);
        }
        at.from = to + 1;
    }
    Ok(out)
}

/// Every handled event created in `[from, to]`, or `None` when they do not fit in
/// [`SLICE_PAGES`] pages (unless the slice is one second, which is listed whole).
async fn list_slice(
    stripe: &dyn crate::stripe::api::StripeApi,
    from: i64,
    to: i64,
    fetched: &mut usize,
) -> Result<Option<Vec<serde_json::Value>>, AdminError> {
    let mut events: Vec<serde_json::Value> = Vec::new();
    let mut pages = 0;
    loop {
        let after = events
            .last()
            .and_then(|e| e.get("id"))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let query = EventsQuery {
            created_gte: from,
            created_lte: to,
            types: HANDLED,
            starting_after: after.as_deref(),
        };
        let page = stripe.list_events(&query).await?;
        pages += 1;
        *fetched += page.data.len();
        let more = page.has_more && !page.data.is_empty();
        events.extend(page.data);
        if !more {
            return Ok(Some(events));
        }
        if pages >= SLICE_PAGES && to > from {
            return Ok(None);
        }
    }
}

/// Hands one listed event to intake if it was never recorded here, or if its record is
/// stuck `in_progress` past its lock (a delivery died before it reached the queue).
async fn ingest(services: &Services, raw: serde_json::Value) -> Result<bool, AdminError> {
    let text = raw.to_string();
    let Ok(event) = serde_json::from_str::<Event>(&text) else {
        return Ok(false);
    };
    let Ok(id) = EventId::parse(&event.id) else {
        return Ok(false);
    };
    let now = services.clock.now().timestamp();
    if let Some(found) = event::load(services.table.as_ref(), &id).await?
        && !found.is_stuck(now)
    {
        return Ok(false);
    }
    let verified = VerifiedEvent {
        id,
        event,
        raw: text,
    };
    match intake::record(services, verified).await {
        Ok(_) => Ok(true),
        Err(IntakeError::Store(e)) => Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "a reconciled event could not be ingested; the next run retries it");
            Ok(false)
        }
    }
}
