//! The refund family: `charge.refunded` and `charge.dispute.created` take back a purchase's
//! credits in proportion to the amount refunded or disputed, only the part not taken back
//! before, and never below a zero balance.

use super::{Ctx, FulfilError, Planned};
use crate::domain::ids::PaymentIntentId;
use crate::store::records::profile::{self, ProfileChange};
use crate::store::records::{payment_intent, purchase};
use crate::stripe::{Charge, Dispute};

/// How much of a purchase has been paid back.
enum Refunded {
    /// `charge.refunded` carries the total refunded so far.
    Cumulative(i64),
    /// A dispute takes back the disputed amount, as a refund of it would.
    Disputed(i64),
}

pub(super) async fn refunded(ctx: &Ctx<'_>, charge: &Charge) -> Result<Planned, FulfilError> {
    let pi = charge.payment_intent.as_ref().map(|p| p.id());
    take_back(ctx, pi, Refunded::Cumulative(charge.amount_refunded)).await
}

pub(super) async fn disputed(ctx: &Ctx<'_>, dispute: &Dispute) -> Result<Planned, FulfilError> {
    let pi = dispute.payment_intent.as_ref().map(|p| p.id());
    take_back(ctx, pi, Refunded::Disputed(dispute.amount)).await
}

async fn take_back(
    ctx: &Ctx<'_>,
    payment_intent: Option<&str>,
    refunded: Refunded,
) -> Result<Planned, FulfilError> {
    let table = ctx.services.table.as_ref();
    // A charge we did not sell through checkout (a renewal invoice, a manual charge) has
    // no purchase of ours to refund: the event is recorded and changes nothing.
    let Some(pi) = payment_intent.and_then(|p| PaymentIntentId::parse(p).ok()) else {
        tracing::info!("refund of a charge without a payment intent of ours: nothing to take back");
        return Ok(ctx.plan(vec![]));
    };
    let Some((user, session)) = payment_intent::purchase_of(table, &pi).await? else {
        tracing::info!(payment_intent = %pi, "refund of a charge we did not sell: nothing to take back");
        return Ok(ctx.plan(vec![]));
    };
    let bought = purchase::load(table, &user, &session)
        .await?
        .ok_or(FulfilError::NoPurchase)?;
    let amount = bought.amount.max(1);
    let before = bought.amount_refunded;
    let total = match refunded {
        Refunded::Cumulative(t) => t,
        Refunded::Disputed(d) => before.max(d),
    }
    .clamp(0, amount);
    // Credits to have taken back in all, rounded up: a refund never leaves a fraction.
    let target = (bought.credits * total + amount - 1) / amount;
    let taken_before = bought.credits_taken_back;
    let read = profile::load(table, &user).await?;
    let balance = read.as_ref().and_then(|p| p.credits);
    let take = (target - taken_before)
        .max(0)
        .min(balance.unwrap_or(0).max(0));

    let mut writes = vec![purchase::refunded(
        &user,
        &session,
        total,
        target.max(taken_before),
        &ctx.now,
    )];
    if take > 0 {
        let change = ProfileChange::existing(&user)
            .take_credits(take, &read)
            .touched(&ctx.now);
        writes.push(change.write());
    }
    Ok(ctx.plan(writes))
}
