//! A checkout's state for the return page. Fulfilment stamps `fulfilled_at` once: that is
//! the guard that makes a session's plan apply at most once, whichever completion event
//! arrives first.

use crate::domain::checkout_state::CheckoutState;
use crate::domain::ids::{PlanId, SessionId, UserId};
use crate::store::{Cond, ItemExt, Key, Op, StoreError, Table, Write};
use chrono::{DateTime, Utc};

pub fn key(session: &SessionId) -> Key {
    Key::new(format!("CHECKOUT#{session}"), "CHECKOUT")
}

/// Our checkout created the session: the return page shows `processing` until the webhook.
pub fn started(
    session: &SessionId,
    user: &UserId,
    plan: &PlanId,
    quantity: i64,
    now: DateTime<Utc>,
) -> Write {
    Write::Update {
        key: key(session),
        ops: vec![
            Op::set_if_missing("state", CheckoutState::Processing.as_str()),
            Op::set_if_missing("created_at", now),
            Op::set("user_id", user.to_string()),
            Op::set("plan_id", plan.to_string()),
            Op::set("quantity", quantity),
        ],
        cond: None,
    }
}

/// The session's plan is granted: only if it was not granted before (the guard).
pub fn fulfilled(session: &SessionId, user: &UserId, plan: &PlanId, now: DateTime<Utc>) -> Write {
    Write::Update {
        key: key(session),
        ops: vec![
            Op::set("state", CheckoutState::Fulfilled.as_str()),
            Op::set("fulfilled_at", now),
            Op::set("user_id", user.to_string()),
            Op::set("plan_id", plan.to_string()),
            Op::set_if_missing("created_at", now),
        ],
        cond: Some(Cond::missing("fulfilled_at")),
    }
}

/// Moves the state to `to` without granting anything, only from the states `to` may
/// follow ([`CheckoutState::follows`]), and never away from a fulfilled checkout.
pub fn moved(
    session: &SessionId,
    to: CheckoutState,
    user: Option<&UserId>,
    plan: Option<&str>,
    now: DateTime<Utc>,
) -> Write {
    let mut ops = vec![
        Op::set("state", to.as_str()),
        Op::set("updated_at", now),
        Op::set_if_missing("created_at", now),
    ];
    if let Some(user) = user {
        ops.push(Op::set_if_missing("user_id", user.to_string()));
    }
    if let Some(plan) = plan {
        ops.push(Op::set_if_missing("plan_id", plan.to_owned()));
    }
    let from: Vec<&str> = to.follows().iter().map(|s| s.as_str()).collect();
    let cond = Cond::And(vec![
        Cond::missing("fulfilled_at"),
        Cond::Or(vec![Cond::missing("state"), Cond::one_of("state", &from)]),
    ]);
    Write::Update {
        key: key(session),
        ops,
        cond: Some(cond),
    }
}

/// The checkout's state; `Unknown` when we never saw it.
pub async fn state(table: &dyn Table, session: &SessionId) -> Result<CheckoutState, StoreError> {
    let item = table.get(&key(session)).await?;
    Ok(item
        .as_ref()
        .and_then(|i| i.str("state"))
        .map_or(CheckoutState::Unknown, CheckoutState::parse))
}

/// The account a checkout was for, when we recorded one.
pub async fn owner(table: &dyn Table, session: &SessionId) -> Result<Option<UserId>, StoreError> {
    let item = table.get(&key(session)).await?;
    Ok(item
        .as_ref()
        .and_then(|i| i.str("user_id"))
        .and_then(|u| UserId::parse(u).ok()))
}

/// The account's subscription checkout that may still be open: the last one our checkout
/// created, with the Stripe `Idempotency-Key` it was created under (a retry of the same
/// request gets the same session back and must not close it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSubscriptionCheckout {
    pub session: SessionId,
    pub plan: String,
    pub stripe_key: String,
}

fn open_key(user: &UserId) -> Key {
    Key::new(crate::store::schema::user_pk(user), "OPEN_SUB_CHECKOUT")
}

/// Records `session` as the account's open subscription checkout (replacing the last one).
pub fn opened_subscription(
    user: &UserId,
    session: &SessionId,
    plan: &PlanId,
    stripe_key: &str,
    now: DateTime<Utc>,
) -> Write {
    Write::Update {
        key: open_key(user),
        ops: vec![
            Op::set("session_id", session.to_string()),
            Op::set("plan_id", plan.to_string()),
            Op::set("stripe_key", stripe_key.to_owned()),
            Op::set("created_at", now),
        ],
        cond: None,
    }
}

/// The account's last subscription checkout, if any.
pub async fn open_subscription(
    table: &dyn Table,
    user: &UserId,
) -> Result<Option<OpenSubscriptionCheckout>, StoreError> {
    let item = table.get(&open_key(user)).await?;
    Ok(item.as_ref().and_then(|i| {
        Some(OpenSubscriptionCheckout {
            session: SessionId::parse(i.str("session_id")?).ok()?,
            plan: i.str("plan_id")?.to_owned(),
            stripe_key: i.str("stripe_key").unwrap_or_default().to_owned(),
        })
    }))
}
