//! The Stripe port ([`StripeApi`]): what the billing rules ask of Stripe, in the project's
//! terms (a checkout for a plan and a user, a subscription's price and seats, a refund of a
//! purchase, …), with typed inputs and answers and [`StripeError::NotFound`] for an object
//! Stripe does not have. Its HTTP adapter ([`HttpStripe`], `http/`) is the one place that
//! knows Stripe's wire format: every path, every form, the pinned API version, an
//! `Idempotency-Key` on every POST (the same key on each retry of one call), bounded
//! timeouts, and retries only where Stripe says a retry is safe.

mod error;
mod form;
mod http;
mod types;

pub use error::StripeError;
pub use form::Form;
pub use http::{HttpStripe, RetryPolicy, forms};
pub use types::*;

use crate::stripe::invoice::{Invoice, InvoicePreview};
use crate::stripe::objects::{PaymentIntent, Refund, Subscription};
use async_trait::async_trait;

/// The API version every request pins, and the webhook endpoint the bootstrap creates. The
/// types read the shapes of this version and of those before 2025-03-31 (tested in both, from
/// Stripe's fixtures: shared/testdata/stripe/README.md says which version they are).
pub const STRIPE_VERSION: &str = "2026-10-28.endive";

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

/// What the billing rules ask of Stripe. Every POST takes the idempotency key of its one
/// logical call, so a retry (ours, or the caller's) acts once.
#[async_trait]
pub trait StripeApi: Send + Sync {
    /// Opens connections the first request would otherwise wait for (call during init).
    async fn warm(&self) {}

    // Checkout and the portal.
    /// A Checkout Session selling `checkout`'s plan to its user.
    async fn create_checkout(
        &self,
        checkout: &NewCheckout<'_>,
        idempotency_key: &str,
    ) -> Result<CreatedSession, StripeError>;
    /// A Billing Portal session for `customer`, returning to `return_url`.
    async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<PortalSession, StripeError>;
    /// Closes an open Checkout Session so it can no longer be paid; Stripe refuses one that
    /// is not open, and answers [`StripeError::NotFound`] for one it does not have.
    async fn expire_checkout(&self, session_id: &str) -> Result<(), StripeError>;
    /// A Checkout Session's status as Stripe holds it now.
    async fn checkout_status(&self, session_id: &str) -> Result<SessionStatus, StripeError>;
    /// What a Checkout Session sold (its prices and quantities).
    async fn checkout_line_items(&self, session_id: &str) -> Result<Vec<LineItem>, StripeError>;

    // Subscriptions and their invoices.
    /// The subscription as Stripe holds it now (pinned version).
    async fn retrieve_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Subscription, StripeError>;
    /// Moves a subscription's item to a price and a quantity (seats), with Stripe's default
    /// proration; answers the subscription as Stripe holds it after.
    async fn change_subscription_price(
        &self,
        subscription_id: &str,
        change: &PriceChange<'_>,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError>;
    /// Sets (`true`) or clears (`false`) the subscription's end at its period end; clearing
    /// with `clear_cancel_at` also clears a scheduled end date, which flexible billing sets
    /// instead.
    async fn set_cancel_at_period_end(
        &self,
        subscription_id: &str,
        cancel: bool,
        clear_cancel_at: bool,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError>;
    /// What the customer's subscription's next invoice would be after `change`. Stripe
    /// creates nothing for a preview.
    async fn preview_subscription_change(
        &self,
        customer: &str,
        subscription_id: &str,
        change: &PriceChange<'_>,
    ) -> Result<InvoicePreview, StripeError>;
    /// One page of the customer's invoices, newest first, after `starting_after`. The
    /// customer is always named: no other customer's invoice is listed.
    async fn list_invoices(
        &self,
        customer: &str,
        limit: u8,
        starting_after: Option<&str>,
    ) -> Result<ListPage<Invoice>, StripeError>;

    // Purchases with Stripe Elements, refunds, payments.
    /// Stripe Tax's calculation for one sale (prices tax-exclusive).
    async fn calculate_tax(
        &self,
        sale: &TaxedSale<'_>,
        idempotency_key: &str,
    ) -> Result<TaxCalculation, StripeError>;
    /// A PaymentIntent for one purchase the browser confirms with Stripe Elements.
    async fn create_payment_intent(
        &self,
        purchase: &NewPaymentIntent<'_>,
        idempotency_key: &str,
    ) -> Result<PaymentIntent, StripeError>;
    /// Refunds `amount` of a purchase's payment.
    async fn refund_purchase(
        &self,
        refund: &NewRefund<'_>,
        idempotency_key: &str,
    ) -> Result<Refund, StripeError>;
    /// The invoice a PaymentIntent paid, if it paid one (Stripe's InvoicePayments).
    async fn invoice_of_payment(&self, payment_intent: &str)
    -> Result<Option<String>, StripeError>;
    /// A PaymentIntent as Stripe holds it now.
    async fn retrieve_payment_intent(
        &self,
        payment_intent: &str,
    ) -> Result<PaymentIntent, StripeError>;

    // Usage beyond an allowance.
    /// Reports `usage` to the Billing Meter its event name names. Stripe counts one
    /// `identifier` once, so a report sent again (a retry, a replay) bills nothing twice.
    async fn report_meter_usage(&self, usage: &MeterUsage<'_>) -> Result<(), StripeError>;

    // Events.
    /// One event as Stripe stores it (for 30 days).
    async fn retrieve_event(&self, event_id: &str) -> Result<serde_json::Value, StripeError>;
    /// One page (100) of the events of `query`'s types created within its window, newest
    /// first, after `starting_after`.
    async fn list_events(
        &self,
        query: &EventsQuery<'_>,
    ) -> Result<ListPage<serde_json::Value>, StripeError>;

    // The operator's tools: the catalog bootstrap and the go-live gates.
    /// The active price that carries `lookup_key`, if there is one.
    async fn find_price_by_lookup_key(
        &self,
        lookup_key: &str,
    ) -> Result<Option<String>, StripeError>;
    /// Creates a product; answers its id.
    async fn create_product(
        &self,
        product: &NewProduct,
        idempotency_key: &str,
    ) -> Result<String, StripeError>;
    /// Creates a price; answers its id.
    async fn create_price(
        &self,
        price: &NewPrice,
        idempotency_key: &str,
    ) -> Result<String, StripeError>;
    /// One price as Stripe holds it.
    async fn retrieve_price(&self, price_id: &str) -> Result<Price, StripeError>;
    /// The account's webhook endpoints (the first 100).
    async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StripeError>;
    /// Creates a webhook endpoint; answers its id (its signing secret is never kept).
    async fn create_webhook_endpoint(
        &self,
        endpoint: &NewWebhookEndpoint,
        idempotency_key: &str,
    ) -> Result<String, StripeError>;
    /// The id of an active Billing Portal configuration, if the account has one.
    async fn active_portal_configuration(&self) -> Result<Option<String>, StripeError>;
}

/// A fresh idempotency key for one logical call (reused by its retries).
pub fn new_idempotency_key() -> String {
    uuid::Uuid::new_v4().to_string()
}
