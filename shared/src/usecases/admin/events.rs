//! `GET /api/billing/admin/events`: the event records by state, newest first, paged.

use super::{AdminError, DEFAULT_LIMIT, MAX_LIMIT};
use crate::app::Services;
use crate::store::records::event::{self, EventRecord, LISTED_STATES};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    pub received_at: Option<String>,
    pub processed_at: Option<String>,
    pub error: Option<String>,
    /// The API version Stripe rendered the event in (the shapes of its object).
    pub api_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventsPage {
    pub events: Vec<EventSummary>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next: Option<String>,
}

pub(super) fn summary(r: &EventRecord) -> EventSummary {
    EventSummary {
        id: r.id.clone(),
        kind: r.kind.clone(),
        state: r.listed_state().to_owned(),
        received_at: r.received_at.clone(),
        processed_at: r.processed_at.clone(),
        error: r.error.clone(),
        api_version: r.api_version.clone(),
    }
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
    let mut records = Vec::new();
    let mut a_state_has_more = false;
    for s in states {
        let cursor = cursor.filter(|c| !c.is_empty());
        let (page, next) = event::list(services.table.as_ref(), s, limit, cursor).await?;
        a_state_has_more |= next.is_some();
        records.extend(page);
    }
    records.sort_by(|a, b| b.cursor.cmp(&a.cursor));
    let more = records.len() > limit || a_state_has_more;
    records.truncate(limit);
    let next = if more {
        records.last().and_then(|r| r.cursor.clone())
    } else {
        None
    };
    Ok(EventsPage {
        events: records.iter().map(summary).collect(),
        next,
    })
}
