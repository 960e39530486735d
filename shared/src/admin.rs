//! Operating it: the admin use cases (API.md, Admin). Every one is for operators only; the
//! handler checks the `billing:admin` scope before calling any of them.

use crate::clock::rfc3339;
use crate::fulfil::{self, FulfilError, Outcome};
use crate::http::Identity;
use crate::ids::{EventId, UserId};
use crate::intake::{self, IntakeError, VerifiedEvent, state};
use crate::keys::{self, GSI1_SK};
use crate::runtime::Services;
use crate::store::{Cond, Item, ItemExt, Op, StoreError, Write};
use crate::stripe::Event;
use crate::stripe_api::StripeError;
use chrono::{DateTime, Duration as Days, Utc};
use serde::{Deserialize, Serialize};

pub const LISTED_STATES: [&str; 4] = [
    state::QUEUED,
    state::PROCESSED,
    state::IGNORED,
    state::FAILED,
];
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
/// Stripe keeps events for 30 days; a reconcile window cannot reach further back.
pub const STRIPE_EVENT_RETENTION_DAYS: i64 = 30;
/// Bounds one reconcile call (100 events a page) to what a Lambda invocation can do.
pub const MAX_RECONCILE_PAGES: usize = 50;
pub const MAX_GRANT_DAYS: i64 = 3650;
pub const MAX_GRANT_CREDITS: i64 = 10_000_000;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("no event {0} is recorded")]
    UnknownEvent(String),
    #[error("event {0} is not replayable: {1}")]
    NotReplayable(String, &'static str),
    #[error("Stripe is not configured")]
    StripeUnavailable,
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    pub received_at: Option<String>,
    pub processed_at: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventsPage {
    pub events: Vec<EventSummary>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next: Option<String>,
}

fn summary(item: &Item) -> Option<EventSummary> {
    let id = item.str(keys::PK)?.strip_prefix("EVENT#")?.to_owned();
    let stored = item.str("status").unwrap_or(state::QUEUED);
    // An event still being handed over lists as queued.
    let shown = if stored == state::IN_PROGRESS {
        state::QUEUED
    } else {
        stored
    };
    Some(EventSummary {
        id,
        kind: item.str("type").unwrap_or_default().to_owned(),
        state: shown.to_owned(),
        received_at: item.str("received_at").map(str::to_owned),
        processed_at: item.str("processed_at").map(str::to_owned),
        error: item.str("error").map(str::to_owned),
    })
}

/// `GET /api/billing/admin/events?state=&limit=&cursor=`: newest first.
pub async fn list_events(
    services: &Services,
    state_filter: Option<&str>,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<EventsPage, AdminError> {
    let states: Vec<&str> = match state_filter.filter(|s| !s.is_empty()) {
        None => LISTED_STATES.to_vec(),
        Some(s) if LISTED_STATES.contains(&s) => vec![s],
        Some(s) => {
            return Err(AdminError::InvalidRequest(format!(
                "state must be one of {LISTED_STATES:?}, not {s:?}"
            )));
        }
    };
    let limit = match limit.filter(|l| !l.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| AdminError::InvalidRequest(format!("limit must be 1 to {MAX_LIMIT}")))?,
    };
    // Every state's index is sorted by `received_at#id`, so one cursor pages them all.
    let mut items = Vec::new();
    let mut a_state_has_more = false;
    for s in states {
        let page = services
            .table
            .query_index(
                &keys::events_by_state(s),
                limit,
                cursor.filter(|c| !c.is_empty()),
            )
            .await?;
        a_state_has_more |= page.next.is_some();
        items.extend(page.items);
    }
    items.sort_by(|a, b| b.str(GSI1_SK).cmp(&a.str(GSI1_SK)));
    let more = items.len() > limit || a_state_has_more;
    items.truncate(limit);
    let next = if more {
        items.last().and_then(|i| i.str(GSI1_SK)).map(str::to_owned)
    } else {
        None
    };
    Ok(EventsPage {
        events: items.iter().filter_map(summary).collect(),
        next,
    })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub event_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayOutcome {
    pub event_id: String,
    pub state: &'static str,
    /// `applied`: effects landed now; `already_applied`: they had landed before.
    pub outcome: Option<&'static str>,
    pub error: Option<String>,
}

/// `POST /api/billing/admin/replay`: the stored event through the worker's own path.
pub async fn replay(services: &Services, req: ReplayRequest) -> Result<ReplayOutcome, AdminError> {
    let id =
        EventId::parse(&req.event_id).map_err(|e| AdminError::InvalidRequest(e.to_string()))?;
    let record = services
        .table
        .get(&keys::event(&id))
        .await?
        .ok_or_else(|| AdminError::UnknownEvent(id.to_string()))?;
    if record.str("status") == Some(state::IGNORED) {
        return Err(AdminError::NotReplayable(
            id.to_string(),
            "it was ignored (a type we do not act on, or the other mode)",
        ));
    }
    let payload = match record.str("payload") {
        Some(p) => p.to_owned(),
        // Too large to keep: Stripe still has it (for 30 days).
        None => {
            let stripe = services
                .stripe
                .as_ref()
                .ok_or(AdminError::StripeUnavailable)?;
            stripe.retrieve_event(id.as_str()).await?.to_string()
        }
    };
    Ok(match fulfil::process(services, &payload).await {
        Ok(outcome) => ReplayOutcome {
            event_id: id.to_string(),
            state: state::PROCESSED,
            outcome: Some(match outcome {
                Outcome::Applied => "applied",
                Outcome::AlreadyApplied => "already_applied",
            }),
            error: None,
        },
        Err(FulfilError::Store(e)) => return Err(e.into()),
        Err(e) => ReplayOutcome {
            event_id: id.to_string(),
            state: state::FAILED,
            outcome: None,
            error: Some(e.to_string()),
        },
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// RFC 3339 or Unix seconds; default and floor: 30 days ago.
    #[serde(default)]
    pub since: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileOutcome {
    pub fetched: usize,
    pub ingested: usize,
}

fn parse_since(raw: Option<&serde_json::Value>, now: DateTime<Utc>) -> Result<i64, AdminError> {
    let floor = (now - Days::days(STRIPE_EVENT_RETENTION_DAYS)).timestamp();
    let since = match raw {
        None | Some(serde_json::Value::Null) => floor,
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| AdminError::InvalidRequest("since must be whole seconds".into()))?,
        Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map_err(|_| {
                AdminError::InvalidRequest("since must be RFC 3339 or Unix seconds".into())
            })?
            .timestamp(),
        Some(_) => {
            return Err(AdminError::InvalidRequest(
                "since must be RFC 3339 or Unix seconds".into(),
            ));
        }
    };
    if since > now.timestamp() {
        return Err(AdminError::InvalidRequest("since is in the future".into()));
    }
    Ok(since.max(floor))
}

/// `POST /api/billing/admin/reconcile`: lists Stripe's events for the window and ingests,
/// through the intake path, those never recorded here.
pub async fn reconcile(
    services: &Services,
    req: ReconcileRequest,
) -> Result<ReconcileOutcome, AdminError> {
    let since = parse_since(req.since.as_ref(), services.clock.now())?;
    let stripe = services
        .stripe
        .as_ref()
        .ok_or(AdminError::StripeUnavailable)?;
    let (mut fetched, mut ingested) = (0, 0);
    let mut after: Option<String> = None;
    for _ in 0..MAX_RECONCILE_PAGES {
        let page = stripe.list_events(since, after.as_deref()).await?;
        for raw in &page.data {
            fetched += 1;
            let text = raw.to_string();
            let Ok(event) = serde_json::from_str::<Event>(&text) else {
                continue;
            };
            let Ok(id) = EventId::parse(&event.id) else {
                continue;
            };
            if services.table.get(&keys::event(&id)).await?.is_some() {
                continue;
            }
            match intake::record(
                services,
                VerifiedEvent {
                    id,
                    event,
                    raw: text,
                },
            )
            .await
            {
                Ok(_) => ingested += 1,
                Err(IntakeError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %e, "a reconciled event could not be ingested; the next run retries it")
                }
            }
        }
        after = page
            .data
            .last()
            .and_then(|e| e.get("id"))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        if !page.has_more || after.is_none() {
            break;
        }
    }
    Ok(ReconcileOutcome { fetched, ingested })
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub user_id: String,
    #[serde(default)]
    pub days: Option<i64>,
    #[serde(default)]
    pub credits: Option<i64>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantOutcome {
    pub grant_id: String,
    pub user_id: String,
    pub days: i64,
    pub credits: i64,
    pub credit_until: Option<String>,
}

/// `POST /api/billing/admin/grant`: days of access and/or credits, with an audit record of
/// who granted what and why, in the same transaction as the grant.
pub async fn grant(
    services: &Services,
    operator: &Identity,
    req: GrantRequest,
) -> Result<GrantOutcome, AdminError> {
    let invalid = |m: &str| AdminError::InvalidRequest(m.to_owned());
    let user =
        UserId::parse(&req.user_id).map_err(|e| AdminError::InvalidRequest(e.to_string()))?;
    let days = req.days.unwrap_or(0);
    let credits = req.credits.unwrap_or(0);
    if !(0..=MAX_GRANT_DAYS).contains(&days)
        || !(0..=MAX_GRANT_CREDITS).contains(&credits)
        || days + credits == 0
    {
        return Err(invalid("grant 1 to 3650 days and/or 1 to 10000000 credits"));
    }
    let reason = req.reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(invalid("a reason of 1 to 500 characters is required"));
    }
    let grant_id = uuid::Uuid::new_v4().simple().to_string();
    for _ in 0..5 {
        let now = services.clock.now();
        let profile = services.table.get(&keys::profile(&user)).await?;
        let current = profile
            .as_ref()
            .and_then(|p| p.str("credit_until"))
            .map(str::to_owned);
        let mut ops = vec![
            Op::set_if_missing("created_at", rfc3339(now)),
            Op::set("updated_at", rfc3339(now)),
        ];
        if credits > 0 {
            ops.push(Op::add("credits", credits));
        }
        let mut until = current.clone();
        let mut cond = None;
        if days > 0 {
            let base = current
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .filter(|t| *t > now)
                .unwrap_or(now);
            let new = rfc3339(base + Days::days(days));
            ops.push(Op::set("credit_until", new.clone()));
            // Pin what was read, so two grants at once both count.
            cond = Some(match &current {
                Some(c) => Cond::eq("credit_until", c.clone()),
                None => Cond::missing("credit_until"),
            });
            until = Some(new);
        }
        let mut audit = Item::new();
        audit.insert("grant_id".into(), grant_id.clone().into());
        audit.insert("operator".into(), operator.user.to_string().into());
        audit.insert("reason".into(), reason.to_owned().into());
        audit.insert("days".into(), days.into());
        audit.insert("credits".into(), credits.into());
        audit.insert("at".into(), rfc3339(now).into());
        if let Some(u) = &until {
            audit.insert("credit_until_after".into(), u.clone().into());
        }
        let audit_key = crate::store::Key::new(
            keys::user_pk(&user),
            format!("GRANT#{}#{grant_id}", rfc3339(now)),
        );
        let writes = vec![
            Write::Update {
                key: keys::profile(&user),
                ops,
                cond,
            },
            Write::Put {
                key: audit_key,
                item: audit,
                cond: Some(Cond::ItemNotExists),
            },
        ];
        match services.table.transact(writes).await {
            Ok(()) => {
                tracing::info!(operator = %operator.user, user = %user, days, credits, grant_id, "grant applied");
                return Ok(GrantOutcome {
                    grant_id,
                    user_id: user.to_string(),
                    days,
                    credits,
                    credit_until: until,
                });
            }
            Err(StoreError::TransactionConditionFailed(_) | StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}
