//! The once-only marker of an invoice's per-period grant: `invoice.paid` puts it, and a
//! late `invoice.payment_failed` checks it is absent.

use super::item;
use crate::domain::ids::{InvoiceId, UserId};
use crate::store::{Cond, ItemExt, Key, StoreError, Table, Write};

pub fn key(invoice: &InvoiceId) -> Key {
    Key::new(format!("INVOICE#{invoice}"), "INVOICE")
}

/// The invoice's grant of `credits` for `amount` paid: only once.
pub fn paid_once(invoice: &InvoiceId, user: &UserId, credits: i64, amount: i64, at: &str) -> Write {
    Write::Put {
        key: key(invoice),
        item: item([
            ("user_id", user.to_string().into()),
            ("credits", credits.into()),
            ("amount", amount.into()),
            ("paid_at", at.into()),
        ]),
        cond: Some(Cond::ItemNotExists),
    }
}

/// Holds only while the invoice has not been paid.
pub fn not_paid(invoice: &InvoiceId) -> Write {
    Write::Check {
        key: key(invoice),
        cond: Cond::ItemNotExists,
    }
}

/// A paid invoice as its marker records it: whose, how many credits, for how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidInvoice {
    pub user: UserId,
    pub credits: i64,
    pub amount: i64,
}

/// The invoice's grant, once `invoice.paid` has been applied.
pub async fn load(
    table: &dyn Table,
    invoice: &InvoiceId,
) -> Result<Option<PaidInvoice>, StoreError> {
    let found = table.get(&key(invoice)).await?;
    Ok(found.as_ref().and_then(|i| {
        Some(PaidInvoice {
            user: UserId::parse(i.str("user_id")?).ok()?,
            credits: i.num("credits").unwrap_or(0),
            amount: i.num("amount").unwrap_or(0),
        })
    }))
}
