//! Switching plans (`docs/api.md`, "POST /api/billing/subscription"): the caller's one
//! live subscription moves to another subscription plan's price, through Stripe.
//!
//! Nothing is written here: the account follows Stripe's `customer.subscription.updated`,
//! applied by the worker like any other change of the subscription. The Stripe call carries
//! an `Idempotency-Key` derived from the user, the subscription, the plan and the caller's
//! own `Idempotency-Key` header (when sent), so a retried click switches once.

use crate::domain::catalog::Mode;
use crate::domain::entitlement::keeps_tier;
use crate::domain::identity::Identity;
use crate::domain::ids::PlanId;
use crate::edge::runtime::Services;
use crate::store::StoreError;
use crate::store::records::subscription::{self, SubscriptionRow};
use crate::stripe::api::{StripeError, retrieve_subscription, switch_subscription_price};
use crate::stripe::objects::Subscription;
use crate::usecases::account::{SubscriptionView, subscription_view};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The route that switches plans; a refused checkout names it.
pub const SWITCH_ROUTE: &str = "POST /api/billing/subscription";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    pub plan_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchResponse {
    pub subscription: SubscriptionView,
}

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("the request body is not valid: {0}")]
    InvalidBody(String),
    #[error("there is no plan {0:?}")]
    UnknownPlan(String),
    #[error("{0} is not a subscription plan; buy it with POST /api/billing/checkout")]
    NotASubscriptionPlan(String),
    #[error("there is no live subscription to switch; start one with POST /api/billing/checkout")]
    NoSubscription,
    #[error("your subscription is already on {0}")]
    AlreadySubscribed(String),
    #[error("online payment is not available for {0}")]
    Unavailable(String),
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The Stripe `Idempotency-Key` of one switch request: the same for clicks that see the same
/// applied state of the subscription (`applied`, our row's version), and new once Stripe's
/// event of a previous switch has landed, so switching A → B → A → B within Stripe's 24 hours
/// of key memory never gets the first switch's answer replayed instead of a switch.
pub fn idempotency_key(
    user: &str,
    subscription: &str,
    applied: &str,
    plan: &str,
    caller: Option<&str>,
) -> String {
    let caller = caller
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .unwrap_or("");
    let digest =
        Sha256::digest(format!("{user}\n{subscription}\n{applied}\n{plan}\n{caller}").as_bytes());
    format!("switch-{}", hex::encode(&digest[..16]))
}

/// `POST /api/billing/subscription`.
pub async fn switch_plan(
    services: &Services,
    caller: &Identity,
    req: SwitchRequest,
    caller_key: Option<&str>,
) -> Result<SwitchResponse, SwitchError> {
    let catalog = &services.config.catalog;
    let plan = PlanId::parse(&req.plan_id)
        .ok()
        .and_then(|id| catalog.get(&id))
        .ok_or_else(|| SwitchError::UnknownPlan(req.plan_id.clone()))?;
    if plan.mode != Mode::Subscription {
        return Err(SwitchError::NotASubscriptionPlan(plan.id.to_string()));
    }
    let subs = subscription::list(services.table.as_ref(), &caller.user).await?;
    let live = subs
        .iter()
        .filter(|s| keeps_tier(&s.status))
        .max_by(|a, b| a.version.cmp(&b.version))
        .ok_or(SwitchError::NoSubscription)?;
    if live.plan_id.as_deref() == Some(plan.id.as_str()) {
        return Err(SwitchError::AlreadySubscribed(plan.id.to_string()));
    }
    let (Some(stripe), Some(price)) = (services.stripe.as_ref(), plan.price_id.as_deref()) else {
        return Err(SwitchError::Unavailable(plan.id.to_string()));
    };
    // Stripe's subscription as it is now: our copy lags until Stripe's event arrives. When
    // Stripe already holds the new price, this is a retry of a switch that went through
    // (or one made in the portal): it answers the same, without switching again.
    let current = retrieve_subscription(stripe.as_ref(), &live.id).await?;
    if current.price_ids().any(|p| p == price) {
        return Ok(answer(services, &current));
    }
    let item = current
        .items
        .data
        .iter()
        .find_map(|i| i.id.as_deref())
        .ok_or_else(|| StripeError::Decode("the subscription has no item to switch".into()))?;
    let key = idempotency_key(
        caller.user.as_str(),
        &live.id,
        &live.version,
        plan.id.as_str(),
        caller_key,
    );
    let updated = switch_subscription_price(stripe.as_ref(), &live.id, item, price, &key).await?;
    Ok(answer(services, &updated))
}

/// The subscription as Stripe answered it, shown as the account will show it once its
/// event is applied.
fn answer(services: &Services, sub: &Subscription) -> SwitchResponse {
    let plan_id = sub
        .price_ids()
        .find_map(|p| services.config.catalog.by_price(p))
        .map(|p| p.id.to_string());
    let row = SubscriptionRow {
        id: sub.id.clone(),
        status: sub.status.clone(),
        version: String::new(),
        plan_id,
        current_period_end: sub.period_end(),
        cancel_at_period_end: sub.cancel_at_period_end,
        cancel_at: sub.cancel_at,
        trial_end: sub.trial_end,
    };
    SwitchResponse {
        subscription: subscription_view(&row),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_switch_reuses_its_key_and_another_plan_or_request_does_not() {
        let k = idempotency_key("u", "sub_1", "v1", "pro_annual", None);
        assert_eq!(k, idempotency_key("u", "sub_1", "v1", "pro_annual", None));
        assert_ne!(k, idempotency_key("u", "sub_1", "v1", "pro_monthly", None));
        // Back and forth: once the previous switch's event landed, a new key.
        assert_ne!(k, idempotency_key("u", "sub_1", "v3", "pro_annual", None));
        assert_ne!(
            k,
            idempotency_key("u", "sub_1", "v1", "pro_annual", Some("click-2"))
        );
        assert_ne!(k, idempotency_key("v", "sub_1", "v1", "pro_annual", None));
    }
}
