//! The audit item of an operator's refund: who refunded how much of which purchase, why,
//! and Stripe's refund id. One item per Stripe refund, so a retried click records once.

use super::item;
use crate::domain::ids::{PurchaseId, UserId};
use crate::store::schema::user_pk;
use crate::store::{Cond, ItemExt, Key, StoreError, Table, Write};

fn prefix(purchase: &PurchaseId) -> String {
    format!("REFUND#{purchase}#")
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
    pub at: &'a str,
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
