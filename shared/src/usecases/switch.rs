//! Switching plans (`docs/api.md`, "POST /api/billing/subscription"): the caller's one
//! live subscription moves to another subscription plan's price, through Stripe.
//!
//! Nothing is written here: the account follows Stripe's `customer.subscription.updated`,
//! applied by the worker like any other change of the subscription. The Stripe call carries
//! an `Idempotency-Key` derived from the user, the subscription, the plan and the caller's
//! own `Idempotency-Key` header (when sent), so a retried click switches once.

use crate::app::Services;
use crate::domain::catalog::{Mode, SeatsError};
use crate::domain::entitlement::SubscriptionStatus;
use crate::domain::identity::Identity;
use crate::domain::ids::PlanId;
use crate::store::StoreError;
use crate::store::records::subscription::{self, SubscriptionRow};
use crate::stripe::api::{PriceChange, StripeError};
use crate::stripe::objects::Subscription;
use crate::usecases::account::{SubscriptionView, subscription_view};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The route that switches plans; a refused checkout names it.
pub const SWITCH_ROUTE: &str = "POST /api/billing/subscription";

/// A plan, a number of seats, or both; the one missing stays as it is. Parsed where the
/// request enters (`inbound::commands`); a preview asks the same.
#[derive(Debug, Clone, Default)]
pub struct SwitchPlan {
    pub plan: Option<PlanId>,
    pub quantity: Option<i64>,
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
    #[error(transparent)]
    Seats(#[from] SeatsError),
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
    seats: i64,
    caller: Option<&str>,
) -> String {
    let caller = caller
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .unwrap_or("");
    let digest = Sha256::digest(
        format!("{user}\n{subscription}\n{applied}\n{plan}\n{seats}\n{caller}").as_bytes(),
    );
    format!("switch-{}", hex::encode(&digest[..16]))
}

/// The account's one live subscription (the latest applied that keeps the tier), as stored.
pub(crate) async fn live_subscription(
    services: &Services,
    caller: &Identity,
) -> Result<Option<SubscriptionRow>, StoreError> {
    let subs = subscription::list(services.table.as_ref(), &caller.user).await?;
    Ok(subs
        .into_iter()
        .filter(|s| s.status.keeps_tier())
        .max_by(|a, b| a.version.cmp(&b.version)))
}

/// The catalog's plan `id`; an id it does not hold is no plan.
fn plan_named<'c>(
    services: &'c Services,
    id: &PlanId,
) -> Result<&'c crate::domain::catalog::Plan, SwitchError> {
    services
        .config
        .catalog
        .get(id)
        .ok_or_else(|| SwitchError::UnknownPlan(id.to_string()))
}

/// The plan and seats a switch asks for: a missing plan is the live one; missing seats are
/// the live seats on a per-seat plan and one on any other.
pub(crate) fn target<'c>(
    services: &'c Services,
    live: &SubscriptionRow,
    wanted: &SwitchPlan,
) -> Result<(&'c crate::domain::catalog::Plan, i64), SwitchError> {
    let quantity = wanted.quantity;
    let plan = match &wanted.plan {
        Some(id) => plan_named(services, id)?,
        None if quantity.is_none() => {
            return Err(SwitchError::InvalidBody(
                "send plan_id, quantity or both".into(),
            ));
        }
        // The live plan, as stored (a plan since removed from the catalog is no plan).
        None => {
            let live_plan = live.plan_id.as_deref().unwrap_or_default();
            PlanId::parse(live_plan)
                .ok()
                .and_then(|id| services.config.catalog.get(&id))
                .ok_or_else(|| SwitchError::UnknownPlan(live_plan.to_owned()))?
        }
    };
    if plan.mode != Mode::Subscription {
        return Err(SwitchError::NotASubscriptionPlan(plan.id.to_string()));
    }
    let seats = match (quantity, plan.per_seat) {
        (Some(q), _) => q,
        (None, true) => live.quantity,
        (None, false) => 1,
    };
    plan.check_seats(seats)?;
    Ok((plan, seats))
}

/// `POST /api/billing/subscription`: another plan, another number of seats, or both.
pub async fn switch_plan(
    services: &Services,
    caller: &Identity,
    req: SwitchPlan,
    caller_key: Option<&str>,
) -> Result<SwitchResponse, SwitchError> {
    if let Some(id) = &req.plan {
        // An unknown plan is refused before the account is read.
        plan_named(services, id)?;
    }
    let live = live_subscription(services, caller)
        .await?
        .ok_or(SwitchError::NoSubscription)?;
    let (plan, seats) = target(services, &live, &req)?;
    if live.plan_id.as_deref() == Some(plan.id.as_str()) && live.quantity == seats {
        return Err(SwitchError::AlreadySubscribed(match plan.per_seat {
            true => format!("{} with {seats} seats", plan.id),
            false => plan.id.to_string(),
        }));
    }
    let (Some(stripe), Some(price)) = (services.stripe.as_ref(), plan.price_id.as_deref()) else {
        return Err(SwitchError::Unavailable(plan.id.to_string()));
    };
    // Stripe's subscription as it is now: our copy lags until Stripe's event arrives. When
    // Stripe already holds the new price and seats, this is a retry of a switch that went
    // through (or one made in the portal): it answers the same, without switching again.
    let current = stripe.retrieve_subscription(&live.id).await?;
    if current.price_ids().any(|p| p == price) && current.quantity() == seats {
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
        seats,
        caller_key,
    );
    let change = PriceChange {
        item,
        price,
        quantity: seats,
    };
    let updated = stripe
        .change_subscription_price(&live.id, &change, &key)
        .await?;
    Ok(answer(services, &updated))
}

/// The subscription as Stripe answered it, shown as the account will show it once its
/// event is applied.
pub(crate) fn answer(services: &Services, sub: &Subscription) -> SwitchResponse {
    let plan_id = sub
        .price_ids()
        .find_map(|p| services.config.catalog.by_price(p))
        .map(|p| p.id.to_string());
    let row = SubscriptionRow {
        id: sub.id.clone(),
        status: SubscriptionStatus::parse(&sub.status),
        version: String::new(),
        plan_id,
        current_period_end: sub.period_end(),
        cancel_at_period_end: sub.cancel_at_period_end,
        cancel_at: sub.cancel_at,
        trial_end: sub.trial_end,
        quantity: sub.quantity(),
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
        let k = idempotency_key("u", "sub_1", "v1", "pro_annual", 1, None);
        assert_eq!(
            k,
            idempotency_key("u", "sub_1", "v1", "pro_annual", 1, None)
        );
        assert_ne!(
            k,
            idempotency_key("u", "sub_1", "v1", "pro_monthly", 1, None)
        );
        assert_ne!(
            k,
            idempotency_key("u", "sub_1", "v1", "pro_annual", 2, None)
        );
        // Back and forth: once the previous switch's event landed, a new key.
        assert_ne!(
            k,
            idempotency_key("u", "sub_1", "v3", "pro_annual", 1, None)
        );
        assert_ne!(
            k,
            idempotency_key("u", "sub_1", "v1", "pro_annual", 1, Some("click-2"))
        );
        assert_ne!(
            k,
            idempotency_key("v", "sub_1", "v1", "pro_annual", 1, None)
        );
    }
}
