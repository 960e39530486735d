//! The invoice family: `invoice.paid` grants a subscription plan's per-period credits once
//! per invoice that starts or renews a period with money paid (`billing_reason`
//! `subscription_create` / `subscription_cycle`, `amount_paid > 0`: a proration or a $0
//! trial invoice grants none) and clears a payment problem; `invoice.payment_failed` and
//! `invoice.payment_action_required` show one (its kind, and the hosted invoice page where
//! the customer pays or confirms), unless that invoice has been paid meanwhile (a late
//! failure changes nothing).
//! With a Stripe client, both also set the subscription to the state Stripe holds now.
//! The plan is the plan of the price the invoice bills (else the subscription's current
//! price): a plan switched in the Billing Portal renews as the new plan.
//!
//! The referred user's first subscription invoice with money paid (`amount_paid` > 0, of
//! any billing reason: a trial's first paid cycle counts, its $0 first invoice does not)
//! earns the referral reward, recorded on that invoice's payment: on its ledger when the
//! event carries the PaymentIntent, and on the invoice's marker, from which a refund or
//! dispute that finds the invoice through Stripe builds the ledger (`fulfil::refund`).
//! Refunds and disputes of the payment that arrived before the invoice wait on its marker
//! and are applied here: the credits they took back are not granted, and a payment taken
//! back in full earns a reward that is taken back at once (a won dispute gives it back).

use super::subscription::{current, fetched_state};
use super::{Ctx, FulfilError, Planned};
use crate::domain::catalog::Grant;
use crate::domain::ids::{CustomerId, InvoiceId, PaymentIntentId, SubscriptionId};
use crate::store::records::invoice as marker;
use crate::store::records::payment_intent::{self, Ledger, Source};
use crate::store::records::profile::{PaymentProblem, ProblemKind, ProfileChange};
use crate::stripe::Invoice;
use crate::stripe::event_types::EventType;
use crate::usecases::referral;

pub(super) async fn changed(
    ctx: &Ctx<'_>,
    event: EventType,
    invoice: &Invoice,
) -> Result<Planned, FulfilError> {
    let now = ctx.now;
    let id = InvoiceId::parse(&invoice.id).map_err(FulfilError::invalid)?;
    let customer = invoice
        .customer
        .as_ref()
        .and_then(|c| CustomerId::parse(c.id()).ok());
    let user = ctx
        .user_of(invoice.meta("user_id"), customer.as_ref())
        .await?;
    let sub_id = invoice
        .subscription_id()
        .and_then(|s| SubscriptionId::parse(s).ok());
    let fetched = match &sub_id {
        Some(s) => current(ctx, s).await?.map(|sub| (s, sub)),
        None => None,
    };
    // After the guard: the subscription as Stripe holds it now.
    let sub_state = match &fetched {
        Some((s, sub)) => fetched_state(ctx, &user, s, sub).await?,
        None => None,
    };
    let problem = match event {
        EventType::InvoicePaymentFailed => Some(ProblemKind::PaymentFailed),
        EventType::InvoiceActionRequired => Some(ProblemKind::ActionRequired),
        _ => None,
    };
    if let Some(kind) = problem {
        let shown = PaymentProblem {
            kind,
            invoice: &id,
            url: invoice.hosted_invoice_url.as_deref(),
        };
        let profile = ProfileChange::new(&user, now).payment_problem(&shown, now);
        let mut writes = vec![marker::not_paid(&id)];
        writes.extend(sub_state);
        writes.push(profile.write());
        return Ok(ctx.plan(writes));
    }
    let table = ctx.services.table.as_ref();
    if marker::load(table, &id).await?.is_some() {
        return Ok(Planned::already_applied());
    }
    // Refunds and disputes of this invoice's payment that came first.
    let pending = marker::pending(table, &id).await?;
    let current_prices = fetched.iter().flat_map(|(_, sub)| sub.price_ids());
    let plan = ctx.plan_of_prices(
        invoice.price_ids().chain(current_prices),
        invoice.meta("plan_id"),
    );
    let credits = match plan.map(|p| p.grant()) {
        Some(Grant::Tier { credits_per_period }) if invoice.pays_a_period() => credits_per_period,
        _ => 0,
    };
    let amount = invoice.amount_paid.unwrap_or(0);
    let early = pending.as_ref().and_then(|p| {
        let pi = p.payment_intent.clone()?;
        let mut l = Ledger::new(user.clone(), Source::Invoice(id.clone()), amount, credits);
        l.refunded = p.refunded;
        l.disputes = p.disputes.clone();
        // What was taken back already is never granted: due back and taken at once.
        let paid = amount.max(1);
        l.credits_due_back = (credits * l.money_taken_back() + paid - 1) / paid;
        l.credits_taken = l.credits_due_back;
        Some((pi, l))
    });
    let granted = credits - early.as_ref().map_or(0, |(_, l)| l.credits_taken);
    let fully_taken_back = early
        .as_ref()
        .is_some_and(|(_, l)| amount > 0 && l.money_taken_back() >= amount);
    let mut profile = ProfileChange::new(&user, now)
        .touched(now)
        .payment_problem_cleared();
    if granted > 0 {
        profile = profile.add_credits(granted);
    }
    // Money paid for a subscription: the referral reward, if this is the referred user's
    // first such payment (the reward's own guard makes it once per account).
    let reward = if amount > 0 && sub_id.is_some() {
        referral::reward(ctx.services, &user).await?
    } else {
        referral::Reward::default()
    };
    let earned = reward.earned();
    let source = referral::invoice_source(id.as_str());
    let (profile, referrer) = if fully_taken_back {
        // Earned and taken back with its money in the same instant: recorded, not given.
        (
            reward.applied_then_taken_back(profile, now, Some(&source)),
            None,
        )
    } else {
        reward.applied_to(profile, now, Some(&source))
    };
    // Kept for rewards earned before the invoice carried them (`subscription:<id>`).
    let started = (invoice.billing_reason.as_deref() == Some("subscription_create"))
        .then(|| invoice.subscription_id().map(str::to_owned))
        .flatten();
    let paid = marker::PaidInvoice {
        user: user.clone(),
        credits,
        amount,
        started,
        referral: earned.clone(),
    };
    let mut writes = vec![marker::paid_once(&id, &paid, now, pending.as_ref())];
    writes.extend(sub_state);
    writes.push(profile.write());
    writes.extend(referrer);
    if let Some((pi, mut ledger)) = early.clone() {
        ledger.referral = earned.clone();
        ledger.referral_taken_back = fully_taken_back && earned.is_some();
        writes.push(payment_intent::settled(&pi, None, &ledger));
    }
    // The period's credits are linked to the payment, so a refund or dispute of it takes
    // them back like a pack's. Where the event does not carry the payment (2025-03-31 and
    // later, unless `payments` is included), the refund finds the invoice through Stripe.
    let early_pi = early.as_ref().map(|(pi, _)| pi.as_str());
    for pi in invoice.payment_intent_ids() {
        if Some(pi) == early_pi {
            continue;
        }
        if let Ok(pi) = PaymentIntentId::parse(pi) {
            let mut ledger =
                Ledger::new(user.clone(), Source::Invoice(id.clone()), amount, credits);
            ledger.referral = earned.clone();
            writes.push(payment_intent::link(&pi, &ledger));
        }
    }
    // The marker is the guard, but a pending fact landing after it was read makes it fail
    // too: plan again (the check above then tells a real repeat).
    Ok(ctx.plan(writes).guard_is_a_pin())
}
