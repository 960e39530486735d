//! `POST /api/billing/admin/reconcile`: Stripe's events of a window that were never
//! recorded here, ingested through the intake path.

use super::{AdminError, MAX_RECONCILE_PAGES, STRIPE_EVENT_RETENTION_DAYS};
use crate::domain::ids::EventId;
use crate::edge::runtime::Services;
use crate::store::records::event;
use crate::stripe::Event;
use crate::usecases::intake::{self, IntakeError, VerifiedEvent};
use chrono::{DateTime, Duration as Days, Utc};
use serde::{Deserialize, Serialize};

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
            if event::load(services.table.as_ref(), &id).await?.is_some() {
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
