//! Requests parsed into commands where they enter: a body or query as the caller sent it
//! (the wire shape, private here) becomes the use case's command, whose ids are already
//! typed. A use case never sees a raw id string.
//!
//! A plan id that is not even well formed names no plan: it is refused here with the use
//! case's own "no plan" error (400 `unknown_plan`, `there is no plan "…"`), the answer a
//! well-formed id the catalog does not hold gets from the use case, so the contract sees one
//! error for both.

use crate::domain::ids::PlanId;
use crate::usecases::checkout::{CheckoutError, StartCheckout};
use crate::usecases::purchases::{BuyerAddress, PurchaseError, StartPurchase};
use crate::usecases::switch::{SwitchError, SwitchPlan};
use serde::Deserialize;

/// `POST /api/billing/checkout`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    plan_id: String,
    #[serde(default)]
    quantity: Option<i64>,
    #[serde(default)]
    success_path: Option<String>,
    #[serde(default)]
    cancel_path: Option<String>,
}

pub fn start_checkout(body: &[u8]) -> Result<StartCheckout, CheckoutError> {
    let b: CheckoutBody =
        serde_json::from_slice(body).map_err(|e| CheckoutError::InvalidBody(e.to_string()))?;
    Ok(StartCheckout {
        plan: PlanId::parse(&b.plan_id).map_err(|_| CheckoutError::UnknownPlan(b.plan_id))?,
        quantity: b.quantity,
        success_path: b.success_path,
        cancel_path: b.cancel_path,
    })
}

/// `POST /api/billing/purchases`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurchaseBody {
    plan_id: String,
    #[serde(default)]
    quantity: Option<i64>,
    #[serde(default)]
    address: Option<BuyerAddress>,
}

pub fn start_purchase(body: &[u8]) -> Result<StartPurchase, PurchaseError> {
    let b: PurchaseBody =
        serde_json::from_slice(body).map_err(|e| PurchaseError::InvalidBody(e.to_string()))?;
    Ok(StartPurchase {
        plan: PlanId::parse(&b.plan_id).map_err(|_| PurchaseError::UnknownPlan(b.plan_id))?,
        quantity: b.quantity,
        address: b.address,
    })
}

/// `POST /api/billing/subscription`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    #[serde(default)]
    plan_id: Option<String>,
    #[serde(default)]
    quantity: Option<i64>,
}

pub fn switch_plan(body: &[u8]) -> Result<SwitchPlan, SwitchError> {
    let b: SwitchBody =
        serde_json::from_slice(body).map_err(|e| SwitchError::InvalidBody(e.to_string()))?;
    Ok(SwitchPlan {
        plan: b.plan_id.map(switch_target).transpose()?,
        quantity: b.quantity,
    })
}

/// `GET /api/billing/subscription/preview?plan_id=&quantity=`: the switch's fields, as text.
pub fn preview(
    plan_id: Option<String>,
    quantity: Option<String>,
) -> Result<SwitchPlan, SwitchError> {
    let quantity = quantity
        .map(|q| {
            q.parse::<i64>()
                .map_err(|_| SwitchError::InvalidBody("quantity must be a whole number".into()))
        })
        .transpose()?;
    Ok(SwitchPlan {
        plan: plan_id.map(switch_target).transpose()?,
        quantity,
    })
}

fn switch_target(raw: String) -> Result<PlanId, SwitchError> {
    PlanId::parse(&raw).map_err(|_| SwitchError::UnknownPlan(raw))
}
