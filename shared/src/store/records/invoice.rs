//! The once-only marker of an invoice's per-period grant: `invoice.paid` puts it, and a
//! late `invoice.payment_failed` checks it is absent.

use super::item;
use crate::domain::ids::{InvoiceId, UserId};
use crate::store::{Cond, ItemExt, Key, StoreError, Table, Write};

pub fn key(invoice: &InvoiceId) -> Key {
    Key::new(format!("INVOICE#{invoice}"), "INVOICE")
}

/// A paid invoice as its marker records it: whose, how many credits, for how much, and,
/// for a subscription's first invoice, which subscription it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidInvoice {
    pub user: UserId,
    pub credits: i64,
    pub amount: i64,
    pub started: Option<String>,
}

/// The invoice's grant: only once.
pub fn paid_once(invoice: &InvoiceId, paid: &PaidInvoice, at: &str) -> Write {
    let mut it = item([
        ("user_id", paid.user.to_string().into()),
        ("credits", paid.credits.into()),
        ("amount", paid.amount.into()),
        ("paid_at", at.into()),
    ]);
    if let Some(sub) = &paid.started {
        it.insert("started_subscription".into(), sub.clone().into());
    }
    Write::Put {
        key: key(invoice),
        item: it,
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
            started: i.str("started_subscription").map(str::to_owned),
        })
    }))
}
