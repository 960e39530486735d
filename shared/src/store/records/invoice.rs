//! The once-only marker of an invoice's per-period grant: `invoice.paid` puts it, and a
//! late `invoice.payment_failed` checks it is absent. It also records the referral reward
//! the invoice's money earned, so a refund that finds the invoice through Stripe (no
//! ledger yet) takes that reward back.
//!
//! A refund or dispute of the invoice's payment that arrives before `invoice.paid` (Stripe
//! does not order deliveries) is kept on the same key as a *pending fact*
//! ([`pending_fact`]): the item has no `paid_at` yet, and `invoice.paid` applies the facts
//! when it creates the payment's ledger, in its own transaction, pinned to the facts it
//! read ([`paid_once`]), so a fact that lands meanwhile makes it plan again.

use super::item;
use super::payment_intent::DisputeState;
use crate::domain::ids::{InvoiceId, PaymentIntentId, UserId};
use crate::store::{Cond, ItemExt, Key, Op, StoreError, Table, Write};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

const PENDING_DISPUTE: &str = "pending_dispute:";

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

/// Refunds and disputes of the invoice's payment that arrived before the invoice was paid
/// here, as the ledger will count them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    pub payment_intent: Option<PaymentIntentId>,
    pub refunded: i64,
    pub disputes: BTreeMap<String, DisputeState>,
    /// Counts the facts written, so `invoice.paid` can pin what it read.
    pub version: i64,
}

/// The facts waiting for the invoice, when it is not paid here yet; `None` once it is (or
/// when nothing arrived before it).
pub async fn pending(
    table: &dyn Table,
    invoice: &InvoiceId,
) -> Result<Option<Pending>, StoreError> {
    let Some(i) = table.get(&key(invoice)).await? else {
        return Ok(None);
    };
    if i.str("paid_at").is_some() {
        return Ok(None);
    }
    let disputes = i
        .iter()
        .filter_map(|(name, v)| {
            let id = name.strip_prefix(PENDING_DISPUTE)?;
            let (rank, withheld) = v.as_str()?.split_once(':')?;
            Some((
                id.to_owned(),
                DisputeState {
                    rank: rank.parse().ok()?,
                    withheld: withheld.parse().ok()?,
                },
            ))
        })
        .collect();
    Ok(Some(Pending {
        payment_intent: i
            .str("pending_payment_intent")
            .and_then(|p| PaymentIntentId::parse(p).ok()),
        refunded: i.num("pending_refunded").unwrap_or(0),
        disputes,
        version: i.num("pending_version").unwrap_or(0),
    }))
}

/// Keeps a refund total or a dispute state of `pi`, the invoice's payment, until the invoice
/// is paid here; only while it is not (if it is by now, the fact's event plans again and
/// settles the ledger instead).
pub fn pending_fact(
    invoice: &InvoiceId,
    pi: &PaymentIntentId,
    refunded: Option<i64>,
    dispute: Option<(&str, DisputeState)>,
) -> Write {
    let mut ops = vec![
        Op::set("pending_payment_intent", pi.to_string()),
        Op::add("pending_version", 1),
    ];
    if let Some(total) = refunded {
        ops.push(Op::set("pending_refunded", total));
    }
    if let Some((id, d)) = dispute {
        ops.push(Op::set(
            &format!("{PENDING_DISPUTE}{id}"),
            format!("{}:{}", d.rank, d.withheld),
        ));
    }
    Write::Update {
        key: key(invoice),
        ops,
        cond: Some(Cond::missing("paid_at")),
    }
}

/// The invoice's grant: only once, and only over the pending facts read (`pending`).
pub fn paid_once(
    invoice: &InvoiceId,
    paid: &PaidInvoice,
    at: DateTime<Utc>,
    pending: Option<&Pending>,
) -> Write {
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
    let cond = match pending {
        None => Cond::ItemNotExists,
        Some(p) => Cond::And(vec![
            Cond::missing("paid_at"),
            Cond::eq("pending_version", p.version),
        ]),
    };
    Write::Put {
        key: key(invoice),
        item: it,
        cond: Some(cond),
    }
}

/// Holds only while the invoice has not been paid (pending facts are not a payment).
pub fn not_paid(invoice: &InvoiceId) -> Write {
    Write::Check {
        key: key(invoice),
        cond: Cond::missing("paid_at"),
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
