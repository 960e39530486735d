//! The PaymentIntent family: `payment_intent.succeeded` grants a credit pack bought
//! without Checkout (Stripe Elements) once per PaymentIntent; `payment_intent.payment_failed`
//! records the failure on the purchase and grants nothing.
//!
//! A PaymentIntent that Checkout created is the same payment as its session: both paths
//! share the PaymentIntent's ledger as their guard ([`payment_intent::fulfilled`],
//! [`payment_intent::claimed`]), so whichever event comes first grants, once in all, and
//! its purchase is the one refunds and disputes find through that ledger.

use super::{Ctx, FulfilError, Planned};
use crate::domain::catalog::{Grant, Mode, Plan};
use crate::domain::ids::{PaymentIntentId, PurchaseId, UserId};
use crate::store::records::payment_intent::{self, Ledger, Source};
use crate::store::records::profile::ProfileChange;
use crate::store::records::purchase::{self, Paid};
use crate::stripe::PaymentIntent;
use crate::usecases::referral;
use chrono::{DateTime, Utc};

/// What our metadata says was bought, when the PaymentIntent is one we can fulfil.
struct Bought<'a> {
    pi: PaymentIntentId,
    user: UserId,
    plan: &'a Plan,
    quantity: i64,
}

/// The PaymentIntent's buyer and one-time plan from our metadata; `None` for one that is
/// not ours to fulfil (an invoice's, a Payment Link's, one without our metadata).
fn bought<'a>(ctx: &'a Ctx<'_>, intent: &PaymentIntent) -> Result<Option<Bought<'a>>, FulfilError> {
    let pi = PaymentIntentId::parse(&intent.id).map_err(FulfilError::invalid)?;
    let Some(user) = intent.meta("user_id").and_then(|u| UserId::parse(u).ok()) else {
        return Ok(None);
    };
    let named = intent.meta("plan_id");
    let Some(plan) = ctx.plan_of(named, std::iter::empty()) else {
        return match named {
            Some(name) => Err(FulfilError::UnknownPlan(name.to_owned())),
            None => Ok(None),
        };
    };
    if plan.mode != Mode::Payment {
        return Ok(None);
    }
    let quantity = intent
        .meta("quantity")
        .and_then(|q| q.parse::<i64>().ok())
        .filter(|q| *q >= 1)
        .unwrap_or(1);
    Ok(Some(Bought {
        pi,
        user,
        plan,
        quantity,
    }))
}

fn paid_of(b: &Bought<'_>, intent: &PaymentIntent, credits: i64, at: DateTime<Utc>) -> Paid {
    Paid {
        plan_id: b.plan.id.to_string(),
        amount: intent
            .amount_received
            .filter(|a| *a > 0)
            .unwrap_or(intent.amount),
        currency: intent
            .currency
            .clone()
            .unwrap_or_else(|| b.plan.currency.clone()),
        credits,
        quantity: b.quantity,
        payment_intent: Some(b.pi.to_string()),
        at,
    }
}

/// `payment_intent.succeeded`: the plan's credits, the purchase (keyed by the
/// PaymentIntent) and a first payment's referral reward, behind the shared guard.
pub(super) async fn succeeded(
    ctx: &Ctx<'_>,
    intent: &PaymentIntent,
) -> Result<Planned, FulfilError> {
    let Some(b) = bought(ctx, intent)? else {
        tracing::info!(payment_intent = %intent.id, "not a purchase of ours: nothing to fulfil");
        return Ok(ctx.plan(vec![]));
    };
    let now = ctx.now;
    let credits = match b.plan.grant() {
        Grant::Credits(per_unit) => per_unit * b.quantity,
        Grant::Tier { .. } | Grant::Purchase => 0,
    };
    // A pack closes referral claims but earns no reward (a subscription's first paid
    // invoice does).
    let reward = referral::Reward::first_payment_only();
    let bought = PurchaseId::from(&b.pi);
    let paid = paid_of(&b, intent, credits, now);
    let mut ledger = Ledger::new(
        b.user.clone(),
        Source::Checkout(bought.clone()),
        paid.amount,
        credits,
    );
    ledger.referral = reward.earned();
    let mut writes = vec![payment_intent::fulfilled(&b.pi, &ledger, now)];
    let mut profile = ProfileChange::new(&b.user, now).touched(now);
    if credits > 0 {
        profile = profile.add_credits(credits);
    }
    let (profile, referrer) = reward.applied_to(profile, now, None);
    writes.push(profile.write());
    writes.extend(referrer);
    writes.push(purchase::paid(&b.user, &bought, &paid));
    Ok(ctx.plan(writes))
}

/// `payment_intent.payment_failed`: the purchase our purchases route started shows
/// `failed`. A Checkout's PaymentIntent is left to its session (Checkout lets the buyer
/// try again), and a failure never overwrites a success.
pub(super) async fn failed(ctx: &Ctx<'_>, intent: &PaymentIntent) -> Result<Planned, FulfilError> {
    let Some(b) = bought(ctx, intent)? else {
        return Ok(ctx.plan(vec![]));
    };
    let found = payment_intent::fulfilment(ctx.services.table.as_ref(), &b.pi).await?;
    let ours = found.is_some_and(|f| {
        !f.fulfilled && f.purchase.as_ref().map(PurchaseId::as_str) == Some(b.pi.as_str())
    });
    if !ours {
        tracing::info!(payment_intent = %b.pi, "a failure of a payment we did not start or already fulfilled");
        return Ok(ctx.plan(vec![]));
    }
    let paid = paid_of(&b, intent, 0, ctx.now);
    let write = purchase::failed(&b.user, &PurchaseId::from(&b.pi), &paid);
    Ok(ctx.plan(vec![write]))
}
