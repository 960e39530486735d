//! Which purchase a PaymentIntent paid for: how refunds and disputes, which carry only
//! the charge's PaymentIntent, find the purchase and the account. It is also the one
//! guard both fulfilment paths of a PaymentIntent share (`fulfilled_at`): Checkout's
//! completion and `payment_intent.succeeded` grant once in all, whichever comes first.

use crate::domain::ids::{PaymentIntentId, PurchaseId, UserId};
use crate::store::{Cond, ItemExt, Key, Op, StoreError, Table, Write};

/// The attribute naming the purchase; `session_id` because the first purchases were all
/// checkouts, and stored links keep that name.
const PURCHASE_ATTR: &str = "session_id";

pub fn key(pi: &PaymentIntentId) -> Key {
    Key::new(format!("PAYMENT_INTENT#{pi}"), "PAYMENT_INTENT")
}

/// A Checkout Session's purchase claims its PaymentIntent: only if the PaymentIntent was
/// not fulfilled by its own event before (the shared guard).
pub fn link(pi: &PaymentIntentId, user: &UserId, purchase: &PurchaseId, now: &str) -> Write {
    Write::Update {
        key: key(pi),
        ops: vec![
            Op::set("user_id", user.to_string()),
            Op::set(PURCHASE_ATTR, purchase.to_string()),
            Op::set("fulfilled_at", now.to_owned()),
        ],
        cond: Some(Cond::missing("fulfilled_at")),
    }
}

/// `POST /api/billing/purchases` created `pi` for `user`: the purchase will be keyed by
/// the PaymentIntent itself. Never undoes a fulfilment.
pub fn created(pi: &PaymentIntentId, user: &UserId, now: &str) -> Write {
    Write::Update {
        key: key(pi),
        ops: vec![
            Op::set_if_missing("user_id", user.to_string()),
            Op::set_if_missing(PURCHASE_ATTR, pi.to_string()),
            Op::set_if_missing("created_at", now.to_owned()),
        ],
        cond: None,
    }
}

/// `payment_intent.succeeded` fulfils `pi` as its own purchase: only if nothing fulfilled
/// it before and no Checkout Session owns it (a link written before the shared guard
/// existed has no `fulfilled_at`, but its session was fulfilled).
pub fn fulfilled(pi: &PaymentIntentId, user: &UserId, now: &str) -> Write {
    Write::Update {
        key: key(pi),
        ops: vec![
            Op::set("user_id", user.to_string()),
            Op::set(PURCHASE_ATTR, pi.to_string()),
            Op::set("fulfilled_at", now.to_owned()),
            Op::set_if_missing("created_at", now.to_owned()),
        ],
        cond: Some(Cond::And(vec![
            Cond::missing("fulfilled_at"),
            Cond::Or(vec![
                Cond::missing(PURCHASE_ATTR),
                Cond::eq(PURCHASE_ATTR, pi.to_string()),
            ]),
        ])),
    }
}

/// A stored PaymentIntent link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRow {
    pub user: UserId,
    pub purchase: PurchaseId,
    pub fulfilled: bool,
}

pub async fn load(
    table: &dyn Table,
    pi: &PaymentIntentId,
) -> Result<Option<IntentRow>, StoreError> {
    let link = table.get(&key(pi)).await?;
    Ok(link.as_ref().and_then(|l| {
        Some(IntentRow {
            user: UserId::parse(l.str("user_id")?).ok()?,
            purchase: PurchaseId::parse(l.str(PURCHASE_ATTR)?).ok()?,
            fulfilled: l.str("fulfilled_at").is_some(),
        })
    }))
}

/// The account and purchase `pi` paid for, if it is one of ours.
pub async fn purchase_of(
    table: &dyn Table,
    pi: &PaymentIntentId,
) -> Result<Option<(UserId, PurchaseId)>, StoreError> {
    Ok(load(table, pi).await?.map(|row| (row.user, row.purchase)))
}
