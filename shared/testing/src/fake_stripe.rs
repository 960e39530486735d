//! A fake Stripe API for tests, answering with Stripe's official fixture objects, and
//! refusing, before any other answer, every request whose parameters Stripe's own
//! definitions refuse ([`strict_stripe`], [`crate::stripe_definitions`]).

use crate::stripe_definitions::definitions;
use crate::{fixture, object};
use serde_json::json;

/// Answers first (priority 1, before any mock a test mounts) every request that Stripe's
/// definitions refuse, with Stripe's error; other requests fall through to the mocks.
pub struct StrictStripe {
    /// The test that started the server (its thread's name), for the coverage log.
    by: String,
}

impl StrictStripe {
    /// The checker for a fake Stripe that `by` starts (named in the coverage log).
    pub fn new(by: &str) -> Self {
        Self { by: by.to_owned() }
    }
}

fn checked(request: &wiremock::Request) -> Result<(), crate::stripe_definitions::Refusal> {
    definitions()
        .check(
            request.method.as_str(),
            request.url.path(),
            request.url.query().unwrap_or(""),
            &request.body,
        )
        .map(|_| ())
}

impl wiremock::Match for StrictStripe {
    fn matches(&self, request: &wiremock::Request) -> bool {
        let result = checked(request);
        log_check(&self.by, request, &result);
        result.is_err()
    }
}

/// One line per checked request in `STRIPE_CHECK_LOG` (set by `infra/test.sh`), which
/// `infra/stripe_params.py --coverage` reads to show that every endpoint the project calls
/// went through the checker (same format as the Python fakes write).
fn log_check(
    by: &str,
    request: &wiremock::Request,
    result: &Result<(), crate::stripe_definitions::Refusal>,
) {
    use std::io::Write;
    let Some(log) = std::env::var_os("STRIPE_CHECK_LOG") else {
        return;
    };
    let method = request.method.as_str().to_uppercase();
    let path = request.url.path();
    let endpoint = definitions().route(&method, path).unwrap_or(path);
    let verdict = match result {
        Ok(()) => "ok".to_owned(),
        Err(r) => format!("refused {}", r.code().unwrap_or("unrecognized")),
    };
    let line = format!("{by}\t{method}\t{endpoint}\t{verdict}\n");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

impl wiremock::Respond for StrictStripe {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        match checked(request) {
            Err(refusal) => {
                tracing::warn!(path = request.url.path(), refusal = %refusal.body, "the fake Stripe refused a request");
                wiremock::ResponseTemplate::new(refusal.status).set_body_json(refusal.body)
            }
            Ok(()) => wiremock::ResponseTemplate::new(500),
        }
    }
}

/// A fake Stripe on a free loopback port that answers nothing yet but refuses what Stripe
/// refuses; tests mount their own answers on it.
pub async fn strict_stripe() -> wiremock::MockServer {
    // Loaded here, not by the first request: under load, loading them inside a request could
    // outlast a test's short client timeout and read as Stripe being unreachable.
    definitions();
    let server = wiremock::MockServer::start().await;
    let by = || StrictStripe {
        by: std::thread::current().name().unwrap_or("a test").to_owned(),
    };
    wiremock::Mock::given(by())
        .respond_with(by())
        .with_priority(1)
        .mount(&server)
        .await;
    server
}

/// A fake Stripe API on a free loopback port, answering with the official fixtures: a new
/// Checkout Session `session_id` (open, with its hosted URL) and the expiry of any session, a
/// Billing Portal session, an
/// empty page of events, and PaymentIntents and refunds made from the form posted (their
/// ids derived from the `Idempotency-Key`, so a retried request gets the same object, as
/// from Stripe). Subscriptions are held by [`FakeSubscriptions`], mounted by the tests that
/// need them. Tests point `STRIPE_API_BASE` at its `uri()` and may mount more;
/// `received_requests()` shows what was asked.
pub async fn fake_stripe(session_id: &str) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = strict_stripe().await;
    let session = object(
        "checkout.session",
        json!({
            "id": session_id,
            "url": format!("https://checkout.stripe.com/c/pay/{session_id}"),
            "status": "open",
        }),
    );
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(session))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path_regex(
            r"^/v1/checkout/sessions/[^/]+/expire$",
        ))
        .respond_with(|req: &wiremock::Request| {
            let id = req.url.path().split('/').nth(4).unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(object(
                "checkout.session",
                json!({ "id": id, "status": "expired", "url": null }),
            ))
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("billing_portal.session")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(|req: &wiremock::Request| {
            ResponseTemplate::new(200).set_body_json(payment_intent_for(req))
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(|req: &wiremock::Request| {
            ResponseTemplate::new(200).set_body_json(refund_for(req))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "object": "list", "data": [], "has_more": false, "url": "/v1/events" }),
        ))
        .mount(&server)
        .await;
    server
}

/// The subscriptions a fake Stripe holds, as Stripe holds them now: `GET
/// /v1/subscriptions/{id}` answers the object last [`put`](Self::put) (404
/// `resource_missing` for one never put). Tests change it as Stripe would (a switch, a
/// cancellation) and send the events that say so, in any order. `POST
/// /v1/subscriptions/{id}` with `items[0][id]`, `items[0][price]` and `items[0][quantity]`
/// moves that item to the price and seats, as a plan switch does; `cancel_at_period_end`
/// sets (with `cancel_at` at the period end) or clears the scheduled end; a retried POST (same `Idempotency-Key`) gets the first
/// answer back, and an item id that is not the subscription's is a 400, as from Stripe.
#[derive(Clone, Default)]
pub struct FakeSubscriptions {
    held: Shared<serde_json::Value>,
    answered: Shared<serde_json::Value>,
}

type Shared<T> = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, T>>>;

fn error(status: u16, code: &str, message: String) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(status).set_body_json(json!({ "error": {
        "type": "invalid_request_error", "code": code, "message": message } }))
}

impl FakeSubscriptions {
    /// Serves the subscriptions from `server` (mounted before any catch-all).
    pub async fn mount(server: &wiremock::MockServer) -> Self {
        let held = Self::default();
        wiremock::Mock::given(wiremock::matchers::path_regex("^/v1/subscriptions/[^/]+$"))
            .respond_with(held.clone())
            .mount(server)
            .await;
        held
    }

    /// Stripe now holds `subscription` (by its id).
    pub fn put(&self, subscription: &serde_json::Value) {
        let id = subscription["id"].as_str().unwrap_or_default().to_owned();
        self.held.lock().unwrap().insert(id, subscription.clone());
    }

    /// The subscription as held now.
    pub fn get(&self, id: &str) -> Option<serde_json::Value> {
        self.held.lock().unwrap().get(id).cloned()
    }

    fn switch(&self, id: &str, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut answered = self.answered.lock().unwrap();
        if let Some(first) = answered.get(&key) {
            return wiremock::ResponseTemplate::new(200).set_body_json(first.clone());
        }
        let Some(mut sub) = self.get(id) else {
            return error(
                404,
                "resource_missing",
                format!("No such subscription: '{id}'"),
            );
        };
        let form = form_of(request);
        let item = &mut sub["items"]["data"][0];
        let names_item = form.keys().any(|k| k.starts_with("items["));
        if names_item && form.get("items[0][id]").map(String::as_str) != item["id"].as_str() {
            return error(400, "resource_missing", "No such subscription item".into());
        }
        if let Some(price) = form.get("items[0][price]") {
            item["price"]["id"] = price.as_str().into();
        }
        if let Some(quantity) = form.get("items[0][quantity]") {
            item["quantity"] = quantity.parse::<i64>().unwrap_or(1).into();
        }
        match form.get("cancel_at_period_end").map(String::as_str) {
            Some("true") => {
                sub["cancel_at_period_end"] = true.into();
                let end = sub["items"]["data"][0]["current_period_end"].clone();
                sub["cancel_at"] = end;
            }
            Some("false") => {
                sub["cancel_at_period_end"] = false.into();
                sub["cancel_at"] = serde_json::Value::Null;
            }
            _ => {}
        }
        if form.get("cancel_at").is_some_and(|v| v.is_empty()) {
            sub["cancel_at"] = serde_json::Value::Null;
        }
        self.put(&sub);
        answered.insert(key, sub.clone());
        wiremock::ResponseTemplate::new(200).set_body_json(sub)
    }
}

impl wiremock::Respond for FakeSubscriptions {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let id = request.url.path().rsplit('/').next().unwrap_or_default();
        if request.method == wiremock::http::Method::POST {
            return self.switch(id, request);
        }
        match self.get(id) {
            Some(sub) => wiremock::ResponseTemplate::new(200).set_body_json(sub),
            None => error(
                404,
                "resource_missing",
                format!("No such subscription: '{id}'"),
            ),
        }
    }
}

/// The posted form as name → value.
fn form_of(req: &wiremock::Request) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(&req.body).into_owned().collect()
}

/// An id of `prefix` derived from the request's `Idempotency-Key`.
fn id_for(prefix: &str, req: &wiremock::Request) -> String {
    use sha2::Digest;
    let key = req
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("{prefix}_test_{}", hex::encode(&digest[..12]))
}

/// The official PaymentIntent fixture, as Stripe would create it from the posted form.
pub fn payment_intent_for(req: &wiremock::Request) -> serde_json::Value {
    let form = form_of(req);
    let id = id_for("pi", req);
    let metadata: serde_json::Map<String, serde_json::Value> = form
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name.to_owned(), v.clone().into()))
        })
        .collect();
    let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut pi = object(
        "payment_intent",
        json!({
            "id": id,
            "amount": amount,
            "amount_received": 0,
            "currency": form.get("currency").cloned().unwrap_or_else(|| "usd".into()),
            "customer": form.get("customer").cloned(),
            "client_secret": format!("{id}_secret_fake"),
            "status": "requires_payment_method",
            "last_payment_error": serde_json::Value::Null,
        }),
    );
    pi["metadata"] = metadata.into();
    pi
}

/// The official refund fixture, as Stripe would create it from the posted form.
pub fn refund_for(req: &wiremock::Request) -> serde_json::Value {
    let form = form_of(req);
    let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
    object(
        "refund",
        json!({
            "id": id_for("re", req),
            "amount": amount,
            "payment_intent": form.get("payment_intent").cloned(),
            "status": "succeeded",
        }),
    )
}

/// Stripe's `/v1/events` over a fixed set of events, as Stripe pages it: newest first (by
/// `created`, then id), filtered by `created[gte]`, `created[lte]` and `types[]`, 100 (or
/// `limit`) a page after `starting_after`. Mount it with `respond_with`.
pub struct EventsApi(pub Vec<serde_json::Value>);

impl wiremock::Respond for EventsApi {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let pairs: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        let one = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let number = |name: &str| one(name).and_then(|v| v.parse::<i64>().ok());
        let types: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "types[]")
            .map(|(_, v)| v.as_str())
            .collect();
        let created = |e: &serde_json::Value| e["created"].as_i64().unwrap_or(0);
        let mut listed: Vec<&serde_json::Value> = self
            .0
            .iter()
            .filter(|e| number("created[gte]").is_none_or(|t| created(e) >= t))
            .filter(|e| number("created[lte]").is_none_or(|t| created(e) <= t))
            .filter(|e| types.is_empty() || types.contains(&e["type"].as_str().unwrap_or("")))
            .collect();
        listed.sort_by(|a, b| (created(b), b["id"].as_str()).cmp(&(created(a), a["id"].as_str())));
        if let Some(after) = one("starting_after") {
            let at = listed.iter().position(|e| e["id"] == after.as_str());
            listed = listed.split_off(at.map_or(listed.len(), |i| i + 1));
        }
        let limit = number("limit").unwrap_or(10).clamp(1, 100) as usize;
        let has_more = listed.len() > limit;
        listed.truncate(limit);
        wiremock::ResponseTemplate::new(200).set_body_json(
            json!({ "object": "list", "url": "/v1/events", "has_more": has_more, "data": listed }),
        )
    }
}

/// Stripe's `GET /v1/invoices` over a fixed set of invoices, as Stripe lists them: only the
/// `customer` asked for, newest first (by `created`, then id), `limit` (default 10) a page
/// after `starting_after`. Mount it with `respond_with`.
pub struct InvoicesApi(pub Vec<serde_json::Value>);

impl wiremock::Respond for InvoicesApi {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let pairs: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        let one = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let customer = one("customer");
        let created = |i: &serde_json::Value| i["created"].as_i64().unwrap_or(0);
        let mut listed: Vec<&serde_json::Value> = self
            .0
            .iter()
            .filter(|i| customer.as_deref().is_none_or(|c| i["customer"] == c))
            .collect();
        listed.sort_by(|a, b| (created(b), b["id"].as_str()).cmp(&(created(a), a["id"].as_str())));
        if let Some(after) = one("starting_after") {
            let at = listed.iter().position(|i| i["id"] == after.as_str());
            listed = listed.split_off(at.map_or(listed.len(), |i| i + 1));
        }
        let limit = one("limit")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(10)
            .clamp(1, 100);
        let has_more = listed.len() > limit;
        listed.truncate(limit);
        wiremock::ResponseTemplate::new(200).set_body_json(
            json!({ "object": "list", "url": "/v1/invoices", "has_more": has_more, "data": listed }),
        )
    }
}
