//! An in-memory Stripe behind the Stripe port ([`StripeApi`]), for the core's tests: no HTTP
//! server, no forms. It holds what a Stripe account holds (Checkout Sessions, subscriptions,
//! PaymentIntents and their refunds, invoices, events, prices, products, webhook endpoints,
//! meter events) as Stripe's own objects, built from the official fixtures
//! (`testdata/stripe/fixtures3.json`) and seeded by the test; it refuses what Stripe refuses
//! at the port (an unknown id is [`StripeError::NotFound`], expiring a session that is not
//! open or refunding more than was paid is an `invalid_request_error`), answers a retried call
//! (same idempotency key) with its first answer, records every call it receives, and fails the
//! next calls of a method on request ([`MemoryStripe::fail_next`]).
//!
//! The port's contract suite (`shared/testing/tests/stripe_port.rs`) runs the same contracts
//! against it and against the HTTP adapter talking to the strict fake Stripe server, so the
//! two cannot drift apart. The port's methods are in `port`.

mod port;

use crate::object;
use billing_core::stripe::api::{ListPage, StripeError};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The port's methods, to name what a call was ([`Call`]) and which calls fail
/// ([`MemoryStripe::fail_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    CreateCheckout,
    CreatePortalSession,
    ExpireCheckout,
    CheckoutStatus,
    CheckoutLineItems,
    RetrieveSubscription,
    ChangeSubscriptionPrice,
    SetCancelAtPeriodEnd,
    PreviewSubscriptionChange,
    ListInvoices,
    CalculateTax,
    CreatePaymentIntent,
    RefundPurchase,
    InvoiceOfPayment,
    RetrievePaymentIntent,
    ReportMeterUsage,
    RetrieveEvent,
    ListEvents,
    FindPriceByLookupKey,
    CreateProduct,
    CreatePrice,
    RetrievePrice,
    ListWebhookEndpoints,
    CreateWebhookEndpoint,
    ActivePortalConfiguration,
}

impl Method {
    /// Whether the call changes what Stripe holds (or bills): what "reached no Stripe
    /// update" means. A preview and a tax calculation change nothing that is billed.
    pub fn is_update(self) -> bool {
        matches!(
            self,
            Method::CreateCheckout
                | Method::CreatePortalSession
                | Method::ExpireCheckout
                | Method::ChangeSubscriptionPrice
                | Method::SetCancelAtPeriodEnd
                | Method::CreatePaymentIntent
                | Method::RefundPurchase
                | Method::ReportMeterUsage
                | Method::CreateProduct
                | Method::CreatePrice
                | Method::CreateWebhookEndpoint
        )
    }
}

/// One call the in-memory Stripe received: the method, what it named (in the port's terms,
/// as JSON for assertions) and its idempotency key, if it took one.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    pub args: Value,
    pub idempotency_key: Option<String>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Value>,
    line_items: HashMap<String, Vec<(String, i64)>>,
    subscriptions: HashMap<String, Value>,
    payment_intents: HashMap<String, Value>,
    refunds: Vec<Value>,
    invoices: Vec<Value>,
    invoice_of_payment: HashMap<String, String>,
    events: Vec<Value>,
    prices: Vec<Value>,
    products: Vec<Value>,
    webhook_endpoints: Vec<Value>,
    portal_configurations: Vec<Value>,
    /// identifier → the meter event counted for it (Stripe counts an identifier once).
    meter_events: Vec<Value>,
    /// idempotency key → (method, first answer): a retried call gets the same answer.
    answered: HashMap<String, (Method, Value)>,
    calls: Vec<Call>,
    failures: HashMap<Method, VecDeque<StripeError>>,
    /// Tax added by a tax calculation, in basis points of the amount.
    tax_bps: i64,
    next_id: u64,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_mem_{:06}", self.next_id)
    }
}

/// An in-memory Stripe account (see the module's documentation). Cheap to share behind an
/// `Arc`; every method takes `&self`.
#[derive(Default)]
pub struct MemoryStripe {
    state: Mutex<State>,
}

fn not_found(kind: &str, id: &str) -> StripeError {
    StripeError::NotFound(format!("No such {kind}: '{id}'"))
}

/// Stripe's `invalid_request_error` (HTTP 400) with `code` and `message`.
fn invalid(code: Option<&str>, message: String) -> StripeError {
    StripeError::Api {
        status: 400,
        kind: "invalid_request_error".into(),
        code: code.map(str::to_owned),
        user_message: "the payment provider refused the request".into(),
        internal: message,
    }
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, StripeError> {
    serde_json::from_value(value.clone()).map_err(|e| StripeError::Decode(e.to_string()))
}

/// Newest first (by `created`, then id), after `starting_after`, `limit` a page.
fn page(mut listed: Vec<Value>, starting_after: Option<&str>, limit: usize) -> ListPage<Value> {
    let created = |v: &Value| v["created"].as_i64().unwrap_or(0);
    listed.sort_by(|a, b| (created(b), b["id"].as_str()).cmp(&(created(a), a["id"].as_str())));
    if let Some(after) = starting_after {
        let at = listed.iter().position(|v| v["id"] == after);
        listed = listed.split_off(at.map_or(listed.len(), |i| i + 1));
    }
    let has_more = listed.len() > limit;
    listed.truncate(limit);
    ListPage {
        data: listed,
        has_more,
    }
}

impl MemoryStripe {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // Seeding: what the account holds before the test acts.

    /// The account holds `session` (a `checkout.session` object, e.g. from
    /// [`crate::checkout_session`]) which sold `items` (price, quantity).
    pub fn put_session(&self, session: &Value, items: &[(&str, i64)]) {
        let id = session["id"].as_str().unwrap_or_default().to_owned();
        let mut s = self.state();
        s.line_items.insert(
            id.clone(),
            items.iter().map(|(p, q)| (p.to_string(), *q)).collect(),
        );
        s.sessions.insert(id, session.clone());
    }

    /// The account holds `subscription` (by its id), replacing what it held.
    pub fn put_subscription(&self, subscription: &Value) {
        let id = subscription["id"].as_str().unwrap_or_default().to_owned();
        self.state().subscriptions.insert(id, subscription.clone());
    }

    /// The account holds `payment_intent` (by its id); its `amount_received` is what a refund
    /// may return.
    pub fn put_payment_intent(&self, payment_intent: &Value) {
        let id = payment_intent["id"].as_str().unwrap_or_default().to_owned();
        self.state()
            .payment_intents
            .insert(id, payment_intent.clone());
    }

    /// The account holds `invoice`; each PaymentIntent it names in `payment_intents` paid it.
    pub fn put_invoice(&self, invoice: &Value, payment_intents: &[&str]) {
        let id = invoice["id"].as_str().unwrap_or_default().to_owned();
        let mut s = self.state();
        for pi in payment_intents {
            s.invoice_of_payment.insert(pi.to_string(), id.clone());
        }
        s.invoices.push(invoice.clone());
    }

    /// Stripe stores `event` (an event envelope, e.g. from [`crate::event`]).
    pub fn put_event(&self, event: &Value) {
        self.state().events.push(event.clone());
    }

    /// The account holds `price` (a `price` object).
    pub fn put_price(&self, price: &Value) {
        self.state().prices.push(price.clone());
    }

    /// The account holds `endpoint` (a `webhook_endpoint` object).
    pub fn put_webhook_endpoint(&self, endpoint: &Value) {
        self.state().webhook_endpoints.push(endpoint.clone());
    }

    /// The account has an active Billing Portal configuration `id`.
    pub fn put_portal_configuration(&self, id: &str) {
        let config = object(
            "billing_portal.configuration",
            json!({ "id": id, "active": true }),
        );
        self.state().portal_configurations.push(config);
    }

    /// Stripe Tax adds `bps` basis points of each sale's amount.
    pub fn set_tax_rate_bps(&self, bps: i64) {
        self.state().tax_bps = bps;
    }

    /// The next `times` calls of `method` fail with `error` before Stripe acts on them (a
    /// timeout, a 5xx), then calls succeed again.
    pub fn fail_next(&self, method: Method, times: usize, error: StripeError) {
        let mut s = self.state();
        let queue = s.failures.entry(method).or_default();
        queue.extend(std::iter::repeat_n(error, times));
    }

    // What the test reads back.

    /// Every call received, in order (failed ones too).
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The calls of `method`, in order.
    pub fn calls_of(&self, method: Method) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// The calls that would change what Stripe holds or bills ([`Method::is_update`]).
    pub fn updates(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method.is_update())
            .collect()
    }

    pub fn session(&self, id: &str) -> Option<Value> {
        self.state().sessions.get(id).cloned()
    }

    /// The Checkout Sessions held for `customer`.
    pub fn sessions_of_customer(&self, customer: &str) -> Vec<Value> {
        self.state()
            .sessions
            .values()
            .filter(|s| s["customer"] == customer)
            .cloned()
            .collect()
    }

    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.state().subscriptions.get(id).cloned()
    }

    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        self.state().payment_intents.get(id).cloned()
    }

    /// The refunds made, in order.
    pub fn refunds(&self) -> Vec<Value> {
        self.state().refunds.clone()
    }

    /// The meter events counted (one per identifier), in order.
    pub fn meter_events(&self) -> Vec<Value> {
        self.state().meter_events.clone()
    }

    /// The units counted on the meter `event_name` for `customer`.
    pub fn metered_units(&self, customer: &str, event_name: &str) -> i64 {
        self.meter_events()
            .iter()
            .filter(|e| e["event_name"] == event_name)
            .filter(|e| e["payload"]["stripe_customer_id"] == customer)
            .filter_map(|e| e["payload"]["value"].as_str()?.parse::<i64>().ok())
            .sum()
    }

    /// Records the call, then fails it if the test asked for a failure.
    fn receive(&self, method: Method, args: Value, key: Option<&str>) -> Result<(), StripeError> {
        let mut s = self.state();
        s.calls.push(Call {
            method,
            args,
            idempotency_key: key.map(str::to_owned),
        });
        match s.failures.get_mut(&method).and_then(VecDeque::pop_front) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// A POST under `key`: a retry (same key, same method) gets the first answer; the same
    /// key on another method is refused, as Stripe refuses a key reused for another request.
    fn once(
        &self,
        method: Method,
        key: &str,
        act: impl FnOnce(&mut State) -> Result<Value, StripeError>,
    ) -> Result<Value, StripeError> {
        let mut s = self.state();
        if let Some((first, answer)) = s.answered.get(key) {
            return match *first == method {
                true => Ok(answer.clone()),
                false => Err(StripeError::Api {
                    status: 400,
                    kind: "idempotency_error".into(),
                    code: None,
                    user_message: "the payment provider refused the request".into(),
                    internal: format!(
                        "Keys for idempotent requests can only be used for the same endpoint: '{key}'"
                    ),
                }),
            };
        }
        let answer = act(&mut s)?;
        s.answered.insert(key.to_owned(), (method, answer.clone()));
        Ok(answer)
    }
}
