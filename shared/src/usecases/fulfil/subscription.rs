//! The subscription family: `customer.subscription.created|updated|deleted|paused|resumed`
//! set the account's subscription to the state Stripe holds now, so any delivery order
//! ends in Stripe's current state. A status is no payment: `active` earns no referral
//! reward (a 100%-off first month is `active` at $0); the first paid invoice does.
//!
//! With a Stripe client the worker fetches the subscription as Stripe holds it now (the
//! pinned API version) and applies that: `created` has one-second resolution and the
//! lifecycle does not only move forward (`past_due → active`, `paused → active`), so no
//! order on events can tell which of two same-second updates is the newer. Stripe
//! unreachable: the event fails and is retried, never applied from its older copy. Without
//! a Stripe key (the local demo) the event's own object is applied behind a version that
//! orders events by `(created, lifecycle rank, id)`.

use super::{Ctx, FulfilError, Planned};
use crate::domain::entitlement::SubscriptionStatus;
use crate::domain::ids::{CustomerId, SubscriptionId, UserId};
use crate::store::Write;
use crate::store::records::customer;
use crate::store::records::profile::ProfileChange;
use crate::store::records::subscription::{self, SubscriptionState};
use crate::stripe::event_types::EventType;
use crate::stripe::{Event, Subscription};

/// Orders a subscription's states within one second: later lifecycle stages win ties.
/// A status we do not know ranks with `incomplete`, below every known stage.
fn status_rank(status: SubscriptionStatus) -> u8 {
    match status {
        SubscriptionStatus::Incomplete | SubscriptionStatus::Unrecognized => 0,
        SubscriptionStatus::Trialing => 1,
        SubscriptionStatus::Active => 2,
        SubscriptionStatus::PastDue => 3,
        SubscriptionStatus::Unpaid | SubscriptionStatus::Paused => 4,
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired => 5,
    }
}

/// A total order on subscription events: creation second, then lifecycle rank, then id, so
/// that any delivery order ends in the same state. Zero-padded so strings compare as numbers.
pub fn subscription_version(event: &Event, status: SubscriptionStatus) -> String {
    format!(
        "{:012}:{}:{}",
        event.created.max(0),
        status_rank(status),
        event.id
    )
}

/// The version of a state fetched from Stripe at `at`: later than any event's version of
/// the same second (rank slot `9`, above every lifecycle rank), and ordered by the fetch
/// time, so a slower worker holding an older fetch never overwrites a newer one.
fn fetched_version(at: chrono::DateTime<chrono::Utc>, event: &Event) -> String {
    format!(
        "{:012}:9:{:09}:{}",
        at.timestamp().max(0),
        at.timestamp_subsec_nanos(),
        event.id
    )
}

/// The subscription as Stripe holds it now, when a Stripe client is configured.
pub(super) async fn current(
    ctx: &Ctx<'_>,
    id: &SubscriptionId,
) -> Result<Option<Subscription>, FulfilError> {
    let Some(stripe) = ctx.services.stripe.as_ref() else {
        return Ok(None);
    };
    let sub = stripe
        .retrieve_subscription(id.as_str())
        .await
        .map_err(FulfilError::Stripe)?;
    Ok(Some(sub))
}

/// The write that sets the account's row to `sub` as fetched from Stripe; `None` when the
/// row already shows exactly that (a redelivered or replayed event, or a second event of
/// one change): writing it again would change nothing the account shows, and would raise
/// the entitlement version (and publish an event) for nothing.
pub(super) async fn fetched_state(
    ctx: &Ctx<'_>,
    user: &UserId,
    sub_id: &SubscriptionId,
    sub: &Subscription,
) -> Result<Option<Write>, FulfilError> {
    let version = fetched_version(ctx.services.clock.now(), ctx.event);
    let state = state_of(ctx, sub, status_of(sub), version);
    let stored = subscription::get(ctx.services.table.as_ref(), user, sub_id).await?;
    if stored.is_some_and(|row| row.shows(&state)) {
        return Ok(None);
    }
    Ok(Some(subscription::apply_if_newer(
        user, sub_id, state, ctx.now,
    )))
}

/// The subscription's status; one we do not know is applied as `unrecognized` (it keeps
/// no paid tier) and logged with Stripe's word, so an operator sees it.
fn status_of(sub: &Subscription) -> SubscriptionStatus {
    let status = SubscriptionStatus::parse(&sub.status);
    if status == SubscriptionStatus::Unrecognized {
        tracing::warn!(subscription = %sub.id, status = %sub.status, "subscription status not recognized; it keeps no paid tier");
    }
    status
}

fn state_of<'a>(
    ctx: &'a Ctx<'_>,
    sub: &Subscription,
    status: SubscriptionStatus,
    version: String,
) -> SubscriptionState<'a> {
    let plan = ctx.plan_of_prices(sub.price_ids(), sub.meta("plan_id"));
    SubscriptionState {
        status,
        version,
        plan: plan.map(|p| &p.id),
        cancel_at_period_end: sub.cancel_at_period_end,
        current_period_end: sub.period_end(),
        cancel_at: sub.cancel_at,
        trial_end: sub.trial_end,
        quantity: sub.quantity(),
    }
}

pub(super) async fn changed(
    ctx: &Ctx<'_>,
    kind: EventType,
    sent: &Subscription,
) -> Result<Planned, FulfilError> {
    let now = ctx.now;
    let sub_id = SubscriptionId::parse(&sent.id).map_err(FulfilError::invalid)?;
    let fetched = current(ctx, &sub_id).await?;
    let sub = fetched.as_ref().unwrap_or(sent);
    let customer = CustomerId::parse(sub.customer.id()).ok();
    let user = ctx.user_of(sub.meta("user_id"), customer.as_ref()).await?;
    let state = match &fetched {
        Some(now_held) => match fetched_state(ctx, &user, &sub_id, now_held).await? {
            Some(write) => write,
            // The account shows Stripe's current state already: nothing to apply.
            None => return Ok(Planned::already_applied()),
        },
        None => {
            let status = match status_of(sent) {
                // A deletion ends the subscription whatever its object still says.
                s if kind == EventType::SubscriptionDeleted && !s.has_ended() => {
                    SubscriptionStatus::Canceled
                }
                s => s,
            };
            let version = subscription_version(ctx.event, status);
            let state = state_of(ctx, sent, status, version);
            subscription::apply_if_newer(&user, &sub_id, state, ctx.now)
        }
    };
    let mut writes = vec![state];
    let mut profile = ProfileChange::new(&user, now).touched(now);
    if let Some(c) = &customer {
        profile = profile.link_customer(c);
        writes.push(customer::link(c, &user));
    }
    writes.push(profile.write());
    Ok(ctx.plan(writes))
}
