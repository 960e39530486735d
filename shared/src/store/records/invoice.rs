//! The once-only marker of an invoice's per-period grant: `invoice.paid` puts it, and a
//! late `invoice.payment_failed` checks it is absent.

use super::item;
use crate::domain::ids::{InvoiceId, UserId};
use crate::store::{Cond, Key, Write};

pub fn key(invoice: &InvoiceId) -> Key {
    Key::new(format!("INVOICE#{invoice}"), "INVOICE")
}

/// The invoice's grant of `credits`: only once.
pub fn paid_once(invoice: &InvoiceId, user: &UserId, credits: i64, at: &str) -> Write {
    Write::Put {
        key: key(invoice),
        item: item([
            ("user_id", user.to_string().into()),
            ("credits", credits.into()),
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
