//! Cancel at period end, and resume (`docs/api.md`, "POST /api/billing/subscription/cancel
//! and /resume"): the caller's one live subscription is set to end when its paid period
//! ends, or that end is undone, through Stripe's `cancel_at_period_end`.
//!
//! As with a switch, nothing is written here: the account shows the end (`cancel_at`) when
//! Stripe's `customer.subscription.updated` is applied. The routes name no subscription:
//! the caller's own is the only one they can reach. Stripe's current state decides (our
//! copy lags its events): a subscription Stripe has ended is gone (404), a second click
//! finds the change made and answers it again without asking Stripe twice.

use crate::app::Services;
use crate::domain::entitlement::SubscriptionStatus;
use crate::domain::identity::Identity;
use crate::store::StoreError;
use crate::stripe::api::StripeError;
use crate::stripe::objects::Subscription;
use crate::usecases::switch::{SwitchResponse, answer, live_subscription};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The body of both routes: nothing (an empty object, or no body at all).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRequest {}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("the request body is not valid: {0}")]
    InvalidBody(String),
    #[error("there is no live subscription; start one with POST /api/billing/checkout")]
    NoSubscription,
    #[error("your subscription is not set to end; there is nothing to resume")]
    NotCanceling,
    #[error("online billing is not available")]
    Unavailable,
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether Stripe will end the subscription: at its period end, or at a scheduled time
/// (flexible billing sets only `cancel_at`).
fn set_to_end(sub: &Subscription) -> bool {
    sub.cancel_at_period_end || sub.cancel_at.is_some()
}

/// The Stripe `Idempotency-Key` of one cancel or resume: the same for clicks that see the
/// same applied state, new once Stripe's event of the previous change has landed.
fn idempotency_key(user: &str, subscription: &str, applied: &str, action: &str) -> String {
    let digest = Sha256::digest(format!("{user}\n{subscription}\n{applied}\n{action}").as_bytes());
    format!("{action}-{}", hex::encode(&digest[..16]))
}

/// The caller's live subscription as Stripe holds it now, with its stored version.
async fn live_at_stripe(
    services: &Services,
    caller: &Identity,
) -> Result<(Subscription, String), LifecycleError> {
    let live = live_subscription(services, caller)
        .await?
        .ok_or(LifecycleError::NoSubscription)?;
    let stripe = services
        .stripe
        .as_ref()
        .ok_or(LifecycleError::Unavailable)?;
    let current = stripe.retrieve_subscription(&live.id).await?;
    // Ended at Stripe already (its event not applied yet): nothing left to cancel or resume.
    if !SubscriptionStatus::parse(&current.status).keeps_tier() {
        return Err(LifecycleError::NoSubscription);
    }
    Ok((current, live.version))
}

/// `POST /api/billing/subscription/cancel`: end the subscription at its period end.
pub async fn cancel(
    services: &Services,
    caller: &Identity,
) -> Result<SwitchResponse, LifecycleError> {
    let (current, applied) = live_at_stripe(services, caller).await?;
    if current.cancel_at_period_end {
        return Ok(answer(services, &current));
    }
    let key = idempotency_key(caller.user.as_str(), &current.id, &applied, "cancel");
    let stripe = services
        .stripe
        .as_ref()
        .ok_or(LifecycleError::Unavailable)?;
    let updated = stripe
        .set_cancel_at_period_end(&current.id, true, false, &key)
        .await?;
    Ok(answer(services, &updated))
}

/// `POST /api/billing/subscription/resume`: undo a scheduled end before it happens.
pub async fn resume(
    services: &Services,
    caller: &Identity,
) -> Result<SwitchResponse, LifecycleError> {
    let (current, applied) = live_at_stripe(services, caller).await?;
    if !set_to_end(&current) {
        return Err(LifecycleError::NotCanceling);
    }
    let key = idempotency_key(caller.user.as_str(), &current.id, &applied, "resume");
    let stripe = services
        .stripe
        .as_ref()
        .ok_or(LifecycleError::Unavailable)?;
    let clear_cancel_at = !current.cancel_at_period_end;
    let updated = stripe
        .set_cancel_at_period_end(&current.id, false, clear_cancel_at, &key)
        .await?;
    Ok(answer(services, &updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_and_a_resume_of_the_same_state_never_share_a_stripe_key() {
        let cancel = idempotency_key("u", "sub_1", "v1", "cancel");
        assert_eq!(cancel, idempotency_key("u", "sub_1", "v1", "cancel"));
        assert_ne!(cancel, idempotency_key("u", "sub_1", "v1", "resume"));
        // Cancel, resume, cancel again: the third is a new key once the events landed.
        assert_ne!(cancel, idempotency_key("u", "sub_1", "v3", "cancel"));
    }
}
