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

use super::subscription::{current, fetched_state};
use super::{Ctx, FulfilError, Planned};
use crate::domain::catalog::Grant;
use crate::domain::ids::{CustomerId, InvoiceId, PaymentIntentId, SubscriptionId};
use crate::store::records::invoice as marker;
use crate::store::records::payment_intent::{self, Ledger, Source};
use crate::store::records::profile::{PaymentProblem, ProblemKind, ProfileChange};
use crate::stripe::Invoice;
use crate::stripe::event_types::{INVOICE_ACTION_REQUIRED, INVOICE_FAILED};

pub(super) async fn changed(ctx: &Ctx<'_>, invoice: &Invoice) -> Result<Planned, FulfilError> {
    let now = ctx.now.as_str();
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
    let problem = match ctx.event.kind.as_str() {
        INVOICE_FAILED => Some(ProblemKind::PaymentFailed),
        INVOICE_ACTION_REQUIRED => Some(ProblemKind::ActionRequired),
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
    let current_prices = fetched.iter().flat_map(|(_, sub)| sub.price_ids());
    let plan = ctx.plan_of_prices(
        invoice.price_ids().chain(current_prices),
        invoice.meta("plan_id"),
    );
    let credits = match plan.map(|p| p.grant()) {
        Some(Grant::Tier { credits_per_period }) if invoice.pays_a_period() => credits_per_period,
        _ => 0,
    };
    let mut profile = ProfileChange::new(&user, now)
        .touched(now)
        .payment_problem_cleared();
    if credits > 0 {
        profile = profile.add_credits(credits);
    }
    let amount = invoice.amount_paid.unwrap_or(0);
    // A subscription's first invoice is the payment that earned a subscription's referral
    // reward: refunded or disputed in full, it takes the reward back.
    let started = (invoice.billing_reason.as_deref() == Some("subscription_create"))
        .then(|| invoice.subscription_id().map(str::to_owned))
        .flatten();
    let paid = marker::PaidInvoice {
        user: user.clone(),
        credits,
        amount,
        started,
    };
    let mut writes = vec![marker::paid_once(&id, &paid, now)];
    writes.extend(sub_state);
    writes.push(profile.write());
    // The period's credits are linked to the payment, so a refund or dispute of it takes
    // them back like a pack's. Where the event does not carry the payment (2025-03-31 and
    // later, unless `payments` is included), the refund finds the invoice through Stripe.
    for pi in invoice.payment_intent_ids() {
        if let Ok(pi) = PaymentIntentId::parse(pi) {
            let ledger = Ledger::new(user.clone(), Source::Invoice(id.clone()), amount, credits);
            writes.push(payment_intent::link(&pi, &ledger));
        }
    }
    Ok(ctx.plan(writes))
}
