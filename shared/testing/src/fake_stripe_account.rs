//! What a fake Stripe server holds between requests, for tests that need Stripe's state
//! over HTTP (the port's contract suite, `tests/stripe_port.rs`): Checkout Sessions (status,
//! expiry, line items), PaymentIntents and the refunds of their payments, meter events
//! (counted once per identifier), events, prices, webhook endpoints, Billing Portal sessions
//! and configurations, invoice previews of a subscription it holds, and Stripe Tax
//! calculations. Mount it on a [`crate::strict_stripe`] server,
//! which refuses first every request Stripe's definitions refuse.
//!
//! It answers as Stripe does: an unknown object in a path is a 404 `resource_missing`, one
//! named by a parameter a 400 `resource_missing`; expiring a session that is not open and
//! refunding more than is left of a payment are 400 `invalid_request_error`s; a retried POST
//! (same `Idempotency-Key`) gets its first answer.

use crate::{EventsApi, InvoicesApi, object, payment_intent_for};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wiremock::{Request, ResponseTemplate};

#[derive(Default)]
struct Held {
    sessions: HashMap<String, Value>,
    line_items: HashMap<String, Vec<(String, i64)>>,
    payment_intents: HashMap<String, Value>,
    refunds: Vec<Value>,
    meter_events: HashMap<String, Value>,
    events: Vec<Value>,
    invoices: Vec<Value>,
    /// PaymentIntent → the invoice it paid (Stripe's InvoicePayments).
    invoice_payments: HashMap<String, String>,
    prices: Vec<Value>,
    webhook_endpoints: Vec<Value>,
    /// Subscriptions an invoice preview is made for, by id.
    subscriptions: HashMap<String, Value>,
    portal_configurations: Vec<Value>,
    /// What Stripe Tax adds to a sale, in basis points of its amount.
    tax_bps: i64,
    answered: HashMap<String, Value>,
    next_id: u64,
}

/// A fake Stripe account's objects, served over HTTP ([`FakeAccount::mount`]).
#[derive(Clone, Default)]
pub struct FakeAccount {
    held: Arc<Mutex<Held>>,
}

/// Stripe's error answer: a status and its error object.
struct Refused {
    status: u16,
    body: Value,
}

impl From<Refused> for ResponseTemplate {
    fn from(r: Refused) -> Self {
        ResponseTemplate::new(r.status).set_body_json(r.body)
    }
}

fn error(status: u16, kind: &str, code: Option<&str>, message: String) -> Refused {
    Refused {
        status,
        body: json!({ "error": { "type": kind, "code": code, "message": message } }),
    }
}

fn missing(kind: &str, id: &str) -> Refused {
    error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        format!("No such {kind}: '{id}'"),
    )
}

fn form_of(req: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(&req.body).into_owned().collect()
}

fn list(url: &str, data: Vec<Value>) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({ "object": "list", "url": url, "has_more": false, "data": data }))
}

impl FakeAccount {
    /// Serves the account from `server` (for every path it holds; others fall through).
    pub async fn mount(server: &wiremock::MockServer) -> Self {
        let account = Self::default();
        let held = r"^/v1/(checkout/sessions(/[^/]+(/expire|/line_items)?)?|payment_intents(/[^/]+)?|refunds|billing/meter_events|events(/[^/]+)?|invoices|invoice_payments|prices(/[^/]+)?|products|webhook_endpoints|billing_portal/(sessions|configurations)|invoices/create_preview|tax/calculations)$";
        wiremock::Mock::given(wiremock::matchers::path_regex(held))
            .respond_with(account.clone())
            .mount(server)
            .await;
        account
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The account holds `session` (a `checkout.session`), which sold `items`.
    pub fn put_session(&self, session: &Value, items: &[(&str, i64)]) {
        let id = session["id"].as_str().unwrap_or_default().to_owned();
        let mut h = self.held();
        h.line_items.insert(
            id.clone(),
            items.iter().map(|(p, q)| (p.to_string(), *q)).collect(),
        );
        h.sessions.insert(id, session.clone());
    }

    /// The account holds `payment_intent` (its `amount_received` is what may be refunded).
    pub fn put_payment_intent(&self, payment_intent: &Value) {
        let id = payment_intent["id"].as_str().unwrap_or_default().to_owned();
        self.held()
            .payment_intents
            .insert(id, payment_intent.clone());
    }

    /// Stripe stores `event`.
    pub fn put_event(&self, event: &Value) {
        self.held().events.push(event.clone());
    }

    /// The account holds `invoice`; each PaymentIntent in `payment_intents` paid it.
    pub fn put_invoice(&self, invoice: &Value, payment_intents: &[&str]) {
        let id = invoice["id"].as_str().unwrap_or_default().to_owned();
        let mut h = self.held();
        for pi in payment_intents {
            h.invoice_payments.insert(pi.to_string(), id.clone());
        }
        h.invoices.push(invoice.clone());
    }

    /// The account holds `subscription` (for the invoice previews of its changes).
    pub fn put_subscription(&self, subscription: &Value) {
        let id = subscription["id"].as_str().unwrap_or_default().to_owned();
        self.held().subscriptions.insert(id, subscription.clone());
    }

    /// The account has an active Billing Portal configuration `id`.
    pub fn put_portal_configuration(&self, id: &str) {
        let config = object(
            "billing_portal.configuration",
            json!({ "id": id, "active": true }),
        );
        self.held().portal_configurations.push(config);
    }

    /// Stripe Tax adds `bps` basis points of each sale's amount.
    pub fn set_tax_rate_bps(&self, bps: i64) {
        self.held().tax_bps = bps;
    }

    /// The meter events counted (one per identifier).
    pub fn meter_events(&self) -> Vec<Value> {
        self.held().meter_events.values().cloned().collect()
    }

    /// The refunds made, in order.
    pub fn refunds(&self) -> Vec<Value> {
        self.held().refunds.clone()
    }

    fn post(&self, path: &str, req: &Request) -> ResponseTemplate {
        let key = req
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if let Some(first) = self.held().answered.get(&key) {
            return ResponseTemplate::new(200).set_body_json(first.clone());
        }
        let form = form_of(req);
        let answer = match path {
            "payment_intents" => {
                let pi = payment_intent_for(req);
                let id = pi["id"].as_str().unwrap_or_default().to_owned();
                self.held().payment_intents.insert(id, pi.clone());
                Ok(pi)
            }
            "refunds" => self.refund(&form, &key),
            "checkout/sessions" => Ok(self.create_session(req, &form)),
            "products" => {
                let mut h = self.held();
                h.next_id += 1;
                let id = format!("prod_test_{}", h.next_id);
                Ok(object(
                    "product",
                    json!({ "id": id, "name": form.get("name") }),
                ))
            }
            "prices" => self.create_price(&form),
            "billing_portal/sessions" => {
                let mut h = self.held();
                h.next_id += 1;
                let id = format!("bps_test_{}", h.next_id);
                Ok(object(
                    "billing_portal.session",
                    json!({ "id": id, "url": format!("https://billing.stripe.com/p/session/{id}"),
                            "customer": form.get("customer"), "return_url": form.get("return_url") }),
                ))
            }
            "invoices/create_preview" => self.preview(&form),
            "tax/calculations" => {
                let mut h = self.held();
                h.next_id += 1;
                let amount: i64 = form
                    .get("line_items[0][amount]")
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0);
                // Stripe Tax's line amount is the line's total, not a unit price.
                let tax = amount * h.tax_bps / 10_000;
                Ok(object(
                    "tax.calculation",
                    json!({ "id": format!("taxcalc_test_{}", h.next_id), "currency": form.get("currency"),
                            "amount_total": amount + tax, "tax_amount_exclusive": tax,
                            "tax_amount_inclusive": 0 }),
                ))
            }
            "webhook_endpoints" => {
                let mut h = self.held();
                h.next_id += 1;
                // Repeated keys (`enabled_events[]`), in the order sent.
                let events: Vec<String> = form_urlencoded::parse(&req.body)
                    .filter(|(k, _)| k == "enabled_events[]")
                    .map(|(_, v)| v.into_owned())
                    .collect();
                let endpoint = object(
                    "webhook_endpoint",
                    json!({ "id": format!("we_test_{}", h.next_id), "url": form.get("url"),
                            "api_version": form.get("api_version"), "enabled_events": events,
                            "status": "enabled", "secret": "whsec_shown_once" }),
                );
                h.webhook_endpoints.push(endpoint.clone());
                Ok(endpoint)
            }
            "billing/meter_events" => {
                let identifier = form.get("identifier").cloned().unwrap_or_default();
                let event = object(
                    "billing.meter_event",
                    json!({ "event_name": form.get("event_name"), "identifier": identifier,
                            "payload": { "stripe_customer_id": form.get("payload[stripe_customer_id]"),
                                         "value": form.get("payload[value]") } }),
                );
                let mut h = self.held();
                let counted = h.meter_events.entry(identifier).or_insert(event);
                Ok(counted.clone())
            }
            _ => match path
                .strip_prefix("checkout/sessions/")
                .map(|p| p.split('/'))
            {
                Some(mut parts) => {
                    let id = parts.next().unwrap_or_default();
                    self.expire(id)
                }
                None => Err(missing("object", path)),
            },
        };
        match answer {
            Ok(body) => {
                if !key.is_empty() {
                    self.held().answered.insert(key, body.clone());
                }
                ResponseTemplate::new(200).set_body_json(body)
            }
            Err(refused) => refused.into(),
        }
    }

    /// The invoice a subscription's change would bring: the new price's unit amount times the
    /// new seats; a subscription it does not hold is missing, another customer's refused.
    fn preview(&self, form: &HashMap<String, String>) -> Result<Value, Refused> {
        let h = self.held();
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        let (customer, sub_id) = (field("customer"), field("subscription"));
        let sub = h.subscriptions.get(&sub_id).ok_or_else(|| {
            error(
                400,
                "invalid_request_error",
                Some("resource_missing"),
                format!("No such subscription: '{sub_id}'"),
            )
        })?;
        if sub["customer"] != customer.as_str() {
            return Err(error(
                400,
                "invalid_request_error",
                None,
                format!("The subscription '{sub_id}' does not belong to '{customer}'"),
            ));
        }
        let price = field("subscription_details[items][0][price]");
        let quantity: i64 = field("subscription_details[items][0][quantity]")
            .parse()
            .unwrap_or(1);
        Ok(crate::subscription_change_preview(
            &customer, sub, &h.prices, &price, quantity,
        ))
    }

    /// A price; Stripe keeps a lookup key on one price (another needs
    /// `transfer_lookup_key`).
    fn create_price(&self, form: &HashMap<String, String>) -> Result<Value, Refused> {
        let mut h = self.held();
        let lookup_key = form.get("lookup_key").cloned();
        if let Some(key) = &lookup_key
            && h.prices.iter().any(|p| p["lookup_key"] == key.as_str())
        {
            return Err(error(
                400,
                "invalid_request_error",
                None,
                format!("A price (`lookup_key`: '{key}') already uses that lookup key."),
            ));
        }
        h.next_id += 1;
        let recurring = form
            .get("recurring[interval]")
            .map(|i| json!({ "interval": i, "interval_count": 1, "usage_type": "licensed" }));
        let amount: Option<i64> = form.get("unit_amount").and_then(|a| a.parse().ok());
        let mut price = object(
            "price",
            json!({ "id": format!("price_test_{}", h.next_id), "product": form.get("product"),
                    "unit_amount": amount, "currency": form.get("currency"),
                    "lookup_key": lookup_key, "active": true,
                    "type": if recurring.is_some() { "recurring" } else { "one_time" } }),
        );
        price["recurring"] = recurring.unwrap_or(Value::Null);
        h.prices.push(price.clone());
        Ok(price)
    }

    /// An open Checkout Session selling the posted line items, its id derived from the
    /// `Idempotency-Key`.
    fn create_session(&self, req: &Request, form: &HashMap<String, String>) -> Value {
        use sha2::Digest;
        let key = req
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let id = format!("cs_test_{}", hex::encode(&sha2::Sha256::digest(key)[..12]));
        let items: Vec<(String, i64)> = (0..)
            .map_while(|i| {
                let price = form.get(&format!("line_items[{i}][price]"))?;
                let quantity = form
                    .get(&format!("line_items[{i}][quantity]"))
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1);
                Some((price.clone(), quantity))
            })
            .collect();
        let mut session = object(
            "checkout.session",
            json!({ "id": id, "status": "open", "payment_status": "unpaid",
                    "url": format!("https://checkout.stripe.com/c/pay/{id}"),
                    "mode": form.get("mode"), "customer": form.get("customer"),
                    "customer_email": form.get("customer_email"),
                    "client_reference_id": form.get("client_reference_id") }),
        );
        session["metadata"] = form
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((name.to_owned(), Value::from(v.clone())))
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        let mut h = self.held();
        h.line_items.insert(id.clone(), items);
        h.sessions.insert(id, session.clone());
        session
    }

    fn expire(&self, id: &str) -> Result<Value, Refused> {
        let mut h = self.held();
        let session = h
            .sessions
            .get_mut(id)
            .ok_or_else(|| missing("checkout.session", id))?;
        if session["status"] != "open" {
            return Err(error(
                400,
                "invalid_request_error",
                None,
                format!(
                    "Only Checkout Sessions with a status in [\"open\"] can be expired: '{id}'"
                ),
            ));
        }
        session["status"] = "expired".into();
        session["url"] = Value::Null;
        Ok(session.clone())
    }

    fn refund(&self, form: &HashMap<String, String>, key: &str) -> Result<Value, Refused> {
        let mut h = self.held();
        let pi_id = form.get("payment_intent").cloned().unwrap_or_default();
        let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
        let pi = h.payment_intents.get(&pi_id).ok_or_else(|| {
            error(
                400,
                "invalid_request_error",
                Some("resource_missing"),
                format!("No such payment_intent: '{pi_id}'"),
            )
        })?;
        let received = pi["amount_received"].as_i64().unwrap_or(0);
        let refunded: i64 = h
            .refunds
            .iter()
            .filter(|r| r["payment_intent"] == pi_id.as_str())
            .filter_map(|r| r["amount"].as_i64())
            .sum();
        if received == 0 {
            return Err(error(
                400,
                "invalid_request_error",
                None,
                format!(
                    "This PaymentIntent ({pi_id}) does not have a successful charge to refund."
                ),
            ));
        }
        if amount > received - refunded {
            return Err(error(
                400,
                "invalid_request_error",
                None,
                format!(
                    "Refund amount ({amount}) is greater than unrefunded amount on charge ({})",
                    received - refunded
                ),
            ));
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let refund = object(
            "refund",
            json!({ "id": format!("re_test_{}", hex::encode(&digest[..12])), "amount": amount,
                    "payment_intent": pi_id, "status": "succeeded" }),
        );
        h.refunds.push(refund.clone());
        Ok(refund)
    }

    fn get(&self, path: &str, req: &Request) -> ResponseTemplate {
        let h = self.held();
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["checkout", "sessions", id] => match h.sessions.get(*id) {
                Some(s) => ResponseTemplate::new(200).set_body_json(s.clone()),
                None => missing("checkout.session", id).into(),
            },
            ["checkout", "sessions", id, "line_items"] => match h.line_items.get(*id) {
                Some(items) => {
                    let data = items
                        .iter()
                        .map(|(price, quantity)| {
                            object(
                                "item",
                                json!({ "price": { "id": price }, "quantity": quantity }),
                            )
                        })
                        .collect();
                    list(&format!("/v1/checkout/sessions/{id}/line_items"), data)
                }
                None => missing("checkout.session", id).into(),
            },
            ["payment_intents", id] => match h.payment_intents.get(*id) {
                Some(pi) => ResponseTemplate::new(200).set_body_json(pi.clone()),
                None => missing("payment_intent", id).into(),
            },
            ["events", id] => match h.events.iter().find(|e| e["id"] == *id) {
                Some(e) => ResponseTemplate::new(200).set_body_json(e.clone()),
                None => missing("event", id).into(),
            },
            ["events"] => wiremock::Respond::respond(&EventsApi(h.events.clone()), req),
            ["invoices"] => wiremock::Respond::respond(&InvoicesApi(h.invoices.clone()), req),
            ["invoice_payments"] => {
                let pi = req
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "payment[payment_intent]")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let data = h
                    .invoice_payments
                    .get(&pi)
                    .map(|invoice| {
                        object(
                            "invoice_payment",
                            json!({ "invoice": invoice, "status": "paid",
                                "payment": { "type": "payment_intent", "payment_intent": pi } }),
                        )
                    })
                    .into_iter()
                    .collect();
                list("/v1/invoice_payments", data)
            }
            ["prices"] => {
                let keys: Vec<String> = req
                    .url
                    .query_pairs()
                    .filter(|(k, _)| k == "lookup_keys[]")
                    .map(|(_, v)| v.into_owned())
                    .collect();
                let data = h
                    .prices
                    .iter()
                    .filter(|p| {
                        keys.is_empty() || keys.iter().any(|k| p["lookup_key"] == k.as_str())
                    })
                    .filter(|p| p["active"] == true)
                    .cloned()
                    .collect();
                list("/v1/prices", data)
            }
            ["prices", id] => match h.prices.iter().find(|p| p["id"] == *id) {
                Some(p) => ResponseTemplate::new(200).set_body_json(p.clone()),
                None => missing("price", id).into(),
            },
            ["webhook_endpoints"] => list("/v1/webhook_endpoints", h.webhook_endpoints.clone()),
            ["billing_portal", "configurations"] => {
                let active_only = req
                    .url
                    .query_pairs()
                    .any(|(k, v)| k == "active" && v == "true");
                let data = h
                    .portal_configurations
                    .iter()
                    .filter(|c| !active_only || c["active"] == true)
                    .cloned()
                    .collect();
                list("/v1/billing_portal/configurations", data)
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

impl wiremock::Respond for FakeAccount {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path().trim_start_matches("/v1/").to_owned();
        match req.method == wiremock::http::Method::POST {
            true => self.post(&path, req),
            false => self.get(&path, req),
        }
    }
}
