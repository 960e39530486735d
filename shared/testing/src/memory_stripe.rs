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
//! two cannot drift apart.

use crate::{fixture, object};
use async_trait::async_trait;
use billing_core::domain::catalog::Mode;
use billing_core::stripe::api::{
    CreatedSession, EventsQuery, LineItem, LineItemPrice, ListPage, MeterUsage, NewCheckout,
    NewPaymentIntent, NewPrice, NewProduct, NewRefund, NewWebhookEndpoint, PortalSession, Price,
    PriceChange, SessionStatus, StripeApi, StripeError, TaxCalculation, TaxedSale, WebhookEndpoint,
};
use billing_core::stripe::invoice::{Invoice, InvoicePreview};
use billing_core::stripe::objects::{PaymentIntent, Refund, Subscription};
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

fn subscription_change(
    s: &mut State,
    id: &str,
    change: impl FnOnce(&mut Value) -> Result<(), StripeError>,
) -> Result<Value, StripeError> {
    let sub = s
        .subscriptions
        .get_mut(id)
        .ok_or_else(|| not_found("subscription", id))?;
    let mut changed = sub.clone();
    change(&mut changed)?;
    *sub = changed.clone();
    Ok(changed)
}

#[async_trait]
impl StripeApi for MemoryStripe {
    async fn create_checkout(
        &self,
        c: &NewCheckout<'_>,
        key: &str,
    ) -> Result<CreatedSession, StripeError> {
        let args = json!({
            "plan": c.plan.id.as_str(), "price": c.price_id, "quantity": c.quantity,
            "user": c.user.as_str(), "email": c.email, "customer": c.customer,
            "success_url": c.success_url, "cancel_url": c.cancel_url,
            "trial_days": c.trial_days, "automatic_tax": c.automatic_tax,
        });
        self.receive(Method::CreateCheckout, args, Some(key))?;
        if c.quantity < 1 {
            return Err(invalid(
                Some("parameter_invalid_integer"),
                "line_items[0][quantity]: must be at least 1".into(),
            ));
        }
        let session = self.once(Method::CreateCheckout, key, |s| {
            let id = s.id("cs_test");
            let mode = match c.plan.mode {
                Mode::Subscription => "subscription",
                Mode::Payment => "payment",
            };
            let mut session = object(
                "checkout.session",
                json!({
                    "id": id, "status": "open", "payment_status": "unpaid", "mode": mode,
                    "url": format!("https://checkout.stripe.com/c/pay/{id}"),
                    "client_reference_id": c.user.to_reference(),
                    // As the form does: the email prefills only a checkout with no customer.
                    "customer": c.customer,
                    "customer_email": if c.customer.is_none() { c.email } else { None },
                    "success_url": c.success_url, "cancel_url": c.cancel_url,
                }),
            );
            session["metadata"] = json!({ "user_id": c.user.as_str(),
                "plan_id": c.plan.id.as_str(), "quantity": c.quantity.to_string() });
            let mut items = vec![(c.price_id.to_owned(), c.quantity)];
            if let Some(metered) = &c.plan.metered_price_id {
                items.push((metered.clone(), 1));
            }
            s.line_items.insert(id.clone(), items);
            s.sessions.insert(id, session.clone());
            Ok(session)
        })?;
        decode(&session)
    }

    async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        key: &str,
    ) -> Result<PortalSession, StripeError> {
        let args = json!({ "customer": customer, "return_url": return_url });
        self.receive(Method::CreatePortalSession, args, Some(key))?;
        let session = self.once(Method::CreatePortalSession, key, |s| {
            let id = s.id("bps");
            Ok(object(
                "billing_portal.session",
                json!({ "id": id, "customer": customer, "return_url": return_url }),
            ))
        })?;
        decode(&session)
    }

    async fn expire_checkout(&self, session_id: &str) -> Result<(), StripeError> {
        let args = json!({ "session": session_id });
        self.receive(Method::ExpireCheckout, args, None)?;
        // One logical expiry per session (the HTTP adapter's idempotency key names the
        // session): expiring again what this client expired gets the first answer.
        self.once(
            Method::ExpireCheckout,
            &format!("expire-{session_id}"),
            |s| {
                let session = s
                    .sessions
                    .get_mut(session_id)
                    .ok_or_else(|| not_found("checkout.session", session_id))?;
                if session["status"] != "open" {
                    return Err(invalid(
                        None,
                        format!(
                            "Only Checkout Sessions with a status in [\"open\"] can be expired: '{session_id}' is {}",
                            session["status"]
                        ),
                    ));
                }
                session["status"] = "expired".into();
                session["url"] = Value::Null;
                Ok(session.clone())
            },
        )?;
        Ok(())
    }

    async fn checkout_status(&self, session_id: &str) -> Result<SessionStatus, StripeError> {
        self.receive(
            Method::CheckoutStatus,
            json!({ "session": session_id }),
            None,
        )?;
        let s = self.state();
        let session = s
            .sessions
            .get(session_id)
            .ok_or_else(|| not_found("checkout.session", session_id))?;
        decode(&session["status"])
    }

    async fn checkout_line_items(&self, session_id: &str) -> Result<Vec<LineItem>, StripeError> {
        let args = json!({ "session": session_id });
        self.receive(Method::CheckoutLineItems, args, None)?;
        let s = self.state();
        if !s.sessions.contains_key(session_id) {
            return Err(not_found("checkout.session", session_id));
        }
        let items = s.line_items.get(session_id).cloned().unwrap_or_default();
        Ok(items
            .into_iter()
            .map(|(price, quantity)| LineItem {
                price: Some(LineItemPrice { id: price }),
                quantity: Some(quantity),
            })
            .collect())
    }

    async fn retrieve_subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        let args = json!({ "subscription": id });
        self.receive(Method::RetrieveSubscription, args, None)?;
        let s = self.state();
        let sub = s
            .subscriptions
            .get(id)
            .ok_or_else(|| not_found("subscription", id))?;
        decode(sub)
    }

    async fn change_subscription_price(
        &self,
        id: &str,
        change: &PriceChange<'_>,
        key: &str,
    ) -> Result<Subscription, StripeError> {
        let args = json!({ "subscription": id, "item": change.item, "price": change.price,
                           "quantity": change.quantity });
        self.receive(Method::ChangeSubscriptionPrice, args, Some(key))?;
        let sub = self.once(Method::ChangeSubscriptionPrice, key, |s| {
            subscription_change(s, id, |sub| {
                let item = &mut sub["items"]["data"][0];
                if item["id"] != change.item {
                    return Err(invalid(
                        Some("resource_missing"),
                        format!("No such subscription item: '{}'", change.item),
                    ));
                }
                item["price"]["id"] = change.price.into();
                item["quantity"] = change.quantity.into();
                Ok(())
            })
        })?;
        decode(&sub)
    }

    async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        clear_cancel_at: bool,
        key: &str,
    ) -> Result<Subscription, StripeError> {
        let args =
            json!({ "subscription": id, "cancel": cancel, "clear_cancel_at": clear_cancel_at });
        self.receive(Method::SetCancelAtPeriodEnd, args, Some(key))?;
        let sub = self.once(Method::SetCancelAtPeriodEnd, key, |s| {
            subscription_change(s, id, |sub| {
                sub["cancel_at_period_end"] = cancel.into();
                sub["cancel_at"] = match cancel {
                    true => sub["items"]["data"][0]["current_period_end"].clone(),
                    false => Value::Null,
                };
                if clear_cancel_at {
                    sub["cancel_at"] = Value::Null;
                }
                Ok(())
            })
        })?;
        decode(&sub)
    }

    async fn preview_subscription_change(
        &self,
        customer: &str,
        subscription_id: &str,
        change: &PriceChange<'_>,
    ) -> Result<InvoicePreview, StripeError> {
        let args = json!({ "customer": customer, "subscription": subscription_id,
                           "item": change.item, "price": change.price, "quantity": change.quantity });
        self.receive(Method::PreviewSubscriptionChange, args, None)?;
        let s = self.state();
        let sub = s
            .subscriptions
            .get(subscription_id)
            .ok_or_else(|| not_found("subscription", subscription_id))?;
        if sub["customer"] != customer {
            return Err(invalid(
                None,
                format!("The subscription '{subscription_id}' does not belong to '{customer}'"),
            ));
        }
        let unit = s
            .prices
            .iter()
            .find(|p| p["id"] == change.price)
            .and_then(|p| p["unit_amount"].as_i64())
            .unwrap_or(0);
        let amount = unit * change.quantity;
        let mut preview = fixture("invoice");
        preview["id"] = Value::Null;
        preview["customer"] = customer.into();
        preview["amount_due"] = amount.into();
        preview["total"] = amount.into();
        preview["next_payment_attempt"] = sub["items"]["data"][0]["current_period_end"].clone();
        if let Some(line) = preview["lines"]["data"].get_mut(0) {
            line["amount"] = amount.into();
            line["quantity"] = change.quantity.into();
            line["pricing"] = json!({ "type": "price_details",
                "price_details": { "price": change.price, "product": "prod_test" } });
        }
        decode(&preview)
    }

    async fn list_invoices(
        &self,
        customer: &str,
        limit: u8,
        starting_after: Option<&str>,
    ) -> Result<ListPage<Invoice>, StripeError> {
        let args =
            json!({ "customer": customer, "limit": limit, "starting_after": starting_after });
        self.receive(Method::ListInvoices, args, None)?;
        let theirs: Vec<Value> = self
            .state()
            .invoices
            .iter()
            .filter(|i| i["customer"] == customer)
            .cloned()
            .collect();
        let listed = page(theirs, starting_after, usize::from(limit.clamp(1, 100)));
        Ok(ListPage {
            data: listed.data.iter().map(decode).collect::<Result<_, _>>()?,
            has_more: listed.has_more,
        })
    }

    async fn calculate_tax(
        &self,
        sale: &TaxedSale<'_>,
        key: &str,
    ) -> Result<TaxCalculation, StripeError> {
        let args = json!({ "currency": sale.currency, "amount": sale.amount, "quantity": sale.quantity,
                           "reference": sale.reference, "country": sale.country,
                           "postal_code": sale.postal_code });
        self.receive(Method::CalculateTax, args, Some(key))?;
        let calc = self.once(Method::CalculateTax, key, |s| {
            // Stripe Tax's line amount is the line's total, not a unit price.
            let tax = sale.amount * s.tax_bps / 10_000;
            let id = s.id("taxcalc");
            Ok(object(
                "tax.calculation",
                json!({ "id": id, "currency": sale.currency, "amount_total": sale.amount + tax,
                        "tax_amount_exclusive": tax, "tax_amount_inclusive": 0 }),
            ))
        })?;
        decode(&calc)
    }

    async fn create_payment_intent(
        &self,
        p: &NewPaymentIntent<'_>,
        key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let args = json!({ "amount": p.amount, "currency": p.currency, "user": p.user.as_str(),
                           "plan": p.plan.as_str(), "quantity": p.quantity,
                           "tax_calculation": p.tax_calculation, "customer": p.customer });
        self.receive(Method::CreatePaymentIntent, args, Some(key))?;
        if p.amount < 1 {
            return Err(invalid(
                Some("amount_too_small"),
                "Amount must be at least 1 cent".into(),
            ));
        }
        let pi = self.once(Method::CreatePaymentIntent, key, |s| {
            let id = s.id("pi");
            let mut pi = object(
                "payment_intent",
                json!({ "id": id, "amount": p.amount, "amount_received": 0,
                        "currency": p.currency, "customer": p.customer,
                        "client_secret": format!("{id}_secret_mem"),
                        "status": "requires_payment_method", "last_payment_error": Value::Null }),
            );
            let mut metadata = json!({ "user_id": p.user.as_str(), "plan_id": p.plan.as_str(),
                                       "quantity": p.quantity.to_string() });
            if let Some(calc) = p.tax_calculation {
                metadata["tax_calculation"] = calc.into();
            }
            pi["metadata"] = metadata;
            s.payment_intents.insert(id, pi.clone());
            Ok(pi)
        })?;
        decode(&pi)
    }

    async fn refund_purchase(&self, r: &NewRefund<'_>, key: &str) -> Result<Refund, StripeError> {
        let args = json!({ "payment_intent": r.payment_intent, "amount": r.amount,
                           "purchase": r.purchase, "operator": r.operator.as_str() });
        self.receive(Method::RefundPurchase, args, Some(key))?;
        let refund = self.once(Method::RefundPurchase, key, |s| {
            // A parameter naming a missing object is a 400 `resource_missing` (a path's is a 404).
            let pi = s.payment_intents.get(r.payment_intent).ok_or_else(|| {
                invalid(
                    Some("resource_missing"),
                    format!("No such payment_intent: '{}'", r.payment_intent),
                )
            })?;
            let received = pi["amount_received"].as_i64().unwrap_or(0);
            let refunded: i64 = s
                .refunds
                .iter()
                .filter(|f| f["payment_intent"] == r.payment_intent)
                .filter_map(|f| f["amount"].as_i64())
                .sum();
            if received == 0 {
                return Err(invalid(
                    None,
                    format!(
                        "This PaymentIntent ({}) does not have a successful charge to refund.",
                        r.payment_intent
                    ),
                ));
            }
            if r.amount < 1 || r.amount > received - refunded {
                return Err(invalid(
                    None,
                    format!(
                        "Refund amount ({}) is greater than unrefunded amount on charge ({})",
                        r.amount,
                        received - refunded
                    ),
                ));
            }
            let id = s.id("re");
            let mut refund = object(
                "refund",
                json!({ "id": id, "amount": r.amount, "payment_intent": r.payment_intent,
                        "status": "succeeded" }),
            );
            refund["metadata"] =
                json!({ "purchase_id": r.purchase, "operator": r.operator.as_str() });
            s.refunds.push(refund.clone());
            Ok(refund)
        })?;
        decode(&refund)
    }

    async fn invoice_of_payment(
        &self,
        payment_intent: &str,
    ) -> Result<Option<String>, StripeError> {
        let args = json!({ "payment_intent": payment_intent });
        self.receive(Method::InvoiceOfPayment, args, None)?;
        Ok(self.state().invoice_of_payment.get(payment_intent).cloned())
    }

    async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        let args = json!({ "payment_intent": id });
        self.receive(Method::RetrievePaymentIntent, args, None)?;
        let s = self.state();
        let pi = s
            .payment_intents
            .get(id)
            .ok_or_else(|| not_found("payment_intent", id))?;
        decode(pi)
    }

    async fn report_meter_usage(&self, usage: &MeterUsage<'_>) -> Result<(), StripeError> {
        let args = json!({ "customer": usage.customer, "event_name": usage.event_name,
                           "units": usage.units, "identifier": usage.identifier, "at": usage.at });
        self.receive(Method::ReportMeterUsage, args, Some(usage.identifier))?;
        // The identifier is the idempotency key too (as the HTTP adapter sends it): a report
        // sent again is answered, and counted, once.
        self.once(Method::ReportMeterUsage, usage.identifier, |s| {
            let event = object(
                "billing.meter_event",
                json!({ "event_name": usage.event_name, "identifier": usage.identifier,
                        "timestamp": usage.at,
                        "payload": { "stripe_customer_id": usage.customer,
                                     "value": usage.units.to_string() } }),
            );
            s.meter_events.push(event.clone());
            Ok(event)
        })?;
        Ok(())
    }

    async fn retrieve_event(&self, event_id: &str) -> Result<Value, StripeError> {
        let args = json!({ "event": event_id });
        self.receive(Method::RetrieveEvent, args, None)?;
        let s = self.state();
        s.events
            .iter()
            .find(|e| e["id"] == event_id)
            .cloned()
            .ok_or_else(|| not_found("event", event_id))
    }

    async fn list_events(&self, q: &EventsQuery<'_>) -> Result<ListPage<Value>, StripeError> {
        let args = json!({ "created_gte": q.created_gte, "created_lte": q.created_lte,
                           "types": q.types, "starting_after": q.starting_after });
        self.receive(Method::ListEvents, args, None)?;
        let listed: Vec<Value> = self
            .state()
            .events
            .iter()
            .filter(|e| {
                let created = e["created"].as_i64().unwrap_or(0);
                created >= q.created_gte && created <= q.created_lte
            })
            .filter(|e| q.types.is_empty() || q.types.iter().any(|t| e["type"] == *t))
            .cloned()
            .collect();
        Ok(page(listed, q.starting_after, 100))
    }

    async fn find_price_by_lookup_key(
        &self,
        lookup_key: &str,
    ) -> Result<Option<String>, StripeError> {
        let args = json!({ "lookup_key": lookup_key });
        self.receive(Method::FindPriceByLookupKey, args, None)?;
        Ok(self
            .state()
            .prices
            .iter()
            .find(|p| p["lookup_key"] == lookup_key && p["active"] == true)
            .and_then(|p| p["id"].as_str())
            .map(str::to_owned))
    }

    async fn create_product(&self, product: &NewProduct, key: &str) -> Result<String, StripeError> {
        let args = json!({ "name": product.name, "plan": product.plan.as_str() });
        self.receive(Method::CreateProduct, args, Some(key))?;
        let created = self.once(Method::CreateProduct, key, |s| {
            let id = s.id("prod");
            let mut p = object("product", json!({ "id": id, "name": product.name }));
            p["metadata"] = json!({ "plan_id": product.plan.as_str() });
            s.products.push(p.clone());
            Ok(p)
        })?;
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    async fn create_price(&self, price: &NewPrice, key: &str) -> Result<String, StripeError> {
        let args = json!({ "product": price.product, "amount": price.amount,
                           "currency": price.currency, "lookup_key": price.lookup_key,
                           "plan": price.plan.as_str(), "interval": price.interval });
        self.receive(Method::CreatePrice, args, Some(key))?;
        let created = self.once(Method::CreatePrice, key, |s| {
            // Stripe keeps a lookup key on one price: another needs `transfer_lookup_key`,
            // which the bootstrap never sends.
            if s.prices.iter().any(|p| p["lookup_key"] == price.lookup_key) {
                return Err(invalid(
                    None,
                    format!(
                        "A price (`lookup_key`: '{}') already uses that lookup key.",
                        price.lookup_key
                    ),
                ));
            }
            let id = s.id("price");
            let recurring = price
                .interval
                .as_ref()
                .map(|i| json!({ "interval": i, "interval_count": 1, "usage_type": "licensed" }));
            let kind = if recurring.is_some() {
                "recurring"
            } else {
                "one_time"
            };
            let mut p = object(
                "price",
                json!({ "id": id, "product": price.product, "unit_amount": price.amount,
                        "currency": price.currency, "lookup_key": price.lookup_key,
                        "active": true, "type": kind }),
            );
            p["recurring"] = recurring.unwrap_or(Value::Null);
            p["metadata"] = json!({ "plan_id": price.plan.as_str() });
            s.prices.push(p.clone());
            Ok(p)
        })?;
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    async fn retrieve_price(&self, price_id: &str) -> Result<Price, StripeError> {
        let args = json!({ "price": price_id });
        self.receive(Method::RetrievePrice, args, None)?;
        let s = self.state();
        let price = s
            .prices
            .iter()
            .find(|p| p["id"] == price_id)
            .ok_or_else(|| not_found("price", price_id))?;
        decode(price)
    }

    async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StripeError> {
        self.receive(Method::ListWebhookEndpoints, Value::Null, None)?;
        let s = self.state();
        s.webhook_endpoints.iter().take(100).map(decode).collect()
    }

    async fn create_webhook_endpoint(
        &self,
        e: &NewWebhookEndpoint,
        key: &str,
    ) -> Result<String, StripeError> {
        let args = json!({ "url": e.url, "api_version": e.api_version,
                           "description": e.description, "enabled_events": e.enabled_events });
        self.receive(Method::CreateWebhookEndpoint, args, Some(key))?;
        let created = self.once(Method::CreateWebhookEndpoint, key, |s| {
            let id = s.id("we");
            let endpoint = object(
                "webhook_endpoint",
                json!({ "id": id, "url": e.url, "api_version": e.api_version,
                        "description": e.description, "enabled_events": e.enabled_events,
                        "status": "enabled", "livemode": false }),
            );
            s.webhook_endpoints.push(endpoint.clone());
            Ok(endpoint)
        })?;
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    async fn active_portal_configuration(&self) -> Result<Option<String>, StripeError> {
        self.receive(Method::ActivePortalConfiguration, Value::Null, None)?;
        Ok(self
            .state()
            .portal_configurations
            .iter()
            .find(|c| c["active"] == true)
            .and_then(|c| c["id"].as_str())
            .map(str::to_owned))
    }
}
