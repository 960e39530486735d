//! `GET /api/billing/admin/events`: the event records by state, newest first, paged.

use super::AdminError;
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

/// Which events to list, as `inbound::commands::list_events` parses the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsQuery {
    /// One of [`LISTED_STATES`]; `None`: every listed state.
    pub state: Option<&'static str>,
    /// 1 to [`super::MAX_LIMIT`].
    pub limit: usize,
    /// The `next` of an earlier page.
    pub cursor: Option<String>,
}

/// `GET /api/billing/admin/events?state=&limit=&cursor=`: newest first.
pub async fn list_events(
    services: &Services,
    query: &EventsQuery,
) -> Result<EventsPage, AdminError> {
    let states: Vec<&str> = match query.state {
        None => LISTED_STATES.to_vec(),
        Some(s) => vec![s],
    };
    let (limit, cursor) = (query.limit, query.cursor.as_deref());
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
