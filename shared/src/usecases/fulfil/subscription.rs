//! The subscription family: `customer.subscription.created|updated|deleted` apply the
//! subscription's state behind a version that orders its events, so any delivery order
//! ends in the same state; a first active subscription is a first payment.

use super::{Ctx, FulfilError, Planned};
use crate::domain::ids::{CustomerId, SubscriptionId};
use crate::store::records::customer;
use crate::store::records::profile::ProfileChange;
use crate::store::records::subscription::{self, SubscriptionState};
use crate::stripe::event_types::SUB_DELETED;
use crate::stripe::{Event, Subscription};
use crate::usecases::referral;

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

pub(super) async fn changed(ctx: &Ctx<'_>, sub: &Subscription) -> Result<Planned, FulfilError> {
    let now = ctx.now.as_str();
    let sub_id = SubscriptionId::parse(&sub.id).map_err(FulfilError::invalid)?;
    let customer = CustomerId::parse(sub.customer.id()).ok();
    let user = ctx.user_of(sub.meta("user_id"), customer.as_ref()).await?;
    let plan = ctx.plan_of(sub.meta("plan_id"), sub.price_ids());
    let status = if ctx.event.kind == SUB_DELETED
        && !matches!(sub.status.as_str(), "canceled" | "incomplete_expired")
    {
        "canceled"
    } else {
        sub.status.as_str()
    };
    let state = SubscriptionState {
        status,
        version: subscription_version(ctx.event, status),
        plan: plan.map(|p| &p.id),
        cancel_at_period_end: sub.cancel_at_period_end,
        current_period_end: sub.current_period_end(),
        trial_end: sub.trial_end,
    };
    let mut writes = vec![subscription::apply_if_newer(&user, &sub_id, state, now)];
    let mut profile = ProfileChange::new(&user, now).touched(now);
    if let Some(c) = &customer {
        profile = profile.link_customer(c);
        writes.push(customer::link(c, &user));
    }
    // A first active subscription is a first payment: the referral reward rides along.
    let (profile, referrer) = if status == "active" {
        referral::reward(ctx.services, &user).await?.applied_to(
            profile,
            now,
            Some(&referral::subscription_source(sub_id.as_str())),
        )
    } else {
        (profile, None)
    };
    writes.push(profile.write());
    writes.extend(referrer);
    Ok(ctx.plan(writes))
}
