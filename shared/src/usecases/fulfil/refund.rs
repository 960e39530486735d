//! The refund family: `charge.refunded` and `charge.dispute.created`, `.funds_withdrawn`,
//! `.closed` and `.funds_reinstated` settle one payment's ledger
//! ([`payment_intent::Ledger`]): refunds and disputes of one charge add up, never beyond
//! what was paid. The credits the payment brought are held in proportion to the money the
//! merchant still keeps: what is taken back beyond that is taken from the balance (never
//! below zero), and what a won dispute gives back is returned. An inquiry (`warning_*`)
//! withdraws no money and takes nothing. A payment fully taken back also takes back the
//! referral reward it earned (a first checkout, or a subscription's first invoice), from
//! both sides.
//!
//! A payment we do not know yet may simply not be fulfilled yet (a dispute carries no
//! customer, so it runs in its own FIFO group and can overtake its checkout): when Stripe
//! says the payment is ours, the event fails and its message comes back later.

use super::{Ctx, FulfilError, Planned};
use crate::domain::ids::{InvoiceId, PaymentIntentId, UserId};
use crate::store::Write;
use crate::store::records::payment_intent::{self, DisputeState, Ledger, Source};
use crate::store::records::profile::{self, ProfileChange};
use crate::store::records::{invoice, purchase};
use crate::stripe::event_types::EventType;
use crate::stripe::{Charge, Dispute, Expandable};
use crate::usecases::referral;

/// What one event says about a payment.
enum Fact {
    /// `charge.refunded` carries the total refunded so far.
    Refunded(i64),
    /// A dispute's new state.
    Disputed(String, DisputeState),
}

pub(super) async fn refunded(ctx: &Ctx<'_>, charge: &Charge) -> Result<Planned, FulfilError> {
    let pi = charge.payment_intent.as_ref().map(Expandable::id);
    let invoice = charge.invoice.as_ref().map(Expandable::id);
    settle(ctx, pi, invoice, Fact::Refunded(charge.amount_refunded)).await
}

pub(super) async fn disputed(
    ctx: &Ctx<'_>,
    kind: EventType,
    dispute: &Dispute,
) -> Result<Planned, FulfilError> {
    let pi = dispute.payment_intent.as_ref().map(Expandable::id);
    let state = dispute_state(kind, dispute);
    settle(ctx, pi, None, Fact::Disputed(dispute.id.clone(), state)).await
}

/// A dispute's effect on the money, by event and status, ranked by its lifecycle: an
/// inquiry (`warning_*`, rank 1) withdraws nothing; a chargeback, or an inquiry escalated
/// into one (`funds_withdrawn`), withholds the disputed amount (rank 2); once closed or
/// reinstated (rank 3) only a lost dispute keeps it (a `charge_refunded` close leaves the
/// money to the refund's own event).
fn dispute_state(kind: EventType, d: &Dispute) -> DisputeState {
    let inquiry = d.status.starts_with("warning_");
    let (rank, withheld) = match (kind, d.status.as_str()) {
        (EventType::DisputeCreated, _) if inquiry => (1, 0),
        (EventType::DisputeCreated | EventType::DisputeFundsWithdrawn, _) => (2, d.amount),
        (EventType::DisputeClosed, "lost") => (3, d.amount),
        (EventType::DisputeClosed | EventType::DisputeFundsReinstated, _) => (3, 0),
        _ => (0, 0),
    };
    DisputeState {
        rank,
        withheld: withheld.max(0),
    }
}

/// The ledger after `fact`, or `None` when the fact is not new (applied before, or older
/// than what was applied).
fn with_fact(ledger: &Ledger, fact: &Fact) -> Option<Ledger> {
    let mut next = ledger.clone();
    match fact {
        Fact::Refunded(total) => {
            if *total <= ledger.refunded {
                return None;
            }
            next.refunded = *total;
        }
        Fact::Disputed(id, state) => {
            if ledger
                .disputes
                .get(id)
                .is_some_and(|d| d.rank >= state.rank)
            {
                return None;
            }
            next.disputes.insert(id.clone(), *state);
        }
    }
    Some(next)
}

async fn settle(
    ctx: &Ctx<'_>,
    payment_intent: Option<&str>,
    charge_invoice: Option<&str>,
    fact: Fact,
) -> Result<Planned, FulfilError> {
    let table = ctx.services.table.as_ref();
    let Some(pi) = payment_intent.and_then(|p| PaymentIntentId::parse(p).ok()) else {
        tracing::info!("a charge without a payment intent: nothing of ours to take back");
        return Ok(ctx.plan(vec![]));
    };
    let stored = payment_intent::load(table, &pi).await?;
    let (before, ledger) = match stored {
        Some(l) if l.lacks_amounts() => (Some(l.clone()), with_purchase_amounts(ctx, l).await?),
        Some(l) => (Some(l.clone()), l),
        None => match unlinked(ctx, &pi, charge_invoice).await? {
            Unlinked::Found(l) => (None, l),
            Unlinked::BeforeItsInvoice(invoice) => return pending(ctx, &pi, &invoice, &fact).await,
            Unlinked::NotOurs => {
                tracing::info!(payment_intent = %pi, "a payment we did not sell: nothing to take back");
                return Ok(ctx.plan(vec![]));
            }
        },
    };
    let Some(mut after) = with_fact(&ledger, &fact) else {
        return Ok(Planned::already_applied());
    };

    // Credits due back in all, rounded up: a refund never leaves a fraction.
    let amount = ledger.amount.max(1);
    let due = (ledger.credits * after.money_taken_back() + amount - 1) / amount;
    let read = profile::load(table, &ledger.user).await?;
    let balance = read.as_ref().map_or(0, |p| p.balance()).max(0);
    let mut writes: Vec<Write> = Vec::new();
    let delta = due - ledger.credits_due_back;
    let mut change = ProfileChange::existing(&ledger.user).touched(ctx.now);
    let mut changed = false;
    if delta > 0 {
        let take = delta.min(balance);
        after.credits_taken = ledger.credits_taken + take;
        if take > 0 {
            change = change.take_credits(take, &read);
            changed = true;
        }
    } else if delta < 0 {
        // Only what was actually taken comes back: spent credits were never taken.
        let give = (-delta).min(ledger.credits_taken);
        after.credits_taken = ledger.credits_taken - give;
        if give > 0 {
            change = change.add_credits(give);
            changed = true;
        }
    }
    after.credits_due_back = due;

    // The referral reward goes with a payment fully taken back, and comes back with it.
    let fully = after.money_taken_back() >= ledger.amount;
    let earned = match (&ledger.referral, &ledger.source) {
        (Some(referrer), _) => Some(referrer.clone()),
        (None, Source::Invoice(invoice)) => subscription_reward(ctx, &ledger.user, invoice).await?,
        (None, Source::Checkout(_)) => None,
    };
    let referral_move = match (&earned, fully, ledger.referral_taken_back) {
        (Some(referrer), true, false) => Some((referrer.as_ref(), true)),
        (Some(referrer), false, true) => Some((referrer.as_ref(), false)),
        _ => None,
    };
    if let Some((_, take)) = referral_move {
        after.referral_taken_back = take;
    }
    writes.push(payment_intent::settled(&pi, before.as_ref(), &after));
    match referral_move {
        Some((referrer, take)) => {
            let (buyer, theirs) =
                referral::taken_back(ctx.services, referrer, change, &ledger.user, take).await?;
            writes.push(buyer.write());
            writes.extend(theirs);
        }
        None if changed => writes.push(change.write()),
        None => {}
    }
    if let Source::Checkout(session) = &ledger.source {
        let taken = after.money_taken_back();
        writes.push(purchase::refunded(
            &ledger.user,
            session,
            taken,
            after.credits_due_back,
            ctx.now,
        ));
    }
    Ok(ctx.plan(writes).guard_is_a_pin())
}

/// The referral reward a subscription's first invoice earned, if this invoice is that one:
/// the buyer's reward names the subscription the invoice started.
async fn subscription_reward(
    ctx: &Ctx<'_>,
    buyer: &UserId,
    invoice: &InvoiceId,
) -> Result<Option<Option<UserId>>, FulfilError> {
    let table = ctx.services.table.as_ref();
    let Some(started) = invoice::load(table, invoice).await?.and_then(|i| i.started) else {
        return Ok(None);
    };
    let Some(p) = profile::load(table, buyer).await? else {
        return Ok(None);
    };
    if p.referral_reward_source.as_deref() != Some(&referral::subscription_source(&started)) {
        return Ok(None);
    }
    Ok(Some(
        p.referrer_user_id
            .as_deref()
            .and_then(|u| UserId::parse(u).ok()),
    ))
}

/// A ledger written before ledgers held amounts: its purchase has them.
async fn with_purchase_amounts(ctx: &Ctx<'_>, mut l: Ledger) -> Result<Ledger, FulfilError> {
    if let Source::Checkout(session) = &l.source {
        let bought = purchase::load(ctx.services.table.as_ref(), &l.user, session)
            .await?
            .ok_or(FulfilError::NoPurchase)?;
        l.amount = bought.amount;
        l.credits = bought.credits;
        l.refunded = l.refunded.max(bought.amount_refunded);
        l.credits_due_back = l.credits_due_back.max(bought.credits_taken_back);
        l.credits_taken = l.credits_taken.max(bought.credits_taken_back);
    }
    Ok(l)
}

/// What a payment with no ledger is.
enum Unlinked {
    /// A subscription invoice's payment whose invoice was paid here: its ledger, new.
    Found(Ledger),
    /// A subscription invoice's payment whose `invoice.paid` has not arrived yet.
    BeforeItsInvoice(InvoiceId),
    /// Not a payment of ours.
    NotOurs,
}

/// Keeps `fact` on the invoice's marker until `invoice.paid` applies it with the ledger
/// (`records::invoice::pending_fact`); pinned, so if the invoice is paid meanwhile, the
/// event plans again and settles the ledger.
async fn pending(
    ctx: &Ctx<'_>,
    pi: &PaymentIntentId,
    invoice_id: &InvoiceId,
    fact: &Fact,
) -> Result<Planned, FulfilError> {
    let read = invoice::pending(ctx.services.table.as_ref(), invoice_id)
        .await?
        .unwrap_or_default();
    let write = match fact {
        Fact::Refunded(total) if *total > read.refunded => {
            invoice::pending_fact(invoice_id, pi, Some(*total), None)
        }
        Fact::Disputed(id, state) if read.disputes.get(id).is_none_or(|d| d.rank < state.rank) => {
            invoice::pending_fact(invoice_id, pi, None, Some((id, *state)))
        }
        _ => return Ok(Planned::already_applied()),
    };
    tracing::info!(payment_intent = %pi, invoice = %invoice_id, "a refund or dispute before its invoice: kept for it");
    Ok(ctx.plan(vec![write]).guard_is_a_pin())
}

/// A payment with no ledger yet. A subscription invoice's payment is found through its
/// invoice (the charge's `invoice` before API 2025-03-31; Stripe's InvoicePayment objects
/// since, which the port's `invoice_of_payment` reads); its ledger is created
/// from the invoice's grant; before the invoice is paid here, the fact waits on its marker.
/// A checkout's payment Stripe says is ours but that is not recorded yet fails, so the
/// event is retried after its fulfilment.
async fn unlinked(
    ctx: &Ctx<'_>,
    pi: &PaymentIntentId,
    charge_invoice: Option<&str>,
) -> Result<Unlinked, FulfilError> {
    let stripe = ctx.services.stripe.as_ref();
    let mut invoice_id = charge_invoice.map(str::to_owned);
    if invoice_id.is_none()
        && let Some(stripe) = stripe
    {
        invoice_id = stripe
            .invoice_of_payment(pi.as_str())
            .await
            .map_err(FulfilError::Stripe)?;
    }
    if let Some(id) = invoice_id.as_deref().and_then(|i| InvoiceId::parse(i).ok()) {
        let table = ctx.services.table.as_ref();
        return match invoice::load(table, &id).await? {
            Some(paid) => {
                let mut ledger =
                    Ledger::new(paid.user, Source::Invoice(id), paid.amount, paid.credits);
                ledger.referral = paid.referral;
                Ok(Unlinked::Found(ledger))
            }
            None => Ok(Unlinked::BeforeItsInvoice(id)),
        };
    }
    // Our checkouts and purchases put the owner on the PaymentIntent.
    if let Some(stripe) = stripe {
        let found = stripe
            .retrieve_payment_intent(pi.as_str())
            .await
            .map_err(FulfilError::Stripe)?;
        if found.meta("user_id").is_some() {
            return Err(FulfilError::NotYetFulfilled(pi.to_string()));
        }
    }
    Ok(Unlinked::NotOurs)
}
