//! A subscription of an account, as last applied. Every change carries a version (a total
//! order on the subscription's events) and lands only over an older one, so any delivery
//! order ends in the same state.

use crate::domain::entitlement::SubscriptionStatus;
use crate::domain::ids::{PlanId, SubscriptionId, UserId};
use crate::store::schema::{SK, user_pk};
use crate::store::{Cond, Item, ItemExt, Key, Op, StoreError, Table, Write};
use chrono::{DateTime, Utc};

pub const PREFIX: &str = "SUB#";

pub fn key(user: &UserId, sub: &SubscriptionId) -> Key {
    Key::new(user_pk(user), format!("{PREFIX}{sub}"))
}

/// A subscription's state as one event shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState<'a> {
    pub status: SubscriptionStatus,
    pub version: String,
    pub plan: Option<&'a PlanId>,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<i64>,
    pub cancel_at: Option<i64>,
    pub trial_end: Option<i64>,
    /// Seats (the subscription item's quantity).
    pub quantity: i64,
}

/// Applies `state` unless a state of the same or a later version is applied already.
pub fn apply_if_newer(
    user: &UserId,
    sub: &SubscriptionId,
    state: SubscriptionState<'_>,
    now: DateTime<Utc>,
) -> Write {
    let set_or_remove = |attr: &str, v: Option<i64>| match v {
        Some(t) => Op::set(attr, t),
        None => Op::remove(attr),
    };
    let ops = vec![
        Op::set("status", state.status.as_str()),
        Op::set("version", state.version.clone()),
        Op::set("cancel_at_period_end", state.cancel_at_period_end),
        Op::set("updated_at", now),
        match state.plan {
            Some(p) => Op::set("plan_id", p.to_string()),
            None => Op::remove("plan_id"),
        },
        set_or_remove("current_period_end", state.current_period_end),
        set_or_remove("cancel_at", state.cancel_at),
        set_or_remove("trial_end", state.trial_end),
        Op::set("quantity", state.quantity),
    ];
    Write::Update {
        key: key(user, sub),
        ops,
        cond: Some(Cond::Or(vec![
            Cond::missing("version"),
            Cond::lt("version", state.version),
        ])),
    }
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRow {
    pub id: String,
    pub status: SubscriptionStatus,
    pub version: String,
    pub plan_id: Option<String>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub trial_end: Option<i64>,
    pub quantity: i64,
}

impl SubscriptionRow {
    pub fn from_item(item: &Item) -> Option<Self> {
        Some(Self {
            id: item.str(SK)?.strip_prefix(PREFIX)?.to_owned(),
            status: SubscriptionStatus::parse(item.str("status")?),
            version: item.str("version").unwrap_or_default().to_owned(),
            plan_id: item.str("plan_id").map(str::to_owned),
            current_period_end: item.num("current_period_end"),
            cancel_at_period_end: item.boolean("cancel_at_period_end").unwrap_or(false),
            cancel_at: item.num("cancel_at"),
            trial_end: item.num("trial_end"),
            // Rows written before seats were stored hold one.
            quantity: item.num("quantity").unwrap_or(1),
        })
    }
}

impl SubscriptionRow {
    /// Whether the row already shows `state` (everything but the version).
    pub fn shows(&self, state: &SubscriptionState<'_>) -> bool {
        self.status == state.status
            && self.plan_id.as_deref() == state.plan.map(PlanId::as_str)
            && self.current_period_end == state.current_period_end
            && self.cancel_at_period_end == state.cancel_at_period_end
            && self.cancel_at == state.cancel_at
            && self.trial_end == state.trial_end
            && self.quantity == state.quantity
    }
}

/// One subscription of the account, if stored (a consistent read).
pub async fn get(
    table: &dyn Table,
    user: &UserId,
    sub: &SubscriptionId,
) -> Result<Option<SubscriptionRow>, StoreError> {
    let item = table.get(&key(user, sub)).await?;
    Ok(item.as_ref().and_then(SubscriptionRow::from_item))
}

/// Every subscription of the account.
pub async fn list(table: &dyn Table, user: &UserId) -> Result<Vec<SubscriptionRow>, StoreError> {
    let items = table.query(&user_pk(user), PREFIX).await?;
    Ok(items
        .iter()
        .filter_map(SubscriptionRow::from_item)
        .collect())
}
