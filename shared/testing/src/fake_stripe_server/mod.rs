//! The one fake Stripe server that runs outside `cargo test`: `local-stack fake-stripe`
//! serves it on a loopback port for the Python suites (`infra/api_contract.py`,
//! `infra/browser_test.py`, `infra/console_test.py`, through `infra/fake_stripe.py`), and
//! `make dev` serves it as its labelled stand-in for Stripe when no Stripe key is set
//! (`infra/local/src/stand_in.rs`, [`StandIn`]). It is built from the same parts as the Rust
//! tests' fake ([`crate::fake_stripe`]): every request under `/v1/` first goes through
//! [`StrictStripe`] (Stripe's own parameter definitions), objects are the official fixtures
//! with the request's values merged in, subscriptions are [`FakeSubscriptions`], invoice
//! lists [`InvoicesApi`], event lists [`EventsApi`].
//!
//! What it adds for a test that drives a browser or a whole stack:
//! - Checkout Sessions as Stripe holds them (`checkout.rs`): created open for a price it was
//!   given (priced from the catalog; a price it was not given is refused when it was given
//!   any), read back with their line item, expired once (a second expiry is refused, as
//!   Stripe refuses it);
//! - hosted pages its URLs lead to (`pages.rs`): a checkout page (`/c/pay/{id}`: what is
//!   bought and for how much; "Pay" and "Cancel"), a billing portal page (`/p/session/{id}`),
//!   a Payment Link page (`/l/...`). For a test, "Pay" is a link to the session's
//!   `success_url` and sends no event (the test sends the webhook itself, as it needs to time
//!   it); as the stand-in, "Pay" completes the session and hands Stripe's events for it to
//!   [`StandIn::deliver`] before the browser goes to the `success_url`;
//! - `POST /v1/invoices/create_preview` for a subscription it holds, priced from the catalog
//!   through the price ids it was given;
//! - a control API under `/_fake/` (not Stripe's): `GET /_fake/requests` (every request it
//!   received under `/v1/`, with its `Idempotency-Key`, form and whether Stripe's definitions
//!   refused it), `POST /_fake/subscriptions` (Stripe now holds this subscription), `GET
//!   /_fake/subscriptions/{id}` (as held now), `POST /_fake/invoices` (a customer's invoice
//!   to list) and `POST /_fake/events` (`{"type", "object", "id"?, "created"?}`: the event
//!   as the one event builder, [`crate::event`], builds it, for the test to sign and send).

mod checkout;
mod pages;

use crate::fake_stripe::{
    EventsApi, FakeSubscriptions, InvoicesApi, StrictStripe, payment_intent_for, refund_for,
};
use crate::object;
use crate::stripe_definitions::definitions;
use billing_core::domain::catalog::{Catalog, Plan};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// How a fake Stripe server is started.
#[derive(Clone, Default)]
pub struct ServerOptions {
    /// Who runs it, as the coverage log of Stripe's definitions names it.
    pub by: String,
    /// The tag in the ids it makes (`cs_test_{tag}_1_…`), so a test can tell them apart.
    pub tag: String,
    /// How long creating a Checkout Session takes (a test watches the button wait).
    pub checkout_delay: Duration,
    /// Plan id → price id, as `STRIPE_PRICES` gives them to the functions.
    pub prices: Vec<(String, String)>,
    /// The catalog those plans are in (`None`: the default catalog).
    pub catalog: Option<Catalog>,
    /// Serve as `make dev`'s stand-in for Stripe: labelled pages, and a "Pay" that sends the
    /// session's events.
    pub stand_in: Option<StandIn>,
}

/// What makes the server `make dev`'s stand-in for Stripe.
#[derive(Clone)]
pub struct StandIn {
    /// What every page says it is.
    pub label: String,
    /// Sends one event (its type, the event) as Stripe would, signed, to the stack's webhook:
    /// `Err` says why it was not taken.
    pub deliver: Deliver,
}

/// How the stand-in hands an event on: `(type, event) → Ok, or why not`.
pub type Deliver = Arc<dyn Fn(&str, &Value) -> Result<(), String> + Send + Sync>;

/// A fake Stripe serving on loopback until dropped.
pub struct FakeStripeServer {
    server: MockServer,
}

impl FakeStripeServer {
    /// Serves on `listener` (a free loopback port the caller chose).
    pub async fn start(listener: std::net::TcpListener, options: ServerOptions) -> Self {
        // Loaded before it serves: without them it fails now, not inside a request a client
        // would wait on.
        definitions();
        let server = MockServer::builder()
            .listener(listener)
            .disable_request_recording()
            .start()
            .await;
        let catalog = options.catalog.clone().unwrap_or_else(|| {
            Catalog::parse(billing_core::domain::catalog::DEFAULT_CATALOG, |_| None)
                .expect("the default catalog parses")
        });
        let plans = options
            .prices
            .iter()
            .filter_map(|(plan, price)| {
                let plan = catalog.plans().find(|p| p.id.to_string() == *plan)?;
                Some((price.clone(), plan.clone()))
            })
            .collect();
        let state = State {
            base: server.uri(),
            options: Arc::new(options),
            plans: Arc::new(plans),
            counter: Arc::default(),
            requests: Arc::default(),
            sessions: Arc::default(),
            portals: Arc::default(),
            invoices: Arc::default(),
            subscriptions: FakeSubscriptions::default(),
        };
        // Every request under /v1/ is recorded first (a matcher that never matches).
        Mock::given(Recorder(state.requests.clone()))
            .respond_with(ResponseTemplate::new(500))
            .with_priority(1)
            .mount(&server)
            .await;
        // The functions' warm-up asks `GET /v1/`; any answer will do, and it is no endpoint.
        Mock::given(method("GET"))
            .and(path("/v1/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .with_priority(1)
            .mount(&server)
            .await;
        let by = state.options.by.clone();
        Mock::given(path_regex("^/v1/."))
            .and(StrictStripe::new(&by))
            .respond_with(StrictStripe::new(&by))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(path_regex("^/v1/subscriptions/[^/]+$"))
            .respond_with(state.subscriptions.clone())
            .mount(&server)
            .await;
        let routes: [(&str, &str, Route); 19] = [
            ("POST", r"^/v1/checkout/sessions$", Route::CreateSession),
            ("GET", r"^/v1/checkout/sessions/[^/]+$", Route::GetSession),
            (
                "POST",
                r"^/v1/checkout/sessions/[^/]+/expire$",
                Route::Expire,
            ),
            (
                "GET",
                r"^/v1/checkout/sessions/[^/]+/line_items$",
                Route::LineItems,
            ),
            ("GET", r"^/v1/events$", Route::Events),
            (
                "POST",
                r"^/v1/billing_portal/sessions$",
                Route::CreatePortal,
            ),
            ("POST", r"^/v1/payment_intents$", Route::PaymentIntent),
            ("POST", r"^/v1/refunds$", Route::Refund),
            ("GET", r"^/v1/invoices$", Route::Invoices),
            ("POST", r"^/v1/invoices/create_preview$", Route::Preview),
            ("GET", r"^/c/pay/[^/]+$", Route::CheckoutPage),
            ("POST", r"^/c/pay/[^/]+$", Route::Pay),
            ("GET", r"^/p/session/[^/]+$", Route::PortalPage),
            ("GET", r"^/l/.+$", Route::PaymentLinkPage),
            ("GET", r"^/$", Route::Home),
            ("GET", r"^/_fake/requests$", Route::Requests),
            ("POST", r"^/_fake/(subscriptions|invoices)$", Route::Hold),
            ("GET", r"^/_fake/subscriptions/[^/]+$", Route::Held),
            ("POST", r"^/_fake/events$", Route::Event),
        ];
        for (verb, pattern, route) in routes {
            Mock::given(method(verb))
                .and(path_regex(pattern))
                .respond_with(Handler(state.clone(), route))
                .mount(&server)
                .await;
        }
        // Anything else Stripe has but this server does not do: said plainly.
        let label = state.options.stand_in.as_ref().map(|s| s.label.clone());
        Mock::given(path_regex("^/v1/"))
            .respond_with(move |r: &Request| {
                let mut message =
                    format!("Unrecognized request URL ({} {})", r.method, r.url.path());
                if let Some(label) = &label {
                    message.push_str(&format!(
                        "; the {label} does not do it: use Stripe's test mode for it \
                         (docs/local-development.md)"
                    ));
                }
                error(404, "resource_missing", message)
            })
            .with_priority(10)
            .mount(&server)
            .await;
        Self { server }
    }

    /// Where it serves: the functions' `STRIPE_API_BASE`.
    pub fn base(&self) -> String {
        self.server.uri()
    }
}

/// Records every request under `/v1/` as the control API lists it; never matches.
struct Recorder(Arc<Mutex<Vec<Value>>>);

impl wiremock::Match for Recorder {
    fn matches(&self, request: &Request) -> bool {
        let path = request.url.path();
        if !path.starts_with("/v1/") || path == "/v1/" {
            return false;
        }
        let refused = definitions()
            .check(
                request.method.as_str(),
                path,
                request.url.query().unwrap_or(""),
                &request.body,
            )
            .err()
            .map(|r| r.body);
        let key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok());
        let form: serde_json::Map<String, Value> = form_urlencoded::parse(&request.body)
            .into_owned()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
        self.0.lock().unwrap().push(json!({
            "method": request.method.as_str(),
            "path": path,
            "query": request.url.query().unwrap_or(""),
            "idempotency_key": key,
            "form": form,
            "refused": refused,
        }));
        false
    }
}

#[derive(Clone)]
struct State {
    base: String,
    options: Arc<ServerOptions>,
    /// The plans it was given a price for, by that price.
    plans: Arc<HashMap<String, Plan>>,
    counter: Arc<AtomicU64>,
    requests: Arc<Mutex<Vec<Value>>>,
    /// Each Checkout Session as Stripe would hold it now, by id (`checkout.rs`).
    sessions: Arc<Mutex<HashMap<String, Value>>>,
    /// Each billing portal session's customer and return URL, by id.
    portals: Arc<Mutex<HashMap<String, (String, String)>>>,
    invoices: Arc<Mutex<Vec<Value>>>,
    subscriptions: FakeSubscriptions,
}

#[derive(Clone, Copy)]
enum Route {
    CreateSession,
    GetSession,
    Expire,
    LineItems,
    Events,
    CreatePortal,
    PaymentIntent,
    Refund,
    Invoices,
    Preview,
    CheckoutPage,
    Pay,
    PortalPage,
    PaymentLinkPage,
    Home,
    Requests,
    Hold,
    Held,
    Event,
}

struct Handler(State, Route);

impl Respond for Handler {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let s = &self.0;
        let path = request.url.path();
        let segment = |i: usize| path.split('/').nth(i).unwrap_or_default();
        match self.1 {
            Route::CreateSession => s
                .create_session(&form_of(request))
                .set_delay(s.options.checkout_delay),
            Route::GetSession => s.session(segment(4), checkout::public),
            Route::Expire => s.expire(segment(4)),
            Route::LineItems => s.session(segment(4), checkout::line_items),
            Route::Events => EventsApi(Vec::new()).respond(request),
            Route::CreatePortal => s.create_portal(&form_of(request)),
            Route::PaymentIntent => {
                let id = s.id("pi");
                let mut intent = payment_intent_for(request);
                intent["id"] = id.clone().into();
                intent["client_secret"] = format!("{id}_secret_{}", s.options.tag).into();
                ResponseTemplate::new(200).set_body_json(intent)
            }
            Route::Refund => {
                let mut refund = refund_for(request);
                refund["id"] = s.id("re").into();
                ResponseTemplate::new(200).set_body_json(refund)
            }
            Route::Invoices => {
                let held = s.invoices.lock().unwrap().clone();
                InvoicesApi(held).respond(request)
            }
            Route::Preview => s.preview(&form_of(request)),
            Route::CheckoutPage => s.checkout_page(segment(3)),
            Route::Pay => s.pay(segment(3)),
            Route::PortalPage => s.portal_page(segment(3)),
            Route::PaymentLinkPage => s.payment_link_page(path, request.url.query()),
            Route::Home => s.home(),
            Route::Requests => {
                let requests = s.requests.lock().unwrap().clone();
                ResponseTemplate::new(200).set_body_json(requests)
            }
            Route::Hold => {
                let Ok(held) = serde_json::from_slice::<Value>(&request.body) else {
                    return ResponseTemplate::new(400).set_body_string("not JSON");
                };
                if segment(2) == "subscriptions" {
                    s.subscriptions.put(&held);
                } else {
                    s.invoices.lock().unwrap().push(held);
                }
                ResponseTemplate::new(204)
            }
            Route::Event => {
                let Ok(asked) = serde_json::from_slice::<Value>(&request.body) else {
                    return ResponseTemplate::new(400).set_body_string("not JSON");
                };
                let id = match asked["id"].as_str() {
                    Some(id) => id.to_owned(),
                    None => s.id("evt"),
                };
                let created = asked["created"]
                    .as_i64()
                    .unwrap_or_else(|| chrono::Utc::now().timestamp());
                let kind = asked["type"].as_str().unwrap_or_default();
                let built = crate::event(&id, kind, created, asked["object"].clone());
                ResponseTemplate::new(200).set_body_json(built)
            }
            Route::Held => match s.subscriptions.get(segment(3)) {
                Some(sub) => ResponseTemplate::new(200).set_body_json(sub),
                None => ResponseTemplate::new(404),
            },
        }
    }
}

impl State {
    /// A fresh id: `{prefix}_test_{tag}_{n}_{random}`.
    fn id(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let random = &uuid_like()[..8];
        format!("{prefix}_test_{}_{n}_{random}", self.options.tag)
    }

    /// `POST /v1/invoices/create_preview` of a seat or price change of a held subscription:
    /// the new price and seats for the rest of the period (the whole period, here), the old
    /// ones' unused time credited; amounts are the catalog's, through the given prices.
    fn preview(&self, form: &HashMap<String, String>) -> ResponseTemplate {
        let subscription = form.get("subscription").cloned().unwrap_or_default();
        let Some(sub) = self.subscriptions.get(&subscription) else {
            return error(
                404,
                "resource_missing",
                format!("No such subscription: '{subscription}'"),
            );
        };
        let item = &sub["items"]["data"][0];
        let plan_of = |price: &str| self.plans.get(price).cloned();
        let to_price = form
            .get("subscription_details[items][0][price]")
            .cloned()
            .unwrap_or_default();
        let (Some(was), Some(to)) = (
            plan_of(item["price"]["id"].as_str().unwrap_or("")),
            plan_of(&to_price),
        ) else {
            return error(400, "resource_missing", "No such price".into());
        };
        let old = item["quantity"].as_i64().unwrap_or(1);
        let new: i64 = form
            .get("subscription_details[items][0][quantity]")
            .and_then(|q| q.parse().ok())
            .unwrap_or(old);
        let line = |amount: i64, description: String| json!({ "object": "line_item", "amount": amount, "currency": "usd", "description": description });
        let mut preview = object(
            "invoice",
            json!({
                "customer": form.get("customer"),
                "currency": "usd",
                "amount_due": new * to.amount - old * was.amount,
                "next_payment_attempt": item["current_period_end"],
            }),
        );
        preview["id"] = Value::Null;
        preview["lines"] = json!({ "object": "list", "has_more": false,
            "url": "/v1/invoices/upcoming/lines", "data": [
                line(new * to.amount, format!("Remaining time on {new} × {}", to.name)),
                line(-old * was.amount, format!("Unused time on {old} × {}", was.name)),
            ] });
        ResponseTemplate::new(200).set_body_json(preview)
    }
}

fn uuid_like() -> String {
    use sha2::Digest;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{:?}{}",
        std::time::SystemTime::now(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    );
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

fn form_of(request: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn error(status: u16, code: &str, message: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": {
        "type": "invalid_request_error", "code": code, "message": message } }))
}
