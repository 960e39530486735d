//! Operating it: the admin use cases (`docs/api.md`, "Admin"), one module per
//! operation. Every one is for operators only; the handler checks the `billing:admin`
//! scope before calling any of them.

mod erase;
mod events;
mod grant;
mod reconcile;
mod refund;
mod replay;
mod user;

pub use erase::{EraseOutcome, EraseRequest, erase};
pub use events::{EventSummary, EventsPage, EventsQuery, list_events};
pub use grant::{GrantOutcome, GrantRequest, grant};
pub use reconcile::{
    RECONCILE_BUDGET, ReconcileOutcome, ReconcileRequest, SLICE_PAGES, reconcile, reconcile_within,
};
pub use refund::{NamedPurchase, RefundError, RefundOutcome, RefundRequest, refund};
pub use replay::{ReplayOutcome, ReplayRequest, replay};
pub use user::{
    GrantView, OperatorUserView, RefundView, USER_PAGE, UserCursors, UserLookup, find_user,
    user_view,
};

use crate::store::StoreError;
use crate::stripe::api::StripeError;

pub use crate::store::records::event::LISTED_STATES;
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
/// Stripe keeps events for 30 days; a reconcile window cannot reach further back.
pub const STRIPE_EVENT_RETENTION_DAYS: i64 = 30;
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
    #[error("no account is {0}")]
    UnknownUser(String),
    #[error("Stripe is not configured")]
    StripeUnavailable,
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
