//! The event bus port: where `billing.entitlements.changed` goes once an entitlement change
//! has committed (`docs/api.md`, "Entitlement events").
//!
//! Adapters: [`eventbridge::EventBridgeBus`] (AWS, moto) and [`memory::MemoryBus`]; the
//! contract suite in `tests/tests/contracts/events.rs` runs against both.

pub mod eventbridge;
pub mod memory;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The events' `source`.
pub const SOURCE: &str = "billing";
/// The events' `detail-type`.
pub const DETAIL_TYPE: &str = "billing.entitlements.changed";

/// The `detail` of one `billing.entitlements.changed` event: the account's entitlements as
/// read once version `version` had committed (a later change may already show in it; its
/// own event carries a higher version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementsChanged {
    /// `<user_id>:<version>`: the same for every delivery of one version.
    pub id: String,
    pub user_id: String,
    pub tier: String,
    pub plan_id: Option<String>,
    pub subscription_status: Option<String>,
    pub credits: Credits,
    pub credit_until: Option<String>,
    /// The account's features, as `GET /api/billing/entitlements` shows them.
    #[serde(default)]
    pub features: std::collections::BTreeMap<String, crate::domain::allowance::FeatureView>,
    /// The Stripe event id, or the operation (`usage:<key>`, `grant:<id>`).
    pub cause: String,
    /// Goes up by one with every committed change of this account's entitlements.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credits {
    pub balance: i64,
    pub free_uses_remaining: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus could not be reached or refused the event; publishing again may succeed.
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes one event; `Ok` only once the bus has accepted it.
    async fn publish(&self, event: &EntitlementsChanged) -> Result<(), BusError>;
}
