//! `POST /api/billing/admin/replay`: a recorded event through the worker's own path.

use super::AdminError;
use crate::app::Services;
use crate::domain::ids::EventId;
use crate::store::records::event::{self, state};
use crate::usecases::fulfil::{self, FulfilError, Outcome};
use serde::Serialize;

/// The event an operator names, parsed where the request enters (`inbound::commands`).
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub event: EventId,
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
    let id = req.event;
    let record = event::load(services.table.as_ref(), &id)
        .await?
        .ok_or_else(|| AdminError::UnknownEvent(id.to_string()))?;
    if record.status == state::IGNORED {
        return Err(AdminError::NotReplayable(
            id.to_string(),
            "it was ignored (a type we do not act on, or the other mode)",
        ));
    }
    let payload = match record.payload {
        Some(p) => p,
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
