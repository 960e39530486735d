//! One payment's ledger, keyed by its PaymentIntent (the one id that refunds, disputes and
//! both shapes of invoice payments share): whom it paid for (a checkout's purchase or a
//! subscription invoice), how much money and how many credits it brought, and what has
//! been taken back of it since. Refunds and disputes of one charge add up here, so they
//! never double-count nor under-count (`usecases::fulfil::refund`).
//!
//! Refunds are stored as Stripe's cumulative `amount_refunded` (the largest seen); each
//! dispute as its own attribute `dispute:<dp_id>` = `"<rank>:<withheld>"`, where the rank
//! orders a dispute's states (open before closed) so a late `created` never undoes a `won`.
//!
//! Its `fulfilled_at` is the one guard both fulfilment paths of a PaymentIntent share:
//! Checkout's completion ([`claimed`]) and `payment_intent.succeeded` ([`fulfilled`]) grant
//! once in all, whichever comes first. A purchase made with Stripe Elements is keyed by its
//! PaymentIntent: its ledger names it as `Source::Checkout(pi_…)`, its purchase.

use super::item;
use crate::domain::ids::{InvoiceId, PaymentIntentId, PurchaseId, UserId};
use crate::store::{Cond, Item, ItemExt, Key, Op, StoreError, Table, Write};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

const DISPUTE: &str = "dispute:";

pub fn key(pi: &PaymentIntentId) -> Key {
    Key::new(format!("PAYMENT_INTENT#{pi}"), "PAYMENT_INTENT")
}

/// What a payment paid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A purchase: a checkout's (`cs_…`) or one made with Stripe Elements (`pi_…`).
    Checkout(PurchaseId),
    Invoice(InvoiceId),
}

/// A dispute's effect on the money: how much it withholds, and how settled that is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisputeState {
    /// 1 for an inquiry, 2 for a chargeback (or an inquiry escalated into one), 3 once
    /// closed or reinstated.
    pub rank: u8,
    /// Money the dispute keeps from the merchant now (0 for an inquiry or a won dispute).
    pub withheld: i64,
}

/// The ledger of one payment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub user: UserId,
    pub source: Source,
    pub amount: i64,
    pub credits: i64,
    /// Stripe's cumulative refunded amount, the largest seen.
    pub refunded: i64,
    pub disputes: BTreeMap<String, DisputeState>,
    /// Credits due back by the money taken back (what the rule says).
    pub credits_due_back: i64,
    /// Credits actually taken from the balance (spent credits are not clawed back).
    pub credits_taken: i64,
    /// The referral reward this payment earned, if any: the referrer, when one was rewarded.
    pub referral: Option<Option<UserId>>,
    pub referral_taken_back: bool,
    pub version: i64,
}

impl Ledger {
    /// A new ledger of a payment, before anything was taken back.
    pub fn new(user: UserId, source: Source, amount: i64, credits: i64) -> Self {
        Self {
            user,
            source,
            amount,
            credits,
            refunded: 0,
            disputes: BTreeMap::new(),
            credits_due_back: 0,
            credits_taken: 0,
            referral: None,
            referral_taken_back: false,
            version: 0,
        }
    }

    /// Money the merchant no longer keeps: refunds plus what open or lost disputes
    /// withhold, never more than was paid.
    pub fn money_taken_back(&self) -> i64 {
        let disputed: i64 = self.disputes.values().map(|d| d.withheld).sum();
        (self.refunded + disputed).clamp(0, self.amount.max(0))
    }

    fn from_item(item: &Item) -> Option<Self> {
        let user = UserId::parse(item.str("user_id")?).ok()?;
        let source = match (item.str("session_id"), item.str("invoice_id")) {
            (Some(s), _) => Source::Checkout(PurchaseId::parse(s).ok()?),
            (None, Some(i)) => Source::Invoice(InvoiceId::parse(i).ok()?),
            _ => return None,
        };
        let disputes = item
            .iter()
            .filter_map(|(name, v)| {
                let id = name.strip_prefix(DISPUTE)?;
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
        let referral = item.boolean("referral_rewarded").filter(|r| *r).map(|_| {
            item.str("referral_referrer")
                .and_then(|u| UserId::parse(u).ok())
        });
        Some(Self {
            user,
            source,
            amount: item.num("amount").unwrap_or(0),
            credits: item.num("credits").unwrap_or(0),
            refunded: item.num("refunded").unwrap_or(0),
            disputes,
            credits_due_back: item.num("credits_due_back").unwrap_or(0),
            credits_taken: item.num("credits_taken").unwrap_or(0),
            referral,
            referral_taken_back: item.boolean("referral_taken_back").unwrap_or(false),
            version: item.num("version").unwrap_or(0),
        })
    }

    /// Whether the item was written before ledgers held amounts (only a link to a purchase).
    pub fn lacks_amounts(&self) -> bool {
        self.amount == 0 && self.credits == 0
    }
}

fn base_item(l: &Ledger) -> Item {
    let mut it = item([
        ("user_id", l.user.to_string().into()),
        ("amount", l.amount.into()),
        ("credits", l.credits.into()),
        ("version", 0.into()),
    ]);
    match &l.source {
        Source::Checkout(s) => it.insert("session_id".into(), s.to_string().into()),
        Source::Invoice(i) => it.insert("invoice_id".into(), i.to_string().into()),
    };
    if let Some(referrer) = &l.referral {
        it.insert("referral_rewarded".into(), true.into());
        if let Some(r) = referrer {
            it.insert("referral_referrer".into(), r.to_string().into());
        }
    }
    it
}

/// Records a new payment (inside its fulfilment's transaction, behind that guard).
pub fn link(pi: &PaymentIntentId, ledger: &Ledger) -> Write {
    Write::Put {
        key: key(pi),
        item: base_item(ledger),
        cond: None,
    }
}

/// A Checkout Session's payment, claimed under the shared guard: only if the
/// PaymentIntent's own event did not fulfil it before.
pub fn claimed(pi: &PaymentIntentId, ledger: &Ledger, now: DateTime<Utc>) -> Write {
    let mut item = base_item(ledger);
    item.insert("fulfilled_at".into(), now.into());
    Write::Put {
        key: key(pi),
        item,
        cond: Some(Cond::missing("fulfilled_at")),
    }
}

/// `payment_intent.succeeded` fulfils `pi` as its own purchase: only if nothing fulfilled
/// it before, and no Checkout Session or invoice owns it (their ledgers written before
/// the shared guard existed have no `fulfilled_at`, but their payment was fulfilled).
pub fn fulfilled(pi: &PaymentIntentId, ledger: &Ledger, now: DateTime<Utc>) -> Write {
    let mut item = base_item(ledger);
    item.insert("fulfilled_at".into(), now.into());
    Write::Put {
        key: key(pi),
        item,
        cond: Some(Cond::And(vec![
            Cond::missing("fulfilled_at"),
            Cond::missing("invoice_id"),
            Cond::Or(vec![
                Cond::missing("session_id"),
                Cond::eq("session_id", pi.to_string()),
            ]),
        ])),
    }
}

/// `POST /api/billing/purchases` created `pi` for `user`: its purchase will be keyed by
/// the PaymentIntent itself. Never undoes a fulfilment.
pub fn created(pi: &PaymentIntentId, user: &UserId, now: DateTime<Utc>) -> Write {
    Write::Update {
        key: key(pi),
        ops: vec![
            Op::set_if_missing("user_id", user.to_string()),
            Op::set_if_missing("session_id", pi.to_string()),
            Op::set_if_missing("created_at", now),
        ],
        cond: None,
    }
}

/// Whether a PaymentIntent was fulfilled, and as which purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfilment {
    pub purchase: Option<PurchaseId>,
    pub fulfilled: bool,
}

pub async fn fulfilment(
    table: &dyn Table,
    pi: &PaymentIntentId,
) -> Result<Option<Fulfilment>, StoreError> {
    Ok(table.get(&key(pi)).await?.map(|item| Fulfilment {
        purchase: item
            .str("session_id")
            .and_then(|s| PurchaseId::parse(s).ok()),
        fulfilled: item.str("fulfilled_at").is_some(),
    }))
}

/// The account and purchase `pi` paid for, if it paid for a purchase of ours.
pub async fn purchase_of(
    table: &dyn Table,
    pi: &PaymentIntentId,
) -> Result<Option<(UserId, PurchaseId)>, StoreError> {
    Ok(load(table, pi).await?.and_then(|l| match l.source {
        Source::Checkout(p) => Some((l.user, p)),
        Source::Invoice(_) => None,
    }))
}

/// Writes `after`, the ledger as a refund or dispute leaves it, over `before` as read:
/// pinned to the version read, so two events of one payment at once never both count
/// (the second plans again). `before` is `None` when the ledger is created now (a
/// subscription invoice's payment found through Stripe): then it must still be missing.
pub fn settled(pi: &PaymentIntentId, before: Option<&Ledger>, after: &Ledger) -> Write {
    let mut ops = vec![
        Op::set("refunded", after.refunded),
        Op::set("credits_due_back", after.credits_due_back),
        Op::set("credits_taken", after.credits_taken),
        Op::set("referral_taken_back", after.referral_taken_back),
        Op::add("version", 1),
    ];
    for (id, d) in &after.disputes {
        ops.push(Op::set(
            &format!("{DISPUTE}{id}"),
            format!("{}:{}", d.rank, d.withheld),
        ));
    }
    match before {
        Some(b) => Write::Update {
            key: key(pi),
            ops,
            cond: Some(if b.version == 0 {
                Cond::Or(vec![Cond::missing("version"), Cond::eq("version", 0)])
            } else {
                Cond::eq("version", b.version)
            }),
        },
        None => {
            let mut it = base_item(after);
            for op in ops {
                match op {
                    Op::Set(name, v) => {
                        it.insert(name, v);
                    }
                    Op::Add(name, n) => {
                        it.insert(name, n.into());
                    }
                    _ => {}
                }
            }
            Write::Put {
                key: key(pi),
                item: it,
                cond: Some(Cond::ItemNotExists),
            }
        }
    }
}

/// The ledger of `pi`, if it is a payment of ours.
pub async fn load(table: &dyn Table, pi: &PaymentIntentId) -> Result<Option<Ledger>, StoreError> {
    Ok(table
        .get(&key(pi))
        .await?
        .as_ref()
        .and_then(Ledger::from_item))
}
