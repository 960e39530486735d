//! The once-only marker of an invoice's per-period grant: `invoice.paid` puts it, and a
//! late `invoice.payment_failed` checks it is absent. It also records the referral reward
//! the invoice's money earned, so a refund that finds the invoice through Stripe (no
//! ledger yet) takes that reward back.

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
    /// The referral reward this invoice earned: `Some(referrer)` when it earned one.
    pub referral: Option<Option<UserId>>,
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
    if let Some(referrer) = &paid.referral {
        it.insert("referral_rewarded".into(), true.into());
        if let Some(r) = referrer {
            it.insert("referral_referrer".into(), r.to_string().into());
        }
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
            referral: i.boolean("referral_rewarded").filter(|r| *r).map(|_| {
                i.str("referral_referrer")
                    .and_then(|u| UserId::parse(u).ok())
            }),
        })
    }))
}
