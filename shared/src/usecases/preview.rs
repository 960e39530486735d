//! What a plan or seat change would cost now (`docs/api.md`, "GET
//! /api/billing/subscription/preview"): Stripe's invoice preview for the caller's customer
//! and live subscription, with the new price and seats and Stripe's default proration.
//! A preview changes nothing, here or at Stripe.

use crate::app::Services;
use crate::domain::clock::rfc3339;
use crate::domain::identity::Identity;
use crate::stripe::api::{PriceChange, StripeError};
use crate::usecases::switch::{SwitchError, SwitchPlan, live_subscription, target};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewView {
    /// What the previewed invoice would charge (minor units).
    pub amount_due: i64,
    pub currency: Option<String>,
    pub lines: Vec<PreviewLine>,
    /// When Stripe would charge it (RFC 3339).
    pub next_payment_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewLine {
    pub description: Option<String>,
    pub amount: i64,
}

/// `GET /api/billing/subscription/preview`: the same rules as a switch (the same errors),
/// answered with Stripe's preview instead of a change.
pub async fn preview(
    services: &Services,
    caller: &Identity,
    wanted: SwitchPlan,
) -> Result<PreviewView, SwitchError> {
    let live = live_subscription(services, caller)
        .await?
        .ok_or(SwitchError::NoSubscription)?;
    let (plan, seats) = target(services, &live, &wanted)?;
    let (Some(stripe), Some(price)) = (services.stripe.as_ref(), plan.price_id.as_deref()) else {
        return Err(SwitchError::Unavailable(plan.id.to_string()));
    };
    let current = stripe.retrieve_subscription(&live.id).await?;
    let item = current
        .items
        .data
        .iter()
        .find_map(|i| i.id.as_deref())
        .ok_or_else(|| StripeError::Decode("the subscription has no item".into()))?;
    let change = PriceChange {
        item,
        price,
        quantity: seats,
    };
    // The subscription's own customer: the caller's, since the subscription is theirs.
    let invoice = stripe
        .preview_subscription_change(current.customer.id(), &current.id, &change)
        .await?;
    let lines = invoice
        .lines
        .iter()
        .flat_map(|l| l.data.iter())
        .map(|l| PreviewLine {
            description: l.description.clone(),
            amount: l.amount.unwrap_or(0),
        })
        .collect();
    Ok(PreviewView {
        amount_due: invoice.amount_due.unwrap_or(0),
        currency: invoice.currency.clone(),
        lines,
        next_payment_at: invoice
            .next_payment_attempt
            .or(invoice.created)
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(rfc3339),
    })
}
