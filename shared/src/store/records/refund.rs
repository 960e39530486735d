//! The audit item of an operator's refund: who refunded how much of which purchase, why,
//! and Stripe's refund id. One item per Stripe refund, so a retried click records once.

use super::item;
use crate::domain::ids::{PurchaseId, UserId};
use crate::store::schema::user_pk;
use crate::store::{Cond, Item, ItemExt, Key, Page, StoreError, Table, Write};
use chrono::{DateTime, Utc};

const PREFIX: &str = "REFUND#";

fn prefix(purchase: &PurchaseId) -> String {
    format!("{PREFIX}{purchase}#")
}

pub fn key(user: &UserId, purchase: &PurchaseId, refund_id: &str) -> Key {
    Key::new(user_pk(user), format!("{}{refund_id}", prefix(purchase)))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit<'a> {
    pub refund_id: &'a str,
    pub operator: &'a UserId,
    pub reason: &'a str,
    pub amount: i64,
    pub at: DateTime<Utc>,
}

/// Written once per Stripe refund id.
pub fn audit(user: &UserId, purchase: &PurchaseId, a: &Audit<'_>) -> Write {
    Write::Put {
        key: key(user, purchase, a.refund_id),
        item: item([
            ("purchase_id", purchase.to_string().into()),
            ("refund_id", a.refund_id.into()),
            ("operator", a.operator.to_string().into()),
            ("reason", a.reason.into()),
            ("amount", a.amount.into()),
            ("at", a.at.into()),
        ]),
        cond: Some(Cond::ItemNotExists),
    }
}

/// What operators have refunded of the purchase so far, by our own audit (Stripe's
/// `charge.refunded` may not have arrived yet).
pub async fn total(
    table: &dyn Table,
    user: &UserId,
    purchase: &PurchaseId,
) -> Result<i64, StoreError> {
    let items = table.query(&user_pk(user), &prefix(purchase)).await?;
    Ok(items.iter().filter_map(|i| i.num("amount")).sum())
}

/// A stored refund audit item, as an operator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRow {
    pub purchase_id: String,
    pub refund_id: String,
    pub operator: String,
    pub reason: String,
    pub amount: i64,
    pub at: String,
}

impl RefundRow {
    fn from_item(i: &Item) -> Option<Self> {
        Some(Self {
            purchase_id: i.str("purchase_id")?.to_owned(),
            refund_id: i.str("refund_id")?.to_owned(),
            operator: i.str("operator").unwrap_or_default().to_owned(),
            reason: i.str("reason").unwrap_or_default().to_owned(),
            amount: i.num("amount").unwrap_or(0),
            at: i.str("at").unwrap_or_default().to_owned(),
        })
    }
}

/// Up to `limit` of the account's operator refunds after `cursor`, grouped by purchase
/// (their sort key starts with the purchase id): reads the page, however many there are.
pub async fn page(
    table: &dyn Table,
    user: &UserId,
    limit: usize,
    cursor: Option<&str>,
) -> Result<(Vec<RefundRow>, Option<String>), StoreError> {
    let Page { items, next } = table
        .query_page(&user_pk(user), PREFIX, limit, cursor)
        .await?;
    Ok((
        items.iter().filter_map(RefundRow::from_item).collect(),
        next,
    ))
}
