//! Fulfilment: what the queue worker does with one Stripe event (API.md, Fulfilment).
//!
//! Each event becomes one plan of [`Write`]s executed as one transaction: all of its
//! effects and the event record's `processed` state land together, or nothing does. Each
//! plan has one *guard*, the condition that makes it apply at most once (the checkout's
//! `fulfilled_at` is missing; the subscription's stored version is older). When the guard
//! fails, the event has already been applied, or is older than what was applied: nothing
//! changes and the event is recorded as processed.

use crate::catalog::{Grant, Plan};
use crate::checkout_state::CheckoutState;
use crate::clock::rfc3339;
use crate::ids::{
    CustomerId, EventId, InvoiceId, PaymentIntentId, PlanId, SessionId, SubscriptionId, UserId,
};
use crate::intake::state;
use crate::keys::{self, GSI1_PK, GSI1_SK};
use crate::metrics::{self, Unit, names};
use crate::runtime::Services;
use crate::store::{Cond, Item, ItemExt, Op, StoreError, Write};
use crate::stripe::{Charge, CheckoutSession, Dispute, Event, Invoice, Subscription};
use std::time::Duration;

pub const CHECKOUT_COMPLETED: &str = "checkout.session.completed";
pub const ASYNC_SUCCEEDED: &str = "checkout.session.async_payment_succeeded";
pub const ASYNC_FAILED: &str = "checkout.session.async_payment_failed";
pub const CHECKOUT_EXPIRED: &str = "checkout.session.expired";
pub const SUB_CREATED: &str = "customer.subscription.created";
pub const SUB_UPDATED: &str = "customer.subscription.updated";
pub const SUB_DELETED: &str = "customer.subscription.deleted";
pub const INVOICE_PAID: &str = "invoice.paid";
pub const INVOICE_FAILED: &str = "invoice.payment_failed";
pub const CHARGE_REFUNDED: &str = "charge.refunded";
pub const DISPUTE_CREATED: &str = "charge.dispute.created";

/// The event types the worker acts on; intake records every other type as `ignored`.
pub const HANDLED: &[&str] = &[
    CHECKOUT_COMPLETED,
    ASYNC_SUCCEEDED,
    ASYNC_FAILED,
    CHECKOUT_EXPIRED,
    SUB_CREATED,
    SUB_UPDATED,
    SUB_DELETED,
    INVOICE_PAID,
    INVOICE_FAILED,
    CHARGE_REFUNDED,
    DISPUTE_CREATED,
];

pub fn handles(kind: &str) -> bool {
    HANDLED.contains(&kind)
}

/// Subscription statuses that keep the paid tier.
pub const TIER_KEEPING: &[&str] = &["trialing", "active", "past_due"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The event's effects landed now.
    Applied,
    /// The guard held it back: applied before, or older than what was applied.
    AlreadyApplied,
}

#[derive(Debug, thiserror::Error)]
pub enum FulfilError {
    #[error("the message is not a Stripe event: {0}")]
    InvalidEvent(String),
    #[error("the event type {0} is not handled")]
    Unhandled(String),
    #[error(
        "the event names no user we know (metadata.user_id, client_reference_id or a known customer)"
    )]
    NoUser,
    #[error("the event names plan {0:?}, which is not in the catalog")]
    UnknownPlan(Option<String>),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    #[error("Stripe could not be asked: {0}")]
    Stripe(String),
    #[error("no purchase of ours is linked to this charge's payment intent")]
    NoPurchase,
}

/// The writes of one event, and which of them is the once-only guard.
struct Planned {
    writes: Vec<Write>,
    guard: usize,
}

/// Processes one event given as its raw JSON (a queue message or a stored payload).
pub async fn process(services: &Services, raw: &str) -> Result<Outcome, FulfilError> {
    let event: Event =
        serde_json::from_str(raw).map_err(|e| FulfilError::InvalidEvent(e.to_string()))?;
    let id = EventId::parse(&event.id).map_err(|e| FulfilError::InvalidEvent(e.to_string()))?;
    let span = crate::intake::event_span(&event);
    let result = tracing::Instrument::instrument(apply(services, &id, &event), span.clone()).await;
    let _entered = span.enter();
    match &result {
        Ok(outcome) => {
            if *outcome == Outcome::Applied {
                let latency_ms = (services.clock.now().timestamp() - event.created).max(0) * 1000;
                metrics::emit(
                    "worker",
                    names::FULFILMENT_LATENCY,
                    latency_ms as f64,
                    Unit::Milliseconds,
                );
            }
            tracing::info!(?outcome, "event fulfilled");
        }
        Err(err) => {
            metrics::emit("worker", names::EVENTS_FAILED, 1.0, Unit::Count);
            mark_failed(services, &id, &event.kind, err).await;
        }
    }
    result
}

async fn apply(services: &Services, id: &EventId, event: &Event) -> Result<Outcome, FulfilError> {
    // A conflict means another transaction touched the same items at the same instant:
    // plan again from fresh reads, a few times, before handing the message back to SQS.
    let mut attempt = 0;
    loop {
        let plan = plan(services, id, event).await?;
        let guard = plan.guard;
        match services.table.transact(plan.writes).await {
            Ok(()) => return Ok(Outcome::Applied),
            Err(StoreError::TransactionConditionFailed(failed)) if failed.contains(&guard) => {
                let done = vec![
                    Op::set("status", state::PROCESSED),
                    Op::set(GSI1_PK, keys::events_by_state(state::PROCESSED)),
                ];
                let now = rfc3339(services.clock.now());
                services
                    .table
                    .update(
                        &keys::event(id),
                        with_record_basics(done, id, event, &now),
                        None,
                    )
                    .await?;
                return Ok(Outcome::AlreadyApplied);
            }
            Err(StoreError::Conflict) | Err(StoreError::TransactionConditionFailed(_))
                if attempt < 3 =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Keeps a record complete even when the worker writes it first (replay, reconcile).
fn with_record_basics(mut ops: Vec<Op>, id: &EventId, event: &Event, now: &str) -> Vec<Op> {
    ops.push(Op::set("processed_at", now.to_owned()));
    ops.push(Op::remove("error"));
    ops.push(Op::remove("lock_until"));
    ops.push(Op::set_if_missing("type", event.kind.clone()));
    ops.push(Op::set_if_missing("received_at", now.to_owned()));
    ops.push(Op::set_if_missing(GSI1_SK, format!("{now}#{id}")));
    ops
}

fn processed_record(id: &EventId, event: &Event, now: &str) -> Write {
    let ops = vec![
        Op::set("status", state::PROCESSED),
        Op::set(GSI1_PK, keys::events_by_state(state::PROCESSED)),
    ];
    Write::Update {
        key: keys::event(id),
        ops: with_record_basics(ops, id, event, now),
        cond: None,
    }
}

async fn mark_failed(services: &Services, id: &EventId, kind: &str, err: &FulfilError) {
    let now = rfc3339(services.clock.now());
    let ops = vec![
        Op::set("status", state::FAILED),
        Op::set(GSI1_PK, keys::events_by_state(state::FAILED)),
        Op::set("error", err.to_string()),
        Op::add("attempts", 1),
        Op::set_if_missing("type", kind.to_owned()),
        Op::set_if_missing("received_at", now.clone()),
        Op::set_if_missing(GSI1_SK, format!("{now}#{id}")),
    ];
    // Never let a failed retry hide that an earlier attempt succeeded.
    let not_processed = Cond::Or(vec![
        Cond::missing("status"),
        Cond::one_of(
            "status",
            &[state::IN_PROGRESS, state::QUEUED, state::FAILED],
        ),
    ]);
    if let Err(e) = services
        .table
        .update(&keys::event(id), ops, Some(not_processed))
        .await
        && !matches!(e, StoreError::ConditionFailed)
    {
        tracing::warn!(event_id = %id, error = %e, "could not record the failure");
    }
    tracing::error!(event_id = %id, event_type = kind, error = %err, "fulfilment failed");
}

async fn plan(services: &Services, id: &EventId, event: &Event) -> Result<Planned, FulfilError> {
    let now = rfc3339(services.clock.now());
    let record = processed_record(id, event, &now);
    let invalid = |e: serde_json::Error| FulfilError::InvalidEvent(e.to_string());
    match event.kind.as_str() {
        CHECKOUT_COMPLETED | ASYNC_SUCCEEDED => {
            let mut session: CheckoutSession = event.object().map_err(invalid)?;
            resolve_plan_from_line_items(services, &mut session).await?;
            let paid = matches!(
                session.payment_status.as_deref(),
                Some("paid" | "no_payment_required")
            );
            if event.kind == CHECKOUT_COMPLETED && !paid {
                return checkout_transition(services, &session, CheckoutState::Paid, record, &now);
            }
            let paid = session.payment_status.as_deref() == Some("paid")
                || session.amount_total.unwrap_or(0) > 0;
            let reward = match (paid, session_user(&session)) {
                (true, Ok(user)) => crate::referral::reward(services, &user).await?,
                _ => crate::referral::Reward::default(),
            };
            fulfil_checkout(services, &session, record, &now, reward)
        }
        ASYNC_FAILED => {
            let session: CheckoutSession = event.object().map_err(invalid)?;
            checkout_transition(services, &session, CheckoutState::Failed, record, &now)
        }
        CHECKOUT_EXPIRED => {
            let session: CheckoutSession = event.object().map_err(invalid)?;
            checkout_transition(services, &session, CheckoutState::Expired, record, &now)
        }
        SUB_CREATED | SUB_UPDATED | SUB_DELETED => {
            let sub: Subscription = event.object().map_err(invalid)?;
            subscription_change(services, event, &sub, record, &now).await
        }
        INVOICE_PAID | INVOICE_FAILED => {
            let invoice: Invoice = event.object().map_err(invalid)?;
            invoice_change(services, event, &invoice, record, &now).await
        }
        CHARGE_REFUNDED => {
            let charge: Charge = event.object().map_err(invalid)?;
            let pi = charge.payment_intent.as_ref().map(|p| p.id().to_owned());
            refund(
                services,
                pi.as_deref(),
                Refunded::Cumulative(charge.amount_refunded),
                record,
                &now,
            )
            .await
        }
        DISPUTE_CREATED => {
            let dispute: Dispute = event.object().map_err(invalid)?;
            let pi = dispute.payment_intent.as_ref().map(|p| p.id().to_owned());
            refund(
                services,
                pi.as_deref(),
                Refunded::Disputed(dispute.amount),
                record,
                &now,
            )
            .await
        }
        other => Err(FulfilError::Unhandled(other.to_owned())),
    }
}

fn session_id(session: &CheckoutSession) -> Result<SessionId, FulfilError> {
    SessionId::parse(&session.id).map_err(|e| FulfilError::InvalidEvent(e.to_string()))
}

fn session_user(session: &CheckoutSession) -> Result<UserId, FulfilError> {
    session
        .meta("user_id")
        .or(session.client_reference_id.as_deref())
        .and_then(|u| UserId::parse(u).ok())
        .ok_or(FulfilError::NoUser)
}

fn session_plan<'a>(
    services: &'a Services,
    session: &CheckoutSession,
) -> Result<&'a Plan, FulfilError> {
    let named = session.meta("plan_id");
    named
        .and_then(|p| PlanId::parse(p).ok())
        .and_then(|p| services.config.catalog.get(&p))
        .ok_or_else(|| FulfilError::UnknownPlan(named.map(str::to_owned)))
}

/// A Payment Link checkout carries no metadata of ours: the plan is the one whose
/// configured price the session's line items bought (fetched from Stripe, never guessed).
async fn resolve_plan_from_line_items(
    services: &Services,
    session: &mut CheckoutSession,
) -> Result<(), FulfilError> {
    if session.meta("plan_id").is_some() {
        return Ok(());
    }
    let stripe = services
        .stripe
        .as_ref()
        .ok_or(FulfilError::UnknownPlan(None))?;
    let items = stripe
        .checkout_line_items(&session.id)
        .await
        .map_err(|e| FulfilError::Stripe(e.to_string()))?;
    let found = items.iter().find_map(|item| {
        let plan = services.config.catalog.by_price(&item.price.as_ref()?.id)?;
        Some((plan.id.to_string(), item.quantity.unwrap_or(1)))
    });
    let (plan_id, quantity) = found.ok_or(FulfilError::UnknownPlan(None))?;
    let metadata = session.metadata.get_or_insert_with(Default::default);
    metadata.insert("plan_id".into(), plan_id);
    metadata.insert("quantity".into(), quantity.to_string());
    Ok(())
}

fn customer_of(session: &CheckoutSession) -> Option<CustomerId> {
    session
        .customer
        .as_ref()
        .and_then(|c| CustomerId::parse(c.id()).ok())
}

/// Grants a completed, paid checkout's plan: once per session, whichever of
/// `completed` and `async_payment_succeeded` arrives first.
fn fulfil_checkout(
    services: &Services,
    session: &CheckoutSession,
    record: Write,
    now: &str,
    reward: crate::referral::Reward,
) -> Result<Planned, FulfilError> {
    let sid = session_id(session)?;
    let user = session_user(session)?;
    let plan = session_plan(services, session)?;
    let quantity = session
        .meta("quantity")
        .and_then(|q| q.parse::<i64>().ok())
        .filter(|q| *q >= 1)
        .unwrap_or(1);
    let credits = match plan.grant() {
        Grant::Credits(per_unit) => per_unit * quantity,
        Grant::Tier { .. } | Grant::Purchase => 0,
    };

    let mut writes = vec![Write::Update {
        key: keys::checkout(&sid),
        ops: vec![
            Op::set("state", CheckoutState::Fulfilled.as_str()),
            Op::set("fulfilled_at", now.to_owned()),
            Op::set("user_id", user.to_string()),
            Op::set("plan_id", plan.id.to_string()),
            Op::set_if_missing("created_at", now.to_owned()),
        ],
        cond: Some(Cond::missing("fulfilled_at")),
    }];

    let mut profile = vec![
        Op::set_if_missing("created_at", now.to_owned()),
        Op::set("updated_at", now.to_owned()),
    ];
    if credits > 0 {
        profile.push(Op::add("credits", credits));
    }
    let customer = customer_of(session);
    if let Some(c) = &customer {
        profile.push(Op::set("customer_id", c.to_string()));
    }
    profile.extend(reward.buyer_ops);
    writes.push(Write::Update {
        key: keys::profile(&user),
        ops: profile,
        cond: reward.buyer_cond,
    });
    if let Some(referrer) = reward.referrer {
        writes.push(referrer);
    }

    let mut purchase = Item::new();
    purchase.insert("plan_id".into(), plan.id.to_string().into());
    purchase.insert("session_id".into(), sid.to_string().into());
    purchase.insert(
        "amount".into(),
        session
            .amount_total
            .unwrap_or(plan.amount * quantity)
            .into(),
    );
    purchase.insert(
        "currency".into(),
        session
            .currency
            .clone()
            .unwrap_or_else(|| plan.currency.clone())
            .into(),
    );
    purchase.insert("status".into(), "paid".into());
    purchase.insert("at".into(), now.to_owned().into());
    purchase.insert("credits".into(), credits.into());
    purchase.insert("quantity".into(), quantity.into());
    if let Some(pi) = &session.payment_intent {
        purchase.insert("payment_intent".into(), pi.id().to_owned().into());
    }
    writes.push(Write::Put {
        key: keys::purchase(&user, &sid),
        item: purchase,
        cond: None,
    });

    if let Some(c) = &customer {
        writes.push(customer_link(c, &user));
    }
    if let Some(pi) = session
        .payment_intent
        .as_ref()
        .and_then(|p| PaymentIntentId::parse(p.id()).ok())
    {
        let mut link = Item::new();
        link.insert("user_id".into(), user.to_string().into());
        link.insert("session_id".into(), sid.to_string().into());
        writes.push(Write::Put {
            key: keys::payment_intent(&pi),
            item: link,
            cond: None,
        });
    }
    writes.push(record);
    Ok(Planned { writes, guard: 0 })
}

fn customer_link(customer: &CustomerId, user: &UserId) -> Write {
    let mut item = Item::new();
    item.insert("user_id".into(), user.to_string().into());
    Write::Put {
        key: keys::customer(customer),
        item,
        cond: None,
    }
}

/// Moves a checkout's state forward without granting anything; never backwards, and
/// never away from `fulfilled`.
fn checkout_transition(
    _services: &Services,
    session: &CheckoutSession,
    to: CheckoutState,
    record: Write,
    now: &str,
) -> Result<Planned, FulfilError> {
    let sid = session_id(session)?;
    let from: &[&str] = match to {
        CheckoutState::Paid | CheckoutState::Expired => &["processing"],
        CheckoutState::Failed => &["processing", "paid"],
        _ => &[],
    };
    let mut ops = vec![
        Op::set("state", to.as_str()),
        Op::set("updated_at", now.to_owned()),
        Op::set_if_missing("created_at", now.to_owned()),
    ];
    if let Ok(user) = session_user(session) {
        ops.push(Op::set_if_missing("user_id", user.to_string()));
    }
    if let Some(plan) = session.meta("plan_id") {
        ops.push(Op::set_if_missing("plan_id", plan.to_owned()));
    }
    let cond = Cond::And(vec![
        Cond::missing("fulfilled_at"),
        Cond::Or(vec![Cond::missing("state"), Cond::one_of("state", from)]),
    ]);
    Ok(Planned {
        writes: vec![
            Write::Update {
                key: keys::checkout(&sid),
                ops,
                cond: Some(cond),
            },
            record,
        ],
        guard: 0,
    })
}

/// Orders a subscription's states within one second: later lifecycle stages win ties.
fn status_rank(status: &str) -> u8 {
    match status {
        "incomplete" => 0,
        "trialing" => 1,
        "active" => 2,
        "past_due" => 3,
        "unpaid" | "paused" => 4,
        "canceled" | "incomplete_expired" => 5,
        _ => 0,
    }
}

/// A total order on subscription events: creation second, then lifecycle rank, then id, so
/// that any delivery order ends in the same state. Zero-padded so strings compare as numbers.
pub fn subscription_version(event: &Event, status: &str) -> String {
    format!(
        "{:012}:{}:{}",
        event.created.max(0),
        status_rank(status),
        event.id
    )
}

async fn subscription_change(
    services: &Services,
    event: &Event,
    sub: &Subscription,
    record: Write,
    now: &str,
) -> Result<Planned, FulfilError> {
    let sub_id =
        SubscriptionId::parse(&sub.id).map_err(|e| FulfilError::InvalidEvent(e.to_string()))?;
    let customer = CustomerId::parse(sub.customer.id()).ok();
    let user = match sub.meta("user_id").and_then(|u| UserId::parse(u).ok()) {
        Some(user) => user,
        None => {
            let Some(c) = &customer else {
                return Err(FulfilError::NoUser);
            };
            let link = services.table.get(&keys::customer(c)).await?;
            link.as_ref()
                .and_then(|i| i.str("user_id"))
                .and_then(|u| UserId::parse(u).ok())
                .ok_or(FulfilError::NoUser)?
        }
    };
    let catalog = &services.config.catalog;
    let plan = sub
        .meta("plan_id")
        .and_then(|p| PlanId::parse(p).ok())
        .and_then(|p| catalog.get(&p))
        .or_else(|| sub.price_ids().find_map(|price| catalog.by_price(price)));
    let status = if event.kind == SUB_DELETED
        && !matches!(sub.status.as_str(), "canceled" | "incomplete_expired")
    {
        "canceled"
    } else {
        sub.status.as_str()
    };
    let version = subscription_version(event, status);

    let mut ops = vec![
        Op::set("status", status.to_owned()),
        Op::set("version", version.clone()),
        Op::set("cancel_at_period_end", sub.cancel_at_period_end),
        Op::set("updated_at", now.to_owned()),
    ];
    match plan {
        Some(p) => ops.push(Op::set("plan_id", p.id.to_string())),
        None => ops.push(Op::remove("plan_id")),
    }
    match sub.current_period_end() {
        Some(t) => ops.push(Op::set("current_period_end", t)),
        None => ops.push(Op::remove("current_period_end")),
    }
    match sub.trial_end {
        Some(t) => ops.push(Op::set("trial_end", t)),
        None => ops.push(Op::remove("trial_end")),
    }
    let mut writes = vec![Write::Update {
        key: keys::subscription(&user, &sub_id),
        ops,
        cond: Some(Cond::Or(vec![
            Cond::missing("version"),
            Cond::lt("version", version),
        ])),
    }];
    let mut profile = vec![
        Op::set_if_missing("created_at", now.to_owned()),
        Op::set("updated_at", now.to_owned()),
    ];
    if let Some(c) = &customer {
        profile.push(Op::set("customer_id", c.to_string()));
        writes.push(customer_link(c, &user));
    }
    // A first active subscription is a first payment: the referral reward rides along.
    let reward = if status == "active" {
        crate::referral::reward(services, &user).await?
    } else {
        crate::referral::Reward::default()
    };
    profile.extend(reward.buyer_ops);
    writes.push(Write::Update {
        key: keys::profile(&user),
        ops: profile,
        cond: reward.buyer_cond,
    });
    if let Some(referrer) = reward.referrer {
        writes.push(referrer);
    }
    writes.push(record);
    Ok(Planned { writes, guard: 0 })
}

/// The user an invoice bills: our metadata on the subscription, else the customer link.
async fn user_of(
    services: &Services,
    meta_user: Option<&str>,
    customer: Option<&str>,
) -> Result<UserId, FulfilError> {
    if let Some(user) = meta_user.and_then(|u| UserId::parse(u).ok()) {
        return Ok(user);
    }
    let customer = customer
        .and_then(|c| CustomerId::parse(c).ok())
        .ok_or(FulfilError::NoUser)?;
    let link = services.table.get(&keys::customer(&customer)).await?;
    link.as_ref()
        .and_then(|i| i.str("user_id"))
        .and_then(|u| UserId::parse(u).ok())
        .ok_or(FulfilError::NoUser)
}

/// `invoice.paid` grants a subscription plan's per-period credits once per invoice and
/// clears a payment problem; `invoice.payment_failed` shows one, unless that invoice has
/// been paid meanwhile (a late failure changes nothing).
async fn invoice_change(
    services: &Services,
    event: &Event,
    invoice: &Invoice,
    record: Write,
    now: &str,
) -> Result<Planned, FulfilError> {
    let id = InvoiceId::parse(&invoice.id).map_err(|e| FulfilError::InvalidEvent(e.to_string()))?;
    let user = user_of(
        services,
        invoice.meta("user_id"),
        invoice.customer.as_ref().map(|c| c.id()),
    )
    .await?;
    let marker = keys::invoice(&id);
    if event.kind == INVOICE_FAILED {
        let profile = vec![
            Op::set_if_missing("created_at", now.to_owned()),
            Op::set("payment_problem_invoice", id.to_string()),
            Op::set("payment_problem_at", now.to_owned()),
        ];
        let writes = vec![
            Write::Check {
                key: marker,
                cond: Cond::ItemNotExists,
            },
            Write::Update {
                key: keys::profile(&user),
                ops: profile,
                cond: None,
            },
            record,
        ];
        return Ok(Planned { writes, guard: 0 });
    }
    let catalog = &services.config.catalog;
    let plan = invoice
        .meta("plan_id")
        .and_then(|p| PlanId::parse(p).ok())
        .and_then(|p| catalog.get(&p))
        .or_else(|| {
            invoice
                .price_ids()
                .find_map(|price| catalog.by_price(price))
        });
    let credits = match plan.map(|p| p.grant()) {
        Some(Grant::Tier { credits_per_period }) => credits_per_period,
        _ => 0,
    };
    let mut mark = Item::new();
    mark.insert("user_id".into(), user.to_string().into());
    mark.insert("credits".into(), credits.into());
    mark.insert("paid_at".into(), now.to_owned().into());
    let mut profile = vec![
        Op::set_if_missing("created_at", now.to_owned()),
        Op::set("updated_at", now.to_owned()),
        Op::remove("payment_problem_invoice"),
        Op::remove("payment_problem_at"),
    ];
    if credits > 0 {
        profile.push(Op::add("credits", credits));
    }
    let writes = vec![
        Write::Put {
            key: marker,
            item: mark,
            cond: Some(Cond::ItemNotExists),
        },
        Write::Update {
            key: keys::profile(&user),
            ops: profile,
            cond: None,
        },
        record,
    ];
    Ok(Planned { writes, guard: 0 })
}

/// How much of a purchase has been paid back.
enum Refunded {
    /// `charge.refunded` carries the total refunded so far.
    Cumulative(i64),
    /// A dispute takes back the disputed amount, as a refund of it would.
    Disputed(i64),
}

/// Marks the purchase refunded and takes back its credits in proportion to the amount
/// refunded, only the part not taken back before, and never below a zero balance.
async fn refund(
    services: &Services,
    payment_intent: Option<&str>,
    refunded: Refunded,
    record: Write,
    now: &str,
) -> Result<Planned, FulfilError> {
    // A charge we did not sell through checkout (a renewal invoice, a manual charge) has
    // no purchase of ours to refund: the event is recorded and changes nothing.
    let nothing = || {
        Ok(Planned {
            writes: vec![record.clone()],
            guard: 0,
        })
    };
    let Some(pi) = payment_intent.and_then(|p| PaymentIntentId::parse(p).ok()) else {
        tracing::info!("refund of a charge without a payment intent of ours: nothing to take back");
        return nothing();
    };
    let link = services.table.get(&keys::payment_intent(&pi)).await?;
    let Some((user, session)) = link.as_ref().and_then(|l| {
        Some((
            UserId::parse(l.str("user_id")?).ok()?,
            SessionId::parse(l.str("session_id")?).ok()?,
        ))
    }) else {
        tracing::info!(payment_intent = %pi, "refund of a charge we did not sell: nothing to take back");
        return nothing();
    };
    let purchase_key = keys::purchase(&user, &session);
    let purchase = services
        .table
        .get(&purchase_key)
        .await?
        .ok_or(FulfilError::NoPurchase)?;
    let amount = purchase.num("amount").unwrap_or(0).max(1);
    let granted = purchase.num("credits").unwrap_or(0);
    let before = purchase.num("amount_refunded").unwrap_or(0);
    let total = match refunded {
        Refunded::Cumulative(t) => t,
        Refunded::Disputed(d) => before.max(d),
    }
    .clamp(0, amount);
    // Credits to have taken back in all, rounded up: a refund never leaves a fraction.
    let target = (granted * total + amount - 1) / amount;
    let taken_before = purchase.num("credits_taken_back").unwrap_or(0);
    let profile = services.table.get(&keys::profile(&user)).await?;
    let balance = profile.as_ref().and_then(|p| p.num("credits"));
    let take = (target - taken_before)
        .max(0)
        .min(balance.unwrap_or(0).max(0));

    let purchase_ops = vec![
        Op::set("status", "refunded"),
        Op::set("amount_refunded", total),
        Op::set("credits_taken_back", target.max(taken_before)),
        Op::set("refunded_at", now.to_owned()),
    ];
    // The guard: only a larger refunded total than the one applied changes anything.
    let guard = Cond::Or(vec![
        Cond::missing("amount_refunded"),
        Cond::lt("amount_refunded", total),
    ]);
    let mut writes = vec![Write::Update {
        key: purchase_key,
        ops: purchase_ops,
        cond: Some(guard),
    }];
    if take > 0 {
        // Pinned to the balance read, so a concurrent spend is planned again, not overdrawn.
        let pin = match balance {
            Some(b) => Cond::eq("credits", b),
            None => Cond::missing("credits"),
        };
        writes.push(Write::Update {
            key: keys::profile(&user),
            ops: vec![
                Op::add("credits", -take),
                Op::set("updated_at", now.to_owned()),
            ],
            cond: Some(pin),
        });
    }
    writes.push(record);
    Ok(Planned { writes, guard: 0 })
}
