//! The local stand-in for Stripe that `make dev` serves when no Stripe key is configured, so
//! a newcomer's first purchase works end to end with no Stripe account
//! (docs/local-development.md, "Buy something").
//!
//! It is the tests' fake Stripe, not another one: every request it receives first goes
//! through [`StrictStripe`], which checks it against Stripe's own parameter definitions
//! (`billing_testing::stripe_definitions`) and answers what Stripe would refuse with
//! Stripe's error; its objects and events are the vendored official fixtures
//! (`shared/testdata/stripe/fixtures3.json`) with the session's own values merged in.
//!
//! It sells every plan of the catalog through Checkout: the functions get a test-mode key,
//! `STRIPE_API_BASE` pointing here and a stand-in price for each plan. Its checkout page says
//! it is a stand-in; its "Pay" builds `checkout.session.completed` for the session (and, for
//! a subscription, `customer.subscription.created` and the first `invoice.paid`, holding the
//! subscription for `GET /v1/subscriptions/{id}`), signs each with the stack's webhook
//! secret, posts them in order to the stack's own webhook route, then redirects to the
//! session's `success_url`, as Stripe does. Later changes to a subscription (cancel, resume,
//! seats) are answered but send no event: Stripe's test mode does that.

use billing_core::domain::catalog::{Catalog, Mode, Plan};
use billing_testing::{
    EventsApi, FakeSubscriptions, InvoicesApi, StrictStripe, event, object, signature,
    subscription_invoice,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// What the banner and the checkout page say it is.
pub const LABEL: &str = "local stand-in, no real payment";
/// The test-mode key the functions get with the stand-in; Stripe itself knows no such key.
pub const KEY: &str = "sk_test_local_stand_in";
/// Turns the stand-in off (`STRIPE_STAND_IN=off`): no key then means no checkout, as in a
/// deployment without one.
pub const SWITCH: &str = "STRIPE_STAND_IN";

/// The stand-in, serving on a loopback port until dropped.
pub struct StandIn {
    server: MockServer,
    prices: Vec<(String, String)>,
    /// Whose definitions it checks requests against (`stripe 16.1.0`).
    definitions: String,
}

/// Whether `make dev` serves the stand-in: no Stripe key configured and not switched off.
pub fn wanted(env: &HashMap<String, String>) -> bool {
    let set = |name: &str| env.get(name).is_some_and(|v| !v.trim().is_empty());
    !set("STRIPE_SECRET_KEY") && env.get(SWITCH).is_none_or(|v| v.trim() != "off")
}

impl StandIn {
    /// Starts the stand-in for `catalog`; "Pay" posts the signed event to `webhook_url`.
    pub async fn start(catalog: &Catalog, webhook_url: &str, webhook_secret: &str) -> Self {
        let server = MockServer::start().await;
        let base = server.uri();
        let plans: HashMap<String, Plan> =
            catalog.plans().map(|p| (price_of(p), p.clone())).collect();
        let mut prices: Vec<(String, String)> = plans
            .iter()
            .map(|(price, p)| (p.id.to_string(), price.clone()))
            .collect();
        // A plan with a metered price gets a stand-in one too, so it stays sellable.
        prices.extend(
            catalog
                .plans()
                .filter(|p| p.metered_price.is_some())
                .map(|p| {
                    (
                        p.metered_env_suffix().to_ascii_lowercase(),
                        format!("{}_metered", price_of(p)),
                    )
                }),
        );
        prices.sort();
        let subscriptions = FakeSubscriptions::mount(&server).await;
        let checkouts = Checkouts {
            base: base.clone(),
            subscriptions,
            plans: Arc::new(plans),
            sessions: Arc::default(),
            portals: Arc::default(),
            webhook_url: webhook_url.to_owned(),
            webhook_secret: webhook_secret.to_owned(),
        };
        let by = "make dev (the local stand-in)";
        Mock::given(path_regex("^/v1/"))
            .and(StrictStripe::new(by))
            .respond_with(StrictStripe::new(by))
            .with_priority(1)
            .mount(&server)
            .await;
        let routes: [(&str, &str, Route); 9] = [
            ("POST", r"^/v1/checkout/sessions$", Route::CreateSession),
            ("GET", r"^/v1/checkout/sessions/[^/]+$", Route::GetSession),
            (
                "GET",
                r"^/v1/checkout/sessions/[^/]+/line_items$",
                Route::LineItems,
            ),
            (
                "POST",
                r"^/v1/checkout/sessions/[^/]+/expire$",
                Route::Expire,
            ),
            (
                "POST",
                r"^/v1/billing_portal/sessions$",
                Route::CreatePortal,
            ),
            ("GET", r"^/c/pay/[^/]+$", Route::CheckoutPage),
            ("POST", r"^/c/pay/[^/]+$", Route::Pay),
            ("GET", r"^/p/session/[^/]+$", Route::PortalPage),
            ("GET", r"^/$", Route::Home),
        ];
        for (verb, pattern, route) in routes {
            Mock::given(method(verb))
                .and(path_regex(pattern))
                .respond_with(Handler(checkouts.clone(), route))
                .mount(&server)
                .await;
        }
        Mock::given(method("GET"))
            .and(path("/v1/invoices"))
            .respond_with(InvoicesApi(Vec::new()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/events"))
            .respond_with(EventsApi(Vec::new()))
            .mount(&server)
            .await;
        // Anything else Stripe has but the stand-in does not do: said plainly.
        Mock::given(path_regex("^/v1/"))
            .respond_with(|r: &Request| {
                stripe_error(
                    404,
                    "resource_missing",
                    format!(
                        "The {LABEL} does not do {} {}; use Stripe's test mode for it \
                         (docs/local-development.md).",
                        r.method,
                        r.url.path()
                    ),
                )
            })
            .with_priority(10)
            .mount(&server)
            .await;
        Self {
            server,
            prices,
            definitions: String::new(),
        }
    }

    /// Where it serves: the functions' `STRIPE_API_BASE`.
    pub fn base(&self) -> String {
        self.server.uri()
    }

    /// The variables the functions get from it: the test key, the API base and a price for
    /// each plan it sells.
    pub fn environment(&self) -> Vec<(String, String)> {
        let prices = self
            .prices
            .iter()
            .map(|(plan, price)| format!("{plan}={price}"))
            .collect::<Vec<_>>()
            .join(",");
        vec![
            ("STRIPE_SECRET_KEY".into(), KEY.into()),
            ("STRIPE_API_BASE".into(), self.base()),
            ("STRIPE_PRICES".into(), prices),
        ]
    }
}

fn price_of(plan: &Plan) -> String {
    format!("price_standin_{}", plan.id)
}

#[derive(Clone)]
struct Checkouts {
    base: String,
    /// The plans it sells, by their stand-in price.
    plans: Arc<HashMap<String, Plan>>,
    /// Each session as Stripe would hold it now, by id.
    sessions: Arc<Mutex<HashMap<String, Value>>>,
    /// The subscriptions it holds, as `GET /v1/subscriptions/{id}` answers them.
    subscriptions: FakeSubscriptions,
    /// Each billing portal session's return URL, by id.
    portals: Arc<Mutex<HashMap<String, String>>>,
    webhook_url: String,
    webhook_secret: String,
}

#[derive(Clone, Copy)]
enum Route {
    CreateSession,
    GetSession,
    LineItems,
    Expire,
    CreatePortal,
    CheckoutPage,
    Pay,
    PortalPage,
    Home,
}

struct Handler(Checkouts, Route);

impl Respond for Handler {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let c = &self.0;
        let segment = |i: usize| request.url.path().split('/').nth(i).unwrap_or_default();
        match self.1 {
            Route::CreateSession => c.create_session(&form_of(request)),
            Route::GetSession => c.answer(segment(4), public),
            Route::LineItems => c.answer(segment(4), line_items),
            Route::Expire => c.expire(segment(4)),
            Route::CreatePortal => c.create_portal(&form_of(request)),
            Route::CheckoutPage => c.checkout_page(segment(3)),
            Route::Pay => c.pay(segment(3)),
            Route::PortalPage => c.portal_page(segment(3)),
            Route::Home => page(
                LABEL,
                "<p>This stands in for Stripe while no Stripe key is configured.</p>",
            ),
        }
    }
}

impl Checkouts {
    /// `POST /v1/checkout/sessions` in payment mode for one of its prices, as Stripe creates
    /// it: open, with its hosted URL (here, the stand-in's checkout page).
    fn create_session(&self, form: &HashMap<String, String>) -> ResponseTemplate {
        let price = form
            .get("line_items[0][price]")
            .map(String::as_str)
            .unwrap_or("");
        let Some(plan) = self.plans.get(price) else {
            return stripe_error(400, "resource_missing", format!("No such price: '{price}'"));
        };
        let mode = match plan.mode {
            Mode::Payment => "payment",
            Mode::Subscription => "subscription",
        };
        if form.get("mode").map(String::as_str) != Some(mode) {
            return stripe_error(
                400,
                "parameter_invalid",
                format!("The price {price} is sold in {mode} mode."),
            );
        }
        let quantity: i64 = form
            .get("line_items[0][quantity]")
            .and_then(|q| q.parse().ok())
            .unwrap_or(1);
        let id = format!("cs_test_standin_{}", uuid::Uuid::new_v4().simple());
        let now = chrono::Utc::now().timestamp();
        let mut session = object(
            "checkout.session",
            json!({
                "id": id,
                "object": "checkout.session",
                "url": format!("{}/c/pay/{id}", self.base),
                "status": "open",
                "payment_status": "unpaid",
                "mode": mode,
                "livemode": false,
                "created": now,
                "expires_at": now + 24 * 3600,
                "success_url": form.get("success_url"),
                "cancel_url": form.get("cancel_url"),
                "client_reference_id": form.get("client_reference_id"),
                "customer": form.get("customer"),
                "customer_email": form.get("customer_email"),
                "amount_subtotal": plan.amount * quantity,
                "amount_total": plan.amount * quantity,
                "currency": plan.currency,
                "payment_intent": Value::Null,
            }),
        );
        // `metadata` replaces rather than merges: the fixture's own keys must not leak in.
        session["metadata"] = form
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((name.to_owned(), Value::from(v.as_str())))
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        let subscription_metadata: serde_json::Map<String, Value> = form
            .iter()
            .filter_map(|(k, v)| {
                let name = k
                    .strip_prefix("subscription_data[metadata][")?
                    .strip_suffix(']')?;
                Some((name.to_owned(), Value::from(v.as_str())))
            })
            .collect();
        let trial_days: Option<i64> = form
            .get("subscription_data[trial_period_days]")
            .and_then(|d| d.parse().ok());
        session["line_items_bought"] = json!({ "price": price, "quantity": quantity,
            "subscription_metadata": subscription_metadata, "trial_days": trial_days });
        self.sessions
            .lock()
            .unwrap()
            .insert(id.clone(), session.clone());
        ResponseTemplate::new(200).set_body_json(public(&session))
    }

    fn answer(&self, id: &str, view: impl Fn(&Value) -> Value) -> ResponseTemplate {
        match self.sessions.lock().unwrap().get(id) {
            Some(session) => ResponseTemplate::new(200).set_body_json(view(session)),
            None => no_such_session(id),
        }
    }

    fn expire(&self, id: &str) -> ResponseTemplate {
        let mut sessions = self.sessions.lock().unwrap();
        let Some(session) = sessions.get_mut(id) else {
            return no_such_session(id);
        };
        if session["status"] != "open" {
            return stripe_error(
                400,
                "checkout_session_not_open",
                format!(
                    "Only Checkout Sessions with a status of `open` can be expired; {id} is {}.",
                    session["status"]
                ),
            );
        }
        session["status"] = "expired".into();
        session["url"] = Value::Null;
        ResponseTemplate::new(200).set_body_json(public(session))
    }

    fn create_portal(&self, form: &HashMap<String, String>) -> ResponseTemplate {
        let id = format!("bps_standin_{}", uuid::Uuid::new_v4().simple());
        let return_url = form.get("return_url").cloned().unwrap_or_default();
        self.portals
            .lock()
            .unwrap()
            .insert(id.clone(), return_url.clone());
        ResponseTemplate::new(200).set_body_json(object(
            "billing_portal.session",
            json!({
                "id": id,
                "url": format!("{}/p/session/{id}", self.base),
                "customer": form.get("customer"),
                "return_url": return_url,
                "livemode": false,
            }),
        ))
    }

    /// The hosted checkout page: what is bought, for how much, labelled as the stand-in.
    fn checkout_page(&self, id: &str) -> ResponseTemplate {
        let Some(session) = self.sessions.lock().unwrap().get(id).cloned() else {
            return page(
                "No such checkout",
                "<p>The local stand-in has no such session.</p>",
            );
        };
        let bought = &session["line_items_bought"];
        let plan = self.plans.get(bought["price"].as_str().unwrap_or_default());
        let name = plan.map_or("?", |p| p.name.as_str());
        let amount = session["amount_total"].as_i64().unwrap_or(0);
        let currency = session["currency"].as_str().unwrap_or("usd").to_uppercase();
        let state = session["status"].as_str().unwrap_or_default();
        let action = if state == "open" {
            format!(
                "<form method=post action='/c/pay/{id}'><button id=pay type=submit>Pay {}</button></form>",
                money(amount, &currency)
            )
        } else {
            format!("<p id=state>This checkout is {}.</p>", escape(state))
        };
        page(
            "Checkout",
            &format!(
                "<p class=label id=label><strong>{LABEL}</strong>: nothing is charged and no card is asked for. \
                 With a <code>sk_test_…</code> key, <code>make dev</code> uses Stripe's test mode instead.</p>\
                 <p><span id=item>{} × {}</span> <strong id=amount>{}</strong></p>\
                 <p><small>Session <code id=session>{}</code></small></p>{action}\
                 <p><a id=cancel href='{}'>Cancel and go back</a></p>",
                escape(name),
                bought["quantity"],
                money(amount, &currency),
                escape(id),
                escape(session["cancel_url"].as_str().unwrap_or("/")),
            ),
        )
    }

    /// "Pay": the session completes and is paid; Stripe's `checkout.session.completed` for
    /// it, signed with the stack's webhook secret, goes to the stack's webhook route; then
    /// the browser goes to the session's `success_url`.
    fn pay(&self, id: &str) -> ResponseTemplate {
        let completed = {
            let mut sessions = self.sessions.lock().unwrap();
            let Some(session) = sessions.get_mut(id) else {
                return no_such_session(id);
            };
            if session["status"] != "open" {
                return ResponseTemplate::new(303)
                    .insert_header("location", format!("/c/pay/{id}"));
            }
            session["status"] = "complete".into();
            session["payment_status"] = "paid".into();
            session["url"] = Value::Null;
            if session["customer"].is_null() {
                session["customer"] = format!("cus_standin_{}", short_id()).into();
            }
            if session["mode"] == "subscription" {
                session["subscription"] = format!("sub_standin_{}", short_id()).into();
                session["invoice"] = format!("in_standin_{}", short_id()).into();
            } else {
                session["payment_intent"] = format!("pi_standin_{}", short_id()).into();
            }
            session.clone()
        };
        let mut events = vec![("checkout.session.completed", public(&completed))];
        if completed["mode"] == "subscription" {
            let (subscription, invoice) = self.subscribe(&completed);
            self.subscriptions.put(&subscription);
            events.push(("customer.subscription.created", subscription));
            events.push(("invoice.paid", invoice));
        }
        for (kind, object) in events {
            let now = chrono::Utc::now().timestamp();
            let body = event(
                &format!("evt_standin_{}", uuid::Uuid::new_v4().simple()),
                kind,
                now,
                object,
            )
            .to_string();
            let header = signature(&self.webhook_secret, now, &body);
            match deliver(&self.webhook_url, &header, body) {
                Ok(200..=299) => {}
                Ok(status) => {
                    return page(
                        "The webhook refused the payment",
                        &format!(
                            "<p>The stack's webhook answered {status} to {kind}; see the make dev log.</p>"
                        ),
                    );
                }
                Err(e) => {
                    return page(
                        "The webhook could not be reached",
                        &format!("<p>{}</p>", escape(&e)),
                    );
                }
            }
        }
        let success = completed["success_url"]
            .as_str()
            .unwrap_or("/")
            .replace("{CHECKOUT_SESSION_ID}", id);
        ResponseTemplate::new(303).insert_header("location", success)
    }

    /// The subscription a paid subscription-mode session starts, as Stripe holds it, and its
    /// first invoice, paid (nothing to pay during a trial).
    fn subscribe(&self, session: &Value) -> (Value, Value) {
        let bought = &session["line_items_bought"];
        let price = bought["price"].as_str().unwrap_or_default();
        let plan = self.plans.get(price);
        let now = chrono::Utc::now().timestamp();
        let days = match plan.and_then(|p| p.interval.as_deref()) {
            Some("day") => 1,
            Some("week") => 7,
            Some("year") => 365,
            _ => 30,
        };
        let trial_end = bought["trial_days"].as_i64().map(|d| now + d * 86_400);
        let period_end = trial_end.unwrap_or(now + days * 86_400);
        let sub_id = session["subscription"].as_str().unwrap_or_default();
        let mut sub = object(
            "subscription",
            json!({
                "id": sub_id,
                "customer": session["customer"],
                "status": if trial_end.is_some() { "trialing" } else { "active" },
                "cancel_at_period_end": false,
                "cancel_at": Value::Null,
                "canceled_at": Value::Null,
                "ended_at": Value::Null,
                "trial_end": trial_end,
                "livemode": false,
                "created": now,
                "start_date": now,
                "latest_invoice": session["invoice"],
            }),
        );
        sub["metadata"] = bought["subscription_metadata"].clone();
        if let Some(item) = sub["items"]["data"].get_mut(0) {
            item["id"] = format!("si_{sub_id}").into();
            item["price"]["id"] = price.into();
            item["quantity"] = bought["quantity"].clone();
            item["current_period_start"] = now.into();
            item["current_period_end"] = period_end.into();
        }
        let user = sub["metadata"]["user_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let paid = if trial_end.is_some() {
            0
        } else {
            session["amount_total"].as_i64().unwrap_or(0)
        };
        let mut invoice = subscription_invoice(
            session["invoice"].as_str().unwrap_or_default(),
            sub_id,
            &user,
            price,
            "subscription_create",
            paid,
        );
        invoice["customer"] = session["customer"].clone();
        invoice["currency"] = session["currency"].clone();
        invoice["created"] = now.into();
        (sub, invoice)
    }

    fn portal_page(&self, id: &str) -> ResponseTemplate {
        let back = self
            .portals
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .unwrap_or_default();
        page(
            "Billing portal",
            &format!(
                "<p class=label><strong>{LABEL}</strong>: the stand-in has nothing to manage; \
                 Stripe's test mode shows the real portal.</p><p><a id=return href='{}'>Return</a></p>",
                escape(&back)
            ),
        )
    }
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..14].to_owned()
}

/// Posts the signed event from a thread of its own (a responder is not async), and waits.
fn deliver(url: &str, signature: &str, body: String) -> Result<u16, String> {
    let (url, signature) = (url.to_owned(), signature.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .header("stripe-signature", signature)
                .body(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| format!("{url}: {e}"))
        })
    })
    .join()
    .map_err(|_| "the delivery thread panicked".to_owned())?
}

/// The session as Stripe shows it (without what the stand-in keeps for itself).
fn public(session: &Value) -> Value {
    let mut s = session.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("line_items_bought");
    }
    s
}

/// `GET /v1/checkout/sessions/{id}/line_items`: the one line the session bought.
fn line_items(session: &Value) -> Value {
    json!({ "object": "list", "has_more": false,
            "url": format!("/v1/checkout/sessions/{}/line_items", session["id"].as_str().unwrap_or_default()),
            "data": [object("item", json!({
                "price": { "id": session["line_items_bought"]["price"] },
                "quantity": session["line_items_bought"]["quantity"],
            }))] })
}

fn no_such_session(id: &str) -> ResponseTemplate {
    stripe_error(
        404,
        "resource_missing",
        format!("No such checkout.session: '{id}'"),
    )
}

fn stripe_error(status: u16, code: &str, message: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": {
        "type": "invalid_request_error", "code": code, "message": message } }))
}

fn form_of(request: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn money(minor: i64, currency: &str) -> String {
    let sign = if currency == "USD" { "$" } else { "" };
    let suffix = if sign.is_empty() {
        format!(" {currency}")
    } else {
        String::new()
    };
    format!("{sign}{}.{:02}{suffix}", minor / 100, minor % 100)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> ResponseTemplate {
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>{title} ({LABEL})</title>\
         <body style='font-family:sans-serif;margin:3rem;max-width:40rem'>\
         <p style='background:#fff3cd;border:1px solid #e0c060;padding:.5rem 1rem' id=banner>\
         Stripe, {LABEL}</p><h1>{title}</h1>{body}</body>"
    );
    ResponseTemplate::new(200).set_body_raw(html.into_bytes(), "text/html; charset=utf-8")
}

/// `make dev`'s choice: with no Stripe key (and `STRIPE_STAND_IN` not `off`), starts the
/// stand-in for the default or `CATALOG_JSON` catalog and points the functions at it
/// through `env`; with a key, `None` and `env` untouched.
pub async fn serve_if_wanted(env: &mut HashMap<String, String>, port: u16) -> Option<StandIn> {
    if !wanted(env) {
        return None;
    }
    let json = env
        .get("CATALOG_JSON")
        .filter(|j| !j.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| billing_core::domain::catalog::DEFAULT_CATALOG.to_owned());
    let catalog = match Catalog::parse(&json, |_| None) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no local stand-in for Stripe: the catalog does not parse");
            return None;
        }
    };
    // Loaded now, so a missing `.venv` says so at start rather than at the first request.
    let definitions = tokio::task::spawn_blocking(|| {
        std::panic::catch_unwind(|| {
            billing_testing::stripe_definitions::definitions()
                .source
                .clone()
        })
    })
    .await;
    let Ok(Ok(source)) = definitions else {
        eprintln!(
            "no local stand-in for Stripe: Stripe's definitions did not load (run `make bootstrap`)"
        );
        return None;
    };
    let webhook = format!("http://127.0.0.1:{port}/api/stripe/webhook");
    let secret = env
        .get("STRIPE_WEBHOOK_SECRET")
        .cloned()
        .unwrap_or_default();
    let mut stand_in = StandIn::start(&catalog, &webhook, &secret).await;
    stand_in.definitions = source;
    env.extend(stand_in.environment());
    Some(stand_in)
}

impl StandIn {
    /// The start-up banner's lines about it.
    pub fn banner(&self) -> String {
        format!(
            "  Stripe: {LABEL} on {} (no Stripe key set)\n    \
             every request is checked against Stripe's definitions: {}\n    \
             sells all {} plans through its checkout page; Pay sends the signed webhook (docs/local-development.md)",
            self.base(),
            self.definitions,
            self.prices.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_core::domain::catalog::DEFAULT_CATALOG;

    const SECRET: &str = "whsec_stand_in_test";

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    async fn stand_in(webhook_url: &str) -> StandIn {
        let catalog = Catalog::parse(DEFAULT_CATALOG, |_| None).unwrap();
        StandIn::start(&catalog, webhook_url, SECRET).await
    }

    fn checkout_form(extra: &str) -> String {
        format!(
            "mode=payment&line_items[0][price]=price_standin_credits_starter&line_items[0][quantity]=1\
             &client_reference_id=u64_dXNlcl9h&metadata[user_id]=user_a&metadata[plan_id]=credits_starter\
             &success_url=http://127.0.0.1:9/billing/success?session_id={{CHECKOUT_SESSION_ID}}\
             &cancel_url=http://127.0.0.1:9/billing/cancel{extra}"
        )
    }

    async fn create(base: &str, form: String) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{base}/v1/checkout/sessions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.replace('{', "%7B").replace('}', "%7D"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    #[test]
    fn a_configured_key_or_the_switch_means_no_stand_in() {
        assert!(wanted(&env(&[])), "no key: the stand-in");
        assert!(
            wanted(&env(&[("STRIPE_SECRET_KEY", " ")])),
            "a blank key is no key"
        );
        assert!(!wanted(&env(&[("STRIPE_SECRET_KEY", "sk_test_real")])));
        assert!(!wanted(&env(&[(SWITCH, "off")])));
    }

    #[tokio::test]
    async fn with_a_key_make_dev_starts_no_stand_in_and_keeps_the_api_base() {
        let mut vars = env(&[
            ("STRIPE_SECRET_KEY", "sk_test_real"),
            ("STRIPE_WEBHOOK_SECRET", SECRET),
        ]);
        let before = vars.clone();
        assert!(serve_if_wanted(&mut vars, 9).await.is_none());
        assert_eq!(vars, before, "the functions' environment is untouched");
    }

    #[tokio::test]
    async fn it_gives_the_functions_a_test_key_its_base_and_a_price_for_every_plan() {
        let s = stand_in("http://127.0.0.1:9/api/stripe/webhook").await;
        let vars: HashMap<String, String> = s.environment().into_iter().collect();
        assert_eq!(vars["STRIPE_SECRET_KEY"], KEY);
        assert_eq!(vars["STRIPE_API_BASE"], s.base());
        assert!(vars["STRIPE_PRICES"].contains("credits_starter=price_standin_credits_starter"));
        assert!(vars["STRIPE_PRICES"].contains("pro_monthly=price_standin_pro_monthly"));
    }

    #[tokio::test]
    async fn it_refuses_a_parameter_stripe_does_not_have_as_stripe_does() {
        let s = stand_in("http://127.0.0.1:9/api/stripe/webhook").await;
        let (status, body) = create(&s.base(), checkout_form("&not_a_stripe_param=1")).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "parameter_unknown", "{body}");
        let (status, body) = create(&s.base(), checkout_form("")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["object"], "checkout.session");
        assert_eq!(body["amount_total"], 1000);
        let url = body["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/c/pay/cs_test_standin_", s.base())),
            "{url}"
        );
    }

    #[tokio::test]
    async fn paying_a_subscription_sends_completed_created_and_invoice_paid_and_holds_it() {
        let webhook = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "queued"})))
            .mount(&webhook)
            .await;
        let s = stand_in(&format!("{}/api/stripe/webhook", webhook.uri())).await;
        let form = checkout_form("&subscription_data[metadata][user_id]=user_a&subscription_data[metadata][plan_id]=pro_monthly")
            .replace("mode=payment", "mode=subscription")
            .replace("credits_starter", "pro_monthly");
        let (status, session) = create(&s.base(), form).await;
        assert_eq!(status, 200, "{session}");
        let id = session["id"].as_str().unwrap();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/c/pay/{id}", s.base()))
            .send()
            .await
            .unwrap();
        let events: Vec<Value> = webhook
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "checkout.session.completed",
                "customer.subscription.created",
                "invoice.paid"
            ]
        );
        let sub_id = events[0]["data"]["object"]["subscription"]
            .as_str()
            .unwrap();
        let sub = &events[1]["data"]["object"];
        assert_eq!(sub["id"], sub_id);
        assert_eq!(sub["status"], "active");
        assert_eq!(
            sub["metadata"],
            json!({"user_id": "user_a", "plan_id": "pro_monthly"})
        );
        assert_eq!(
            sub["items"]["data"][0]["price"]["id"],
            "price_standin_pro_monthly"
        );
        let invoice = &events[2]["data"]["object"];
        assert_eq!(
            invoice["parent"]["subscription_details"]["subscription"],
            sub_id
        );
        assert_eq!(invoice["amount_paid"], session["amount_total"]);
        let held: Value = reqwest::get(format!("{}/v1/subscriptions/{sub_id}", s.base()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(&held, sub, "the worker fetches what the event said");
    }

    #[tokio::test]
    async fn a_price_in_the_wrong_mode_is_refused() {
        let s = stand_in("http://127.0.0.1:9/api/stripe/webhook").await;
        let form = checkout_form("").replace("credits_starter", "pro_monthly");
        let (status, body) = create(&s.base(), form).await;
        assert_eq!(status, 400, "{body}");
    }

    #[tokio::test]
    async fn pay_posts_a_signed_completed_event_then_sends_the_browser_to_the_success_url() {
        let webhook = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/stripe/webhook"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "queued"})))
            .mount(&webhook)
            .await;
        let s = stand_in(&format!("{}/api/stripe/webhook", webhook.uri())).await;
        let (_, session) = create(&s.base(), checkout_form("")).await;
        let id = session["id"].as_str().unwrap();
        let page = reqwest::get(session["url"].as_str().unwrap())
            .await
            .unwrap();
        assert!(
            page.text().await.unwrap().contains(LABEL),
            "the checkout page is labelled"
        );
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let paid = no_redirects
            .post(format!("{}/c/pay/{id}", s.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status().as_u16(), 303);
        assert_eq!(
            paid.headers()["location"],
            format!("http://127.0.0.1:9/billing/success?session_id={id}").as_str()
        );
        let received = webhook.received_requests().await.unwrap();
        assert_eq!(received.len(), 1, "one event per payment");
        let body = String::from_utf8(received[0].body.clone()).unwrap();
        let header = received[0].headers["stripe-signature"].to_str().unwrap();
        let t: i64 = header
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            header,
            signature(SECRET, t, &body),
            "signed with the webhook secret"
        );
        let event: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(event["type"], "checkout.session.completed");
        let object = &event["data"]["object"];
        assert_eq!(object["id"], id);
        assert_eq!(object["payment_status"], "paid");
        assert_eq!(object["client_reference_id"], "u64_dXNlcl9h");
        assert_eq!(
            object["metadata"],
            json!({"user_id": "user_a", "plan_id": "credits_starter"})
        );
        assert!(object.get("line_items_bought").is_none(), "{object}");
        let again = no_redirects
            .post(format!("{}/c/pay/{id}", s.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 303);
        assert_eq!(
            webhook.received_requests().await.unwrap().len(),
            1,
            "paid once"
        );
    }
}
