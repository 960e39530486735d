//! The invoice family: `invoice.paid` grants a subscription plan's per-period credits once
//! per invoice and clears a payment problem; `invoice.payment_failed` shows one, unless
//! that invoice has been paid meanwhile (a late failure changes nothing).

use super::{Ctx, FulfilError, Planned};
use crate::domain::catalog::Grant;
use crate::domain::ids::{CustomerId, InvoiceId, PaymentIntentId};
use crate::store::records::invoice as marker;
use crate::store::records::payment_intent::{self, Ledger, Source};
use crate::store::records::profile::ProfileChange;
use crate::stripe::Invoice;
use crate::stripe::event_types::INVOICE_FAILED;

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
    if ctx.event.kind == INVOICE_FAILED {
        let profile = ProfileChange::new(&user, now).payment_problem(&id, now);
        return Ok(ctx.plan(vec![marker::not_paid(&id), profile.write()]));
    }
    let plan = ctx.plan_of(invoice.meta("plan_id"), invoice.price_ids());
    let credits = match plan.map(|p| p.grant()) {
        Some(Grant::Tier { credits_per_period }) => credits_per_period,
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
    let mut writes = vec![marker::paid_once(&id, &paid, now), profile.write()];
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
