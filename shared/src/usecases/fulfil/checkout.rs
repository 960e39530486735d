//! The checkout family: a paid session grants its plan once, whichever of `completed` and
//! `async_payment_succeeded` arrives first; an unpaid, failed or expired one only moves the
//! return page's state.
//!
//! Against bad faith (docs/money-rules.md): a session names its account by our metadata
//! only when our checkout route created it (no `payment_link`); a Payment Link's session
//! names one only by a reference the stack signed ([`crate::domain::reference`]). A session
//! that names no account, or a credit pack or one-time purchase completed with no money
//! paid (a 100%-off code), grants nothing and links nothing: its event is recorded
//! `unclaimed`, for an operator to grant or refund. A checkout never earns a referral
//! reward (that is a subscription's first paid invoice's); it closes referral claims when
//! money was paid.

use super::{Ctx, FulfilError, Planned};
use crate::domain::catalog::{Grant, Mode, Plan};
use crate::domain::checkout_state::CheckoutState;
use crate::domain::ids::{CustomerId, PaymentIntentId, PurchaseId, SessionId, UserId};
use crate::domain::reference;
use crate::store::records::payment_intent::{self, Ledger, Source};
use crate::store::records::profile::ProfileChange;
use crate::store::records::purchase::{self, Paid};
use crate::store::records::{checkout, customer};
use crate::stripe::CheckoutSession;
use crate::stripe::event_types::EventType;
use crate::usecases::referral;

fn session_id(session: &CheckoutSession) -> Result<SessionId, FulfilError> {
    SessionId::parse(&session.id).map_err(FulfilError::invalid)
}

/// Whether the buyer, not our checkout route, made the session: a Payment Link's session
/// has its `payment_link` set, and takes its metadata from the link, not from us.
fn from_a_payment_link(session: &CheckoutSession) -> bool {
    session.payment_link.is_some()
}

/// The account a session names: our metadata's user on a session our checkout route
/// created, else the one a reference signed by this stack names; `None` for anything else
/// (a forged or altered reference, one handed out before references were signed).
fn session_user(ctx: &Ctx<'_>, session: &CheckoutSession) -> Option<UserId> {
    let named = session
        .meta("user_id")
        .filter(|_| !from_a_payment_link(session))
        .and_then(|u| UserId::parse(u).ok());
    named.or_else(|| {
        let raw = session.client_reference_id.as_deref()?;
        reference::verify(raw, &ctx.services.config.reference_secrets)
    })
}

/// No money changed hands: a 100%-off code, or a $0 total.
fn nothing_paid(session: &CheckoutSession) -> bool {
    session.payment_status.as_deref() == Some("no_payment_required")
        || session.amount_total == Some(0)
}

fn customer_of(session: &CheckoutSession) -> Option<CustomerId> {
    session
        .customer
        .as_ref()
        .and_then(|c| CustomerId::parse(c.id()).ok())
}

/// `completed` or `async_payment_succeeded`.
pub(super) async fn completed(
    ctx: &Ctx<'_>,
    kind: EventType,
    mut session: CheckoutSession,
) -> Result<Planned, FulfilError> {
    let settled = matches!(
        session.payment_status.as_deref(),
        Some("paid" | "no_payment_required")
    );
    let waiting = kind == EventType::CheckoutCompleted && !settled;
    let Some(user) = session_user(ctx, &session) else {
        if waiting {
            return moved(ctx, &session, None, CheckoutState::Paid);
        }
        tracing::warn!(session = %session.id, "a completed session that names no account of ours");
        return Ok(ctx.unclaimed(&format!(
            "unclaimed payment: session {} names no account this stack issued a reference \
             to (a forged, altered or pre-signing client_reference_id); nothing was granted \
             or linked; grant it with POST /api/billing/admin/grant or refund it",
            session.id
        )));
    };
    resolve_plan_from_line_items(ctx, &mut session).await?;
    if waiting {
        return moved(ctx, &session, Some(&user), CheckoutState::Paid);
    }
    if intent_fulfilled(ctx, &session).await? {
        // `payment_intent.succeeded` came first and granted the purchase: the session
        // only shows as fulfilled (one grant in all, one purchase record), and links the
        // customer Checkout created, as a grant would, for the portal and later checkouts.
        let sid = session_id(&session)?;
        let plan = session_plan(ctx, &session)?;
        let mut writes = vec![checkout::fulfilled(&sid, &user, &plan.id, ctx.now)];
        if let Some(c) = customer_of(&session) {
            let profile = ProfileChange::new(&user, ctx.now).link_customer(&c);
            writes.push(profile.touched(ctx.now).write());
            writes.push(customer::link(&c, &user));
        }
        return Ok(ctx.plan(writes));
    }
    let plan = session_plan(ctx, &session)?;
    if plan.mode == Mode::Payment && nothing_paid(&session) {
        tracing::warn!(session = %session.id, plan = %plan.id, "a purchase completed with no money paid");
        return Ok(ctx.unclaimed(&format!(
            "unclaimed payment: session {} bought {} for no money (a 100%-off code); credit \
             packs and one-time purchases are granted only for money paid; grant it with \
             POST /api/billing/admin/grant if the code was meant to give it",
            session.id, plan.id
        )));
    }
    // Money paid closes referral claims; only a subscription's first paid invoice rewards.
    let stamp = if nothing_paid(&session) {
        referral::Reward::default()
    } else {
        referral::Reward::first_payment_only()
    };
    fulfil(ctx, &session, &user, stamp)
}

/// Whether the session's PaymentIntent was fulfilled by its own event already.
async fn intent_fulfilled(ctx: &Ctx<'_>, session: &CheckoutSession) -> Result<bool, FulfilError> {
    let Some(pi) = session
        .payment_intent
        .as_ref()
        .and_then(|p| PaymentIntentId::parse(p.id()).ok())
    else {
        return Ok(false);
    };
    let found = payment_intent::fulfilment(ctx.services.table.as_ref(), &pi).await?;
    Ok(found.is_some_and(|f| {
        f.fulfilled && f.purchase.as_ref().map(PurchaseId::as_str) == Some(pi.as_str())
    }))
}

/// `async_payment_failed` or `expired`.
pub(super) fn ended(
    ctx: &Ctx<'_>,
    kind: EventType,
    session: &CheckoutSession,
) -> Result<Planned, FulfilError> {
    let to = if kind == EventType::CheckoutAsyncFailed {
        CheckoutState::Failed
    } else {
        CheckoutState::Expired
    };
    moved(ctx, session, session_user(ctx, session).as_ref(), to)
}

/// A Payment Link checkout carries no metadata of ours: the plan is the one whose
/// configured price the session's line items bought (fetched from Stripe, never guessed).
async fn resolve_plan_from_line_items(
    ctx: &Ctx<'_>,
    session: &mut CheckoutSession,
) -> Result<(), FulfilError> {
    if session.meta("plan_id").is_some() {
        return Ok(());
    }
    let stripe = ctx
        .services
        .stripe
        .as_ref()
        .ok_or_else(|| FulfilError::UnknownPlan("none; Stripe is not configured".into()))?;
    let items = stripe
        .checkout_line_items(&session.id)
        .await
        .map_err(FulfilError::Stripe)?;
    let catalog = &ctx.services.config.catalog;
    let found = items.iter().find_map(|item| {
        let plan = catalog.by_price(&item.price.as_ref()?.id)?;
        Some((plan.id.to_string(), item.quantity.unwrap_or(1)))
    });
    let (plan_id, quantity) = found.ok_or_else(|| {
        FulfilError::UnknownPlan("none; no line item has a configured price".into())
    })?;
    let metadata = session.metadata.get_or_insert_with(Default::default);
    metadata.insert("plan_id".into(), plan_id);
    metadata.insert("quantity".into(), quantity.to_string());
    Ok(())
}

fn session_plan<'a>(ctx: &'a Ctx<'_>, session: &CheckoutSession) -> Result<&'a Plan, FulfilError> {
    let named = session.meta("plan_id");
    ctx.plan_of(named, std::iter::empty())
        .ok_or_else(|| FulfilError::UnknownPlan(named.unwrap_or("none").to_owned()))
}

/// Grants a paid checkout's plan, records the purchase and links the customer and the
/// payment intent (so refunds and disputes find the purchase), with the referral reward
/// of a first payment, behind the checkout's once-only guard.
fn fulfil(
    ctx: &Ctx<'_>,
    session: &CheckoutSession,
    user: &UserId,
    reward: referral::Reward,
) -> Result<Planned, FulfilError> {
    let now = ctx.now;
    let sid = session_id(session)?;
    let user = user.clone();
    let plan = session_plan(ctx, session)?;
    let quantity = session
        .meta("quantity")
        .and_then(|q| q.parse::<i64>().ok())
        .filter(|q| *q >= 1)
        .unwrap_or(1);
    let credits = match plan.grant() {
        Grant::Credits(per_unit) => per_unit * quantity,
        Grant::Tier { .. } | Grant::Purchase => 0,
    };
    let customer = customer_of(session);
    let pi = session.payment_intent.as_ref().map(|p| p.id().to_owned());

    let mut writes = vec![checkout::fulfilled(&sid, &user, &plan.id, now)];
    let mut profile = ProfileChange::new(&user, now).touched(now);
    if credits > 0 {
        profile = profile.add_credits(credits);
    }
    if let Some(c) = &customer {
        profile = profile.link_customer(c);
    }
    let earned = reward.earned();
    let (profile, referrer) = reward.applied_to(profile, now, None);
    writes.push(profile.write());
    writes.extend(referrer);
    let paid = Paid {
        plan_id: plan.id.to_string(),
        amount: session.amount_total.unwrap_or(plan.amount * quantity),
        currency: session
            .currency
            .clone()
            .unwrap_or_else(|| plan.currency.clone()),
        credits,
        quantity,
        payment_intent: pi.clone(),
        at: now,
    };
    let bought = PurchaseId::from(&sid);
    writes.push(purchase::paid(&user, &bought, &paid));
    if let Some(c) = &customer {
        writes.push(customer::link(c, &user));
    }
    if let Some(pi) = pi.as_deref().and_then(|p| PaymentIntentId::parse(p).ok()) {
        let mut ledger = Ledger::new(user.clone(), Source::Checkout(bought), paid.amount, credits);
        ledger.referral = earned;
        // Claims the PaymentIntent too; if its own event fulfilled it meanwhile, this
        // fails and the plan is made again (and then grants nothing).
        writes.push(payment_intent::claimed(&pi, &ledger, now));
    }
    Ok(ctx.plan(writes))
}

/// Moves a checkout's state forward without granting anything; never backwards, and
/// never away from `fulfilled`.
fn moved(
    ctx: &Ctx<'_>,
    session: &CheckoutSession,
    user: Option<&UserId>,
    to: CheckoutState,
) -> Result<Planned, FulfilError> {
    let sid = session_id(session)?;
    let write = checkout::moved(&sid, to, user, session.meta("plan_id"), ctx.now);
    Ok(ctx.plan(vec![write]))
}
