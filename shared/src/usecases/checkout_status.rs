//! `GET /api/billing/checkout-status`: what a return page polls, from our own store only.

use crate::app::Services;
use crate::domain::checkout_state::CheckoutState;
use crate::domain::ids::SessionId;
use crate::store::StoreError;
use crate::store::records::checkout;
use serde::Serialize;

/// The id and the state, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckoutStatusView {
    pub session_id: String,
    pub state: CheckoutState,
}

pub async fn checkout_status(
    services: &Services,
    session: &SessionId,
) -> Result<CheckoutStatusView, StoreError> {
    Ok(CheckoutStatusView {
        session_id: session.to_string(),
        state: checkout::state(services.table.as_ref(), session).await?,
    })
}
