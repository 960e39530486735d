//! The Stripe API port ([`StripeApi`]) and its HTTP adapter ([`HttpStripe`]).
//!
//! Form-encoded requests with Stripe's nested keys, the pinned API version, an
//! `Idempotency-Key` on every POST (the same key on each retry of one call), bounded
//! timeouts, and retries only where Stripe says a retry is safe: network errors, 409 (lock),
//! 429 and 5xx, unless Stripe answers `Stripe-Should-Retry: false`. Errors keep the message
//! a user may see apart from the one only operators may read.

mod error;
mod form;
mod http;

pub use error::StripeError;
pub use form::Form;
pub use http::{HttpStripe, RetryPolicy};

use async_trait::async_trait;
use serde::Deserialize;

/// The API version every request pins, and the webhook endpoint the bootstrap creates. The
/// types read the shapes of this version and of those before 2025-03-31 (tested in both, from
/// Stripe's fixtures: shared/testdata/stripe/README.md says which version they are).
pub const STRIPE_VERSION: &str = "2026-10-28.endive";

/// What our checkout needs back from a created session.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedSession {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PortalSession {
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LineItemPrice {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LineItem {
    #[serde(default)]
    pub price: Option<LineItemPrice>,
    #[serde(default)]
    pub quantity: Option<i64>,
}

/// One page of a list (`/v1/events`, line items).
#[derive(Debug, Clone, Deserialize)]
pub struct ListPage<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

/// Where the client takes the secret key from on each call: a fixed key, or a source that
/// re-reads it (the deployment's cached Secrets Manager secret), so a rotated key is used
/// without a cold start.
#[async_trait]
pub trait SecretKeySource: Send + Sync {
    async fn secret_key(&self) -> Option<secrecy::SecretString>;
}

#[async_trait]
impl SecretKeySource for secrecy::SecretString {
    async fn secret_key(&self) -> Option<secrecy::SecretString> {
        Some(self.clone())
    }
}

#[async_trait]
pub trait StripeApi: Send + Sync {
    /// Opens connections the first request would otherwise wait for (call during init).
    async fn warm(&self) {}
    async fn create_checkout_session(
        &self,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<CreatedSession, StripeError>;
    async fn create_portal_session(
        &self,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<PortalSession, StripeError>;
    async fn checkout_line_items(&self, session_id: &str) -> Result<Vec<LineItem>, StripeError>;
    /// A generic form POST (for operator tools such as the catalog bootstrap).
    async fn post_form(
        &self,
        path: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<serde_json::Value, StripeError>;
    /// A generic GET with a query (for operator tools).
    async fn get_json(&self, path: &str, query: &Form) -> Result<serde_json::Value, StripeError>;
    /// Reports `usage` to the Billing Meter its event name names. Stripe counts one
    /// `identifier` once, so a report sent again (a retry, a replay) bills nothing twice.
    async fn report_meter_usage(&self, usage: &MeterUsage<'_>) -> Result<(), StripeError>;
    /// One event as Stripe stores it (`/v1/events/{id}`).
    async fn retrieve_event(&self, event_id: &str) -> Result<serde_json::Value, StripeError>;
    /// One page (100) of `/v1/events` of `query`'s types created within its window,
    /// newest first, after `starting_after`.
    async fn list_events(
        &self,
        query: &EventsQuery<'_>,
    ) -> Result<ListPage<serde_json::Value>, StripeError>;
}

/// Units a customer used beyond an allowance, for a Stripe Billing Meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterUsage<'a> {
    /// The Stripe customer (`cus_…`) the units are billed to.
    pub customer: &'a str,
    /// The meter's event name, as the catalog names it.
    pub event_name: &'a str,
    pub units: i64,
    /// Derived from the usage key: Stripe counts each identifier once.
    pub identifier: &'a str,
    /// When the units were used (Unix seconds), so a late report lands in that period.
    pub at: i64,
}

/// Which events `/v1/events` lists: `created[gte]`, `created[lte]` (Unix seconds), `types[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsQuery<'a> {
    pub created_gte: i64,
    pub created_lte: i64,
    pub types: &'a [&'a str],
    pub starting_after: Option<&'a str>,
}

/// The subscription as Stripe holds it now (`GET /v1/subscriptions/{id}`, pinned version).
pub async fn retrieve_subscription(
    api: &dyn StripeApi,
    subscription_id: &str,
) -> Result<crate::stripe::objects::Subscription, StripeError> {
    let value = api
        .get_json(
            &format!("/v1/subscriptions/{subscription_id}"),
            &Form::new(),
        )
        .await?;
    serde_json::from_value(value).map_err(|e| StripeError::Decode(e.to_string()))
}

/// A subscription item (`si_…`) moved to a price and a quantity (seats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceChange<'a> {
    pub item: &'a str,
    pub price: &'a str,
    pub quantity: i64,
}

/// Moves a subscription's item to a price and quantity (`POST /v1/subscriptions/{id}`,
/// proration as Stripe's default) and returns the subscription as Stripe answers it.
pub async fn switch_subscription_price(
    api: &dyn StripeApi,
    subscription_id: &str,
    change: &PriceChange<'_>,
    idempotency_key: &str,
) -> Result<crate::stripe::objects::Subscription, StripeError> {
    let mut form = Form::new();
    form.push("items[0][id]", change.item)
        .push("items[0][price]", change.price)
        .push("items[0][quantity]", change.quantity);
    update_subscription(api, subscription_id, &form, idempotency_key).await
}

/// Sets or clears a subscription's end at its period end (`POST /v1/subscriptions/{id}`
/// with `cancel_at_period_end`); clearing also clears a scheduled `cancel_at`, which
/// flexible billing sets instead.
pub async fn set_cancel_at_period_end(
    api: &dyn StripeApi,
    subscription_id: &str,
    cancel: bool,
    clear_cancel_at: bool,
    idempotency_key: &str,
) -> Result<crate::stripe::objects::Subscription, StripeError> {
    let mut form = Form::new();
    form.push("cancel_at_period_end", cancel);
    if clear_cancel_at {
        // An empty value is how Stripe unsets a field.
        form.push("cancel_at", "");
    }
    update_subscription(api, subscription_id, &form, idempotency_key).await
}

async fn update_subscription(
    api: &dyn StripeApi,
    subscription_id: &str,
    form: &Form,
    idempotency_key: &str,
) -> Result<crate::stripe::objects::Subscription, StripeError> {
    let value = api
        .post_form(
            &format!("/v1/subscriptions/{subscription_id}"),
            form,
            idempotency_key,
        )
        .await?;
    serde_json::from_value(value).map_err(|e| StripeError::Decode(e.to_string()))
}

/// One page of a customer's invoices (`GET /v1/invoices?customer=`), newest first, after
/// `starting_after`. The customer is always named: no other customer's invoice is listed.
pub async fn list_invoices(
    api: &dyn StripeApi,
    customer: &str,
    limit: u8,
    starting_after: Option<&str>,
) -> Result<ListPage<crate::stripe::Invoice>, StripeError> {
    let mut query = Form::new();
    query.push("customer", customer).push("limit", limit);
    if let Some(after) = starting_after {
        query.push("starting_after", after);
    }
    let value = api.get_json("/v1/invoices", &query).await?;
    serde_json::from_value(value).map_err(|e| StripeError::Decode(e.to_string()))
}

/// What a subscription's next invoice would be after `change` (`POST
/// /v1/invoices/create_preview` with the customer, the subscription and the item's new
/// price and quantity, Stripe's default proration). Stripe creates nothing for a preview.
pub async fn preview_subscription_change(
    api: &dyn StripeApi,
    customer: &str,
    subscription_id: &str,
    change: &PriceChange<'_>,
) -> Result<crate::stripe::invoice::InvoicePreview, StripeError> {
    let mut form = Form::new();
    form.push("customer", customer)
        .push("subscription", subscription_id)
        .push("subscription_details[items][0][id]", change.item)
        .push("subscription_details[items][0][price]", change.price)
        .push("subscription_details[items][0][quantity]", change.quantity);
    let value = api
        .post_form("/v1/invoices/create_preview", &form, &new_idempotency_key())
        .await?;
    serde_json::from_value(value).map_err(|e| StripeError::Decode(e.to_string()))
}

/// What Stripe Tax computed for one sale (`POST /v1/tax/calculations`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaxCalculation {
    /// `taxcalc_…`: what the PaymentIntent names so that Stripe records the tax transaction.
    pub id: String,
    /// The amount with tax (minor units): what the buyer is charged.
    pub amount_total: i64,
    #[serde(default)]
    pub tax_amount_exclusive: i64,
}

/// A sale to be taxed: one line of `amount` for `quantity` of `reference` (a plan id),
/// sold to a buyer at `country` / `postal_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxedSale<'a> {
    pub currency: &'a str,
    pub amount: i64,
    pub quantity: i64,
    pub reference: &'a str,
    pub country: &'a str,
    pub postal_code: &'a str,
}

/// Stripe Tax's calculation for `sale` (`POST /v1/tax/calculations`, prices tax-exclusive).
pub async fn calculate_tax(
    api: &dyn StripeApi,
    sale: &TaxedSale<'_>,
    idempotency_key: &str,
) -> Result<TaxCalculation, StripeError> {
    let mut form = Form::new();
    form.push("currency", sale.currency)
        .push("line_items[0][amount]", sale.amount)
        .push("line_items[0][quantity]", sale.quantity)
        .push("line_items[0][reference]", sale.reference)
        .push("customer_details[address][country]", sale.country)
        .push("customer_details[address][postal_code]", sale.postal_code)
        .push("customer_details[address_source]", "billing");
    let value = api
        .post_form("/v1/tax/calculations", &form, idempotency_key)
        .await?;
    serde_json::from_value(value).map_err(|e| StripeError::Decode(e.to_string()))
}

/// Closes an open Checkout Session so it can no longer be paid
/// (`POST /v1/checkout/sessions/{id}/expire`); Stripe refuses one that is not open.
pub async fn expire_checkout_session(
    api: &dyn StripeApi,
    session_id: &str,
) -> Result<(), StripeError> {
    api.post_form(
        &format!("/v1/checkout/sessions/{session_id}/expire"),
        &Form::new(),
        &format!("expire-{session_id}"),
    )
    .await
    .map(|_| ())
}

/// A Checkout Session's `status` as Stripe holds it now: `open`, `complete` or `expired`.
pub async fn checkout_session_status(
    api: &dyn StripeApi,
    session_id: &str,
) -> Result<String, StripeError> {
    let value = api
        .get_json(&format!("/v1/checkout/sessions/{session_id}"), &Form::new())
        .await?;
    value["status"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| StripeError::Decode("the session has no status".into()))
}

/// A fresh idempotency key for one logical call (reused by its retries).
pub fn new_idempotency_key() -> String {
    uuid::Uuid::new_v4().to_string()
}
