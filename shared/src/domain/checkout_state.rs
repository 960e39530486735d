//! The state of one checkout as a return page sees it (`docs/api.md`,
//! "GET /api/billing/checkout-status"), and the moves between states.

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
    /// A stored state; anything else reads as `Unknown`.
    pub fn parse(s: &str) -> Self {
        match s {
            "processing" => Self::Processing,
            "paid" => Self::Paid,
            "fulfilled" => Self::Fulfilled,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            _ => Self::Unknown,
        }
    }

    /// The states a checkout may move to `self` from without a grant (a fulfilled
    /// checkout never moves; a checkout never seen may take any state).
    pub fn follows(self) -> &'static [CheckoutState] {
        match self {
            Self::Paid | Self::Expired => &[Self::Processing],
            Self::Failed => &[Self::Processing, Self::Paid],
            _ => &[],
        }
    }
}
