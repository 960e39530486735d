//! A purchase of an account (one paid checkout, or one PaymentIntent bought without
//! Checkout): what was bought, for how much, and how much of it has been refunded or
//! disputed since. Indexed by time (`gsi2`, projecting only what the account shows) so
//! that the account reads its latest purchases by page.

use super::item;
use crate::domain::clock::rfc3339;
use crate::domain::ids::{PurchaseId, UserId};
use crate::store::schema::{GSI2_PK, GSI2_SK, PURCHASES_BY_TIME, SK, user_pk};
use crate::store::{Cond, Item, ItemExt, Key, Op, Page, StoreError, Table, Write};
use chrono::{DateTime, Utc};

const PREFIX: &str = "PURCHASE#";

/// The purchase index's partition of one account.
fn index_pk(user: &UserId) -> String {
    format!("PURCHASES#{user}")
}

pub fn key(user: &UserId, session: &PurchaseId) -> Key {
    Key::new(user_pk(user), format!("{PREFIX}{session}"))
}

/// A paid checkout, as fulfilment records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    pub plan_id: String,
    pub amount: i64,
    pub currency: String,
    pub credits: i64,
    pub quantity: i64,
    pub payment_intent: Option<String>,
    pub at: DateTime<Utc>,
}

/// Records the purchase (inside the checkout's transaction, behind its guard).
pub fn paid(user: &UserId, session: &PurchaseId, p: &Paid) -> Write {
    let mut item = item([
        ("plan_id", p.plan_id.clone().into()),
        ("session_id", session.to_string().into()),
        ("amount", p.amount.into()),
        ("currency", p.currency.clone().into()),
        ("status", "paid".into()),
        ("at", p.at.into()),
        ("credits", p.credits.into()),
        ("quantity", p.quantity.into()),
        (GSI2_PK, index_pk(user).into()),
        // The session id makes the position unique among purchases of the same second.
        (GSI2_SK, format!("{}#{session}", rfc3339(p.at)).into()),
    ]);
    if let Some(pi) = &p.payment_intent {
        item.insert("payment_intent".into(), pi.clone().into());
    }
    Write::Put {
        key: key(user, session),
        item,
        cond: None,
    }
}

/// Shows what the payment's ledger says was taken back: `refunded` while any money is
/// (refunds and disputes that withhold), `paid` again once a won dispute returned it all.
/// The ledger's version guards the transaction, so this needs no condition of its own.
pub fn refunded(
    user: &UserId,
    session: &PurchaseId,
    total: i64,
    taken_back: i64,
    now: DateTime<Utc>,
) -> Write {
    let mut ops = vec![
        Op::set("status", if total > 0 { "refunded" } else { "paid" }),
        Op::set("amount_refunded", total),
        Op::set("credits_taken_back", taken_back),
    ];
    if total > 0 {
        ops.push(Op::set("refunded_at", now));
    }
    Write::Update {
        key: key(user, session),
        ops,
        cond: Some(Cond::ItemExists),
    }
}

/// A PaymentIntent's payment failed: recorded as `failed`, granting nothing, and only
/// while nothing better is recorded (a later success overwrites it; a late failure never
/// overwrites a success).
pub fn failed(user: &UserId, purchase: &PurchaseId, p: &Paid) -> Write {
    let mut write = paid(user, purchase, p);
    if let Write::Put { item, cond, .. } = &mut write {
        item.insert("status".into(), "failed".into());
        item.insert("credits".into(), 0.into());
        *cond = Some(Cond::Or(vec![
            Cond::missing("status"),
            Cond::eq("status", "failed"),
        ]));
    }
    write
}

/// A stored purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRow {
    pub plan_id: String,
    pub session_id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub at: String,
    pub credits: i64,
    pub amount_refunded: i64,
    pub credits_taken_back: i64,
    pub payment_intent: Option<String>,
}

impl PurchaseRow {
    pub fn from_item(item: &Item) -> Option<Self> {
        item.str(SK)?.strip_prefix(PREFIX)?;
        Some(Self {
            plan_id: item.str("plan_id")?.to_owned(),
            session_id: item.str("session_id")?.to_owned(),
            amount: item.num("amount")?,
            currency: item.str("currency")?.to_owned(),
            status: item.str("status")?.to_owned(),
            at: item.str("at")?.to_owned(),
            credits: item.num("credits").unwrap_or(0),
            amount_refunded: item.num("amount_refunded").unwrap_or(0),
            credits_taken_back: item.num("credits_taken_back").unwrap_or(0),
            payment_intent: item.str("payment_intent").map(str::to_owned),
        })
    }
}

pub async fn load(
    table: &dyn Table,
    user: &UserId,
    session: &PurchaseId,
) -> Result<Option<PurchaseRow>, StoreError> {
    Ok(table
        .get(&key(user, session))
        .await?
        .as_ref()
        .and_then(PurchaseRow::from_item))
}

/// Up to `limit` purchases of the account, newest first, after `cursor` (the `next` of
/// the previous page): reads what it shows, however many purchases the account has.
pub async fn latest(
    table: &dyn Table,
    user: &UserId,
    limit: usize,
    cursor: Option<&str>,
) -> Result<(Vec<PurchaseRow>, Option<String>), StoreError> {
    let Page { items, next } = table
        .query_index(&PURCHASES_BY_TIME, &index_pk(user), limit, cursor)
        .await?;
    Ok((
        items.iter().filter_map(PurchaseRow::from_item).collect(),
        next,
    ))
}
