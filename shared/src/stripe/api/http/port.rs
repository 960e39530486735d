//! The port's methods as Stripe's endpoints: each names its path and sends its form from
//! [`forms`](super::forms).

use super::super::types::*;
use super::super::{Form, StripeApi, StripeError};
use super::{HttpStripe, forms};
use crate::stripe::invoice::{Invoice, InvoicePreview};
use crate::stripe::objects::{PaymentIntent, Refund, Subscription};
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;

/// An id taken from an event or a caller as it may appear in a path: Stripe's ids are
/// `[A-Za-z0-9_]`, so nothing else can change which path is asked.
fn path_id(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct WithStatus {
    status: SessionStatus,
}

#[async_trait]
impl StripeApi for HttpStripe {
    /// Opens the TLS connection during init (where Lambda gives full CPU), so the first
    /// request of a cold start does not pay the handshake. Any answer will do.
    async fn warm(&self) {
        let _ = self
            .http()
            .get(format!("{}/v1/", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
    }

    async fn create_checkout(
        &self,
        checkout: &NewCheckout<'_>,
        key: &str,
    ) -> Result<CreatedSession, StripeError> {
        let form = forms::checkout(checkout);
        self.post_form("/v1/checkout/sessions", &form, key).await
    }

    async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        key: &str,
    ) -> Result<PortalSession, StripeError> {
        let form = forms::portal_session(customer, return_url);
        self.post_form("/v1/billing_portal/sessions", &form, key)
            .await
    }

    async fn expire_checkout(&self, session_id: &str) -> Result<(), StripeError> {
        let id = session_id;
        let _: serde_json::Value = self
            .post_form(
                &format!("/v1/checkout/sessions/{id}/expire"),
                &Form::new(),
                &format!("expire-{session_id}"),
            )
            .await?;
        Ok(())
    }

    async fn checkout_status(&self, session_id: &str) -> Result<SessionStatus, StripeError> {
        let id = session_id;
        let session: WithStatus = self
            .get_json(&format!("/v1/checkout/sessions/{id}"), &Form::new())
            .await?;
        Ok(session.status)
    }

    async fn checkout_line_items(&self, session_id: &str) -> Result<Vec<LineItem>, StripeError> {
        let id = path_id(session_id);
        let page: ListPage<LineItem> = self
            .get_json(
                &format!("/v1/checkout/sessions/{id}/line_items"),
                &forms::limit(100),
            )
            .await?;
        Ok(page.data)
    }

    async fn retrieve_subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        self.get_json(&format!("/v1/subscriptions/{id}"), &Form::new())
            .await
    }

    async fn change_subscription_price(
        &self,
        id: &str,
        change: &PriceChange<'_>,
        key: &str,
    ) -> Result<Subscription, StripeError> {
        let form = forms::price_change(change);
        self.post_form(&format!("/v1/subscriptions/{id}"), &form, key)
            .await
    }

    async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        clear_cancel_at: bool,
        key: &str,
    ) -> Result<Subscription, StripeError> {
        let form = forms::cancel_at_period_end(cancel, clear_cancel_at);
        self.post_form(&format!("/v1/subscriptions/{id}"), &form, key)
            .await
    }

    async fn preview_subscription_change(
        &self,
        customer: &str,
        subscription_id: &str,
        change: &PriceChange<'_>,
    ) -> Result<InvoicePreview, StripeError> {
        let form = forms::preview(customer, subscription_id, change);
        let key = super::super::new_idempotency_key();
        self.post_form("/v1/invoices/create_preview", &form, &key)
            .await
    }

    async fn list_invoices(
        &self,
        customer: &str,
        limit: u8,
        starting_after: Option<&str>,
    ) -> Result<ListPage<Invoice>, StripeError> {
        let query = forms::invoices_query(customer, limit, starting_after);
        self.get_json("/v1/invoices", &query).await
    }

    async fn calculate_tax(
        &self,
        sale: &TaxedSale<'_>,
        key: &str,
    ) -> Result<TaxCalculation, StripeError> {
        let form = forms::tax_calculation(sale);
        self.post_form("/v1/tax/calculations", &form, key).await
    }

    async fn create_payment_intent(
        &self,
        purchase: &NewPaymentIntent<'_>,
        key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let form = forms::payment_intent(purchase);
        self.post_form("/v1/payment_intents", &form, key).await
    }

    async fn refund_purchase(
        &self,
        refund: &NewRefund<'_>,
        key: &str,
    ) -> Result<Refund, StripeError> {
        let form = forms::refund(refund);
        self.post_form("/v1/refunds", &form, key).await
    }

    async fn invoice_of_payment(
        &self,
        payment_intent: &str,
    ) -> Result<Option<String>, StripeError> {
        let query = forms::invoice_payments_query(payment_intent);
        let page: ListPage<serde_json::Value> =
            self.get_json("/v1/invoice_payments", &query).await?;
        Ok(page
            .data
            .iter()
            .find_map(|p| p["invoice"].as_str())
            .map(str::to_owned))
    }

    async fn retrieve_payment_intent(
        &self,
        payment_intent: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let id = payment_intent;
        self.get_json(&format!("/v1/payment_intents/{id}"), &Form::new())
            .await
    }

    async fn report_meter_usage(&self, usage: &MeterUsage<'_>) -> Result<(), StripeError> {
        let form = forms::meter_event(usage);
        // The identifier is the idempotency key too: a retry is one request to Stripe.
        let _: serde_json::Value = self
            .post_form("/v1/billing/meter_events", &form, usage.identifier)
            .await?;
        Ok(())
    }

    async fn retrieve_event(&self, event_id: &str) -> Result<serde_json::Value, StripeError> {
        let id = path_id(event_id);
        self.get_json(&format!("/v1/events/{id}"), &Form::new())
            .await
    }

    async fn list_events(
        &self,
        query: &EventsQuery<'_>,
    ) -> Result<ListPage<serde_json::Value>, StripeError> {
        self.get_json("/v1/events", &forms::events_query(query))
            .await
    }

    async fn find_price_by_lookup_key(
        &self,
        lookup_key: &str,
    ) -> Result<Option<String>, StripeError> {
        let query = forms::price_by_lookup_key(lookup_key);
        let page: ListPage<Created> = self.get_json("/v1/prices", &query).await?;
        Ok(page.data.into_iter().next().map(|p| p.id))
    }

    async fn create_product(&self, product: &NewProduct, key: &str) -> Result<String, StripeError> {
        let form = forms::product(product);
        let created: Created = self.post_form("/v1/products", &form, key).await?;
        Ok(created.id)
    }

    async fn create_price(&self, price: &NewPrice, key: &str) -> Result<String, StripeError> {
        let form = forms::price(price);
        let created: Created = self.post_form("/v1/prices", &form, key).await?;
        Ok(created.id)
    }

    async fn retrieve_price(&self, price_id: &str) -> Result<Price, StripeError> {
        let id = price_id;
        self.get_json(&format!("/v1/prices/{id}"), &Form::new())
            .await
    }

    async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StripeError> {
        let page: ListPage<WebhookEndpoint> = self
            .get_json("/v1/webhook_endpoints", &forms::limit(100))
            .await?;
        Ok(page.data)
    }

    async fn create_webhook_endpoint(
        &self,
        endpoint: &NewWebhookEndpoint,
        key: &str,
    ) -> Result<String, StripeError> {
        let form = forms::webhook_endpoint(endpoint);
        let created: Created = self.post_form("/v1/webhook_endpoints", &form, key).await?;
        Ok(created.id)
    }

    async fn active_portal_configuration(&self) -> Result<Option<String>, StripeError> {
        let query = forms::active_portal_configuration();
        let page: ListPage<Created> = self
            .get_json("/v1/billing_portal/configurations", &query)
            .await?;
        Ok(page.data.into_iter().next().map(|c| c.id))
    }
}
