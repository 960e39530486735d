//! The state of one checkout as a return page sees it, read from our own store only.

use crate::ids::SessionId;
use crate::keys;
use crate::runtime::Services;
use crate::store::{ItemExt, StoreError};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutState {
    /// Created, not completed.
    Processing,
    /// Completion received, payment or fulfilment still under way.
    Paid,
    Fulfilled,
    /// The asynchronous payment failed.
    Failed,
    Expired,
    /// Never seen.
    Unknown,
}

impl CheckoutState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Paid => "paid",
            Self::Fulfilled => "fulfilled",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Unknown => "unknown",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "processing" => Self::Processing,
            "paid" => Self::Paid,
            "fulfilled" => Self::Fulfilled,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            _ => Self::Unknown,
        }
    }
}

/// What `GET /api/billing/checkout-status` answers: the id and the state, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckoutStatusView {
    pub session_id: String,
    pub state: CheckoutState,
}

pub async fn checkout_status(
    services: &Services,
    session: &SessionId,
) -> Result<CheckoutStatusView, StoreError> {
    let item = services.table.get(&keys::checkout(session)).await?;
    let state = item
        .as_ref()
        .and_then(|i| i.str("state"))
        .map_or(CheckoutState::Unknown, CheckoutState::parse);
    Ok(CheckoutStatusView {
        session_id: session.to_string(),
        state,
    })
}
