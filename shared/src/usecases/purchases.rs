//! Buying a credit pack without Checkout (`POST /api/billing/purchases`, `docs/api.md`):
//! a Stripe PaymentIntent the browser confirms with Stripe Elements.
//!
//! Nothing is granted here: `payment_intent.succeeded` fulfils it (`fulfil::payment_intent`).
//! The PaymentIntent's link is recorded so that a failed payment shows on the purchase.

use crate::app::Services;
use crate::domain::catalog::Grant;
use crate::domain::identity::Identity;
use crate::domain::ids::{PaymentIntentId, PlanId};
use crate::store::StoreError;
use crate::store::records::{payment_intent, profile};
use crate::stripe::api::{NewPaymentIntent, StripeError, TaxedSale, new_idempotency_key};
use crate::usecases::checkout::MAX_QUANTITY;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A purchase the caller asks for, parsed where the request enters (`inbound::commands`).
#[derive(Debug, Clone)]
pub struct StartPurchase {
    pub plan: PlanId,
    pub quantity: Option<i64>,
    /// The buyer's billing address; needed while Stripe Tax is on (`AUTOMATIC_TAX`).
    pub address: Option<BuyerAddress>,
}

/// Where the buyer is, as Stripe Tax needs it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyerAddress {
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
}

impl BuyerAddress {
    /// `(country, postal_code)` when both are given; the country as ISO 3166-1 alpha-2.
    fn parts(&self) -> Result<Option<(String, String)>, PurchaseError> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let (Some(country), Some(postal)) = (given(&self.country), given(&self.postal_code)) else {
            return Ok(None);
        };
        let country = country.to_ascii_uppercase();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(PurchaseError::InvalidBody(
                "address.country must be a two-letter country code (ISO 3166-1), e.g. DE".into(),
            ));
        }
        if postal.len() > 20 {
            return Err(PurchaseError::InvalidBody(
                "address.postal_code is too long".into(),
            ));
        }
        Ok(Some((country, postal.to_owned())))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurchaseResponse {
    pub payment_intent_id: String,
    pub client_secret: String,
    pub amount: i64,
    pub currency: String,
    pub credits: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    #[error("the request body is not valid: {0}")]
    InvalidBody(String),
    #[error("there is no plan {0:?}")]
    UnknownPlan(String),
    #[error("only credit packs can be bought here; {0} is not one")]
    UnsupportedPlan(String),
    #[error("quantity must be 1 to {MAX_QUANTITY}")]
    InvalidQuantity,
    #[error(
        "tax is computed from the buyer's address: send address.country and address.postal_code"
    )]
    AddressRequired,
    #[error("online payment is not available for {0}")]
    Unavailable(String),
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The Stripe idempotency key of one purchase: derived from the caller's own key when
/// sent (a retried click gets the same PaymentIntent), else fresh.
fn idempotency_key(user: &str, caller_key: Option<&str>) -> String {
    match caller_key.filter(|k| !k.is_empty() && k.len() <= 255) {
        Some(k) => {
            let digest = Sha256::digest(format!("purchase\n{user}\n{k}").as_bytes());
            format!("purchase-{}", hex::encode(&digest[..16]))
        }
        None => new_idempotency_key(),
    }
}

/// `POST /api/billing/purchases`.
pub async fn start_purchase(
    services: &Services,
    caller: &Identity,
    req: StartPurchase,
    caller_key: Option<&str>,
) -> Result<PurchaseResponse, PurchaseError> {
    let plan = services
        .config
        .catalog
        .get(&req.plan)
        .ok_or_else(|| PurchaseError::UnknownPlan(req.plan.to_string()))?;
    let Grant::Credits(per_unit) = plan.grant() else {
        return Err(PurchaseError::UnsupportedPlan(plan.id.to_string()));
    };
    let quantity = req.quantity.unwrap_or(1);
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(PurchaseError::InvalidQuantity);
    }
    let address = match &req.address {
        Some(a) => a.parts()?,
        None => None,
    };
    if services.config.automatic_tax && address.is_none() {
        return Err(PurchaseError::AddressRequired);
    }
    let stripe = services
        .stripe
        .as_ref()
        .ok_or_else(|| PurchaseError::Unavailable(plan.id.to_string()))?;
    let table = services.table.as_ref();
    // The customer the account already has, never a new one per click.
    let customer = profile::load(table, &caller.user)
        .await?
        .and_then(|p| p.customer_id);
    let user = caller.user.as_str();
    let key = idempotency_key(user, caller_key);
    let mut amount = plan.amount * quantity;
    let mut calculation = None;
    if let (true, Some((country, postal_code))) = (services.config.automatic_tax, &address) {
        let sale = TaxedSale {
            currency: plan.currency.as_str(),
            amount,
            quantity,
            reference: plan.id.as_str(),
            country,
            postal_code,
        };
        // Under the purchase's own key: a retried click computes (and is charged) once.
        let tax = stripe.calculate_tax(&sale, &format!("tax-{key}")).await?;
        amount = tax.amount_total;
        calculation = Some(tax.id);
    }
    let purchase = NewPaymentIntent {
        amount,
        currency: plan.currency.as_str(),
        user: &caller.user,
        plan: &plan.id,
        quantity,
        // Stripe records the tax transaction itself when this payment succeeds: nothing of
        // ours can lose it.
        tax_calculation: calculation.as_deref(),
        customer: customer.as_deref(),
    };
    let intent = stripe.create_payment_intent(&purchase, &key).await?;
    let pi = PaymentIntentId::parse(&intent.id)
        .map_err(|_| StripeError::Decode(format!("unexpected PaymentIntent id {:?}", intent.id)))?;
    let client_secret = intent
        .client_secret
        .clone()
        .ok_or_else(|| StripeError::Decode("the PaymentIntent has no client secret".into()))?;
    let now = services.clock.now();
    table
        .apply(payment_intent::created(&pi, &caller.user, now))
        .await?;
    Ok(PurchaseResponse {
        payment_intent_id: pi.to_string(),
        client_secret,
        amount: intent.amount,
        currency: intent.currency.unwrap_or_else(|| plan.currency.clone()),
        credits: per_unit * quantity,
    })
}
