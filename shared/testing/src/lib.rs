//! Test support, its own crate used only as a dev-dependency (no Lambda build contains it): Stripe's official
//! fixture objects and events built from them, a fake Stripe API ([`fake_stripe`]), one
//! fault wrapper for the store and the queue ([`faults`]), one in-memory harness
//! ([`harness`]) and an in-memory Stripe behind the Stripe port ([`memory_stripe`]).
//!
//! Every event a test sends starts from `testdata/stripe/fixtures3.json` and overrides
//! only ids, metadata, amounts and states, so our types are proven against real shapes.

mod fake_stripe;
mod fake_stripe_account;
pub mod faults;
pub mod harness;
pub mod memory_stripe;
pub mod stream;
pub mod stripe_definitions;

pub use fake_stripe::{
    EventsApi, FakeSubscriptions, InvoicesApi, StrictStripe, fake_stripe, payment_intent_for,
    refund_for, strict_stripe,
};
pub use fake_stripe_account::FakeAccount;

use billing_core::app::Services;
use billing_core::app::config::Config;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;

// The one fake Stripe as a server (for the Python suites) and the samples of events/stripe/,
// built with the event builder below (docs/testing.md, "The fake Stripe and the Stripe events").
mod fake_stripe_server;
pub mod samples;
pub use fake_stripe_server::{Deliver, FakeStripeServer, ServerOptions, StandIn};

pub const FIXTURES: &str = include_str!("../../testdata/stripe/fixtures3.json");
pub const TEST_WEBHOOK_SECRET: &str = "whsec_test_secret";

pub fn fixtures() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(FIXTURES).expect("the vendored fixtures are JSON"))
}

/// One official example object, e.g. `fixture("checkout.session")`.
pub fn fixture(resource: &str) -> Value {
    fixtures()["resources"][resource].clone()
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, p) => *t = p,
    }
}

/// The fixture `resource` with `patch` merged in (objects merge, other values replace).
pub fn object(resource: &str, patch: Value) -> Value {
    let mut o = fixture(resource);
    merge(&mut o, patch);
    o
}

/// Stripe's active entitlement summary for `customer` listing features by `lookup_keys`, in
/// the shape of Stripe's API reference (the vendored fixtures hold no such object).
pub fn stripe_entitlement_summary(customer: &str, lookup_keys: &[&str]) -> Value {
    let data: Vec<Value> = lookup_keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            serde_json::json!({
                "id": format!("ent_test_{i}"), "object": "entitlements.active_entitlement",
                "feature": format!("feat_test_{i}"), "livemode": false, "lookup_key": key,
            })
        })
        .collect();
    serde_json::json!({
        "object": "entitlements.active_entitlement_summary",
        "customer": customer,
        "livemode": false,
        "entitlements": { "object": "list", "data": data, "has_more": false,
                          "url": format!("/v1/customer/{customer}/entitlements") },
    })
}

/// A webhook event envelope from the fixture, carrying `object`.
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    let mut e = fixture("event");
    merge(
        &mut e,
        json!({ "id": id, "type": kind, "created": created, "livemode": false,
                "api_version": "2026-10-28.endive", "data": { "object": Value::Null } }),
    );
    e["data"]["object"] = object;
    e
}

/// A Checkout Session as our checkout creates it: metadata names the user and plan.
pub fn checkout_session(
    session_id: &str,
    user: &str,
    plan: &str,
    payment_status: &str,
    amount: i64,
) -> Value {
    let mode = if plan.starts_with("pro_") || plan == "retainer" {
        "subscription"
    } else {
        "payment"
    };
    // `metadata` replaces rather than merges: the fixture's own keys must not leak in.
    let mut s = object(
        "checkout.session",
        json!({
            "id": session_id,
            "client_reference_id": user,
            "mode": mode,
            "payment_status": payment_status,
            "status": "complete",
            "amount_total": amount,
            "currency": "usd",
            "customer": format!("cus_{user}"),
            "payment_intent": format!("pi_{session_id}"),
        }),
    );
    s["metadata"] = json!({ "user_id": user, "plan_id": plan });
    s
}

/// A PaymentIntent as our purchases route creates it, in the state `status`.
pub fn payment_intent(
    pi: &str,
    user: &str,
    plan: &str,
    quantity: i64,
    amount: i64,
    status: &str,
) -> Value {
    let mut o = object(
        "payment_intent",
        json!({
            "id": pi,
            "amount": amount,
            "amount_received": if status == "succeeded" { amount } else { 0 },
            "currency": "usd",
            "status": status,
            "client_secret": format!("{pi}_secret_test"),
        }),
    );
    o["metadata"] = json!({ "user_id": user, "plan_id": plan, "quantity": quantity.to_string() });
    o
}

/// A subscription with the current API's shape (period on the items).
pub fn subscription(sub_id: &str, user: &str, plan: &str, status: &str, period_end: i64) -> Value {
    let mut s = object(
        "subscription",
        json!({
            "id": sub_id,
            "customer": format!("cus_{user}"),
            "status": status,
            "cancel_at_period_end": false,
            "cancel_at": Value::Null,
            "trial_end": Value::Null,
        }),
    );
    s["metadata"] = json!({ "user_id": user, "plan_id": plan });
    if let Some(item) = s["items"]["data"].get_mut(0) {
        item["current_period_end"] = period_end.into();
    }
    s
}

/// A `Stripe-Signature` header for `body` at `timestamp` with `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    billing_core::stripe::signature::sign(secret, timestamp, body.as_bytes())
}

/// A config for tests: the test webhook secret, default catalog, plus `extra` variables.
pub fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([(
        "STRIPE_WEBHOOK_SECRET".to_owned(),
        TEST_WEBHOOK_SECRET.to_owned(),
    )]);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|name| vars.get(name).cloned()).expect("test config is valid")
}

/// In-memory services with the test config.
pub fn memory_services(extra: &[(&str, &str)]) -> Services {
    Services::in_memory(config(extra))
}

/// The API version the vendored fixtures render (they carry none; their shapes are those of
/// 2025-03-31.basil and later, proven against [`STRIPE_VERSION`](billing_core::stripe::api::STRIPE_VERSION)).
pub const FIXTURES_VERSION: &str = billing_core::stripe::api::STRIPE_VERSION;

/// An API version before 2025-03-31.basil, for events built with [`before_basil`].
pub const OLD_VERSION: &str = "2024-06-20";

/// `object` (a subscription or an invoice of the fixtures' shapes) as an endpoint on an API
/// version before 2025-03-31 renders it, built by moving back the fields Stripe's changelog
/// for 2025-03-31.basil moved:
/// - "Adds subscription item-level billing periods and removes subscription-level periods"
///   (docs.stripe.com/changelog/basil/2025-03-31/deprecate-subscription-current-period-start-and-end):
///   `items.data[].current_period_end` → the subscription's `current_period_end`;
/// - "Invoicing resources now specify how they were generated"
///   (…/2025-03-31/adds-new-parent-field-to-invoicing-objects):
///   `parent.subscription_details.{subscription, metadata}` → the invoice's `subscription`
///   and `subscription_details.metadata`;
/// - "Replaces top-level price fields with improved price modeling on Invoice Items and
///   Invoice Line Items" (…/2025-03-31/invoice-pricing-configurations):
///   `lines.data[].pricing.price_details.price` → the line's `price.id`.
pub fn before_basil(object: &Value) -> Value {
    let mut o = object.clone();
    match o["object"].as_str() {
        Some("subscription") => {
            let items = o["items"]["data"].as_array_mut();
            let (mut starts, mut ends) = (Vec::new(), Vec::new());
            for item in items.into_iter().flatten() {
                if let Some(m) = item.as_object_mut() {
                    starts.extend(m.remove("current_period_start").and_then(|v| v.as_i64()));
                    ends.extend(m.remove("current_period_end").and_then(|v| v.as_i64()));
                }
            }
            o["current_period_start"] = starts.into_iter().min().into();
            o["current_period_end"] = ends.into_iter().max().into();
        }
        Some("invoice") => {
            let details = o
                .as_object_mut()
                .and_then(|m| m.remove("parent"))
                .map(|p| p["subscription_details"].clone())
                .unwrap_or(Value::Null);
            o["subscription"] = details["subscription"].clone();
            o["subscription_details"] = json!({ "metadata": details["metadata"].clone() });
            for line in o["lines"]["data"].as_array_mut().into_iter().flatten() {
                let price = line
                    .as_object_mut()
                    .and_then(|m| m.remove("pricing"))
                    .map(|p| p["price_details"]["price"].clone())
                    .unwrap_or(Value::Null);
                line["price"] = match price {
                    Value::String(id) => json!({ "id": id, "object": "price" }),
                    other => other,
                };
                // The line's origin and its proration flag sat on the line itself.
                let parent = line
                    .as_object_mut()
                    .and_then(|m| m.remove("parent"))
                    .unwrap_or(Value::Null);
                let proration = ["subscription_item_details", "invoice_item_details"]
                    .iter()
                    .any(|k| parent[k]["proration"] == true);
                line["proration"] = proration.into();
            }
        }
        _ => {}
    }
    o
}

/// An event of `before_basil(object)` as an endpoint on [`OLD_VERSION`] sends it.
pub fn old_event(id: &str, kind: &str, created: i64, object: &Value) -> Value {
    let mut e = event(id, kind, created, before_basil(object));
    e["api_version"] = OLD_VERSION.into();
    e
}

/// A subscription of `plan` whose (only) item is on `price`.
pub fn subscription_on(
    sub_id: &str,
    user: &str,
    price: &str,
    status: &str,
    period_end: i64,
) -> Value {
    let mut s = subscription(sub_id, user, "", status, period_end);
    s["metadata"] = json!({ "user_id": user });
    s["items"]["data"][0]["price"]["id"] = price.into();
    s
}

/// A subscription's invoice (`billing_reason`, `amount_paid`, a `total` of the same) billing
/// `price`, in the fixtures' shape; its metadata snapshot names only the user.
pub fn subscription_invoice(
    id: &str,
    sub_id: &str,
    user: &str,
    price: &str,
    billing_reason: &str,
    amount_paid: i64,
) -> Value {
    let mut i = object(
        "invoice",
        json!({ "id": id, "customer": format!("cus_{user}"), "status": "paid",
                "billing_reason": billing_reason, "amount_paid": amount_paid, "total": amount_paid,
                "currency": "usd" }),
    );
    i["parent"] = json!({ "type": "subscription_details", "subscription_details": {
        "subscription": sub_id, "metadata": { "user_id": user } } });
    if let Some(line) = i["lines"]["data"].get_mut(0) {
        line["pricing"] = json!({ "type": "price_details",
            "price_details": { "price": price, "product": "prod_test" } });
    }
    i
}

/// In-memory services with the test config (plus `extra`) whose Stripe is `stripe`, the
/// in-memory one: the core's tests reach Stripe through the port, with no HTTP server.
pub fn memory_services_with_stripe(
    stripe: &std::sync::Arc<memory_stripe::MemoryStripe>,
    extra: &[(&str, &str)],
) -> Services {
    let mut services = memory_services(extra);
    services.stripe = Some(stripe.clone());
    services
}

/// The invoice Stripe previews for moving `subscription`'s item to `price` with `quantity`
/// seats, for `customer`: the price's unit amount (from `prices`, the account's `price`
/// objects) times the seats, due at the current period's end. Both the in-memory Stripe and
/// the fake account answer with it, so the contract suite compares one rule.
pub fn subscription_change_preview(
    customer: &str,
    subscription: &Value,
    prices: &[Value],
    price: &str,
    quantity: i64,
) -> Value {
    let unit = prices
        .iter()
        .find(|p| p["id"] == price)
        .and_then(|p| p["unit_amount"].as_i64())
        .unwrap_or(0);
    let amount = unit * quantity;
    let mut preview = fixture("invoice");
    preview["id"] = Value::Null;
    preview["customer"] = customer.into();
    preview["amount_due"] = amount.into();
    preview["total"] = amount.into();
    preview["next_payment_attempt"] =
        subscription["items"]["data"][0]["current_period_end"].clone();
    if let Some(line) = preview["lines"]["data"].get_mut(0) {
        line["amount"] = amount.into();
        line["quantity"] = quantity.into();
        line["pricing"] = json!({ "type": "price_details",
            "price_details": { "price": price, "product": "prod_test" } });
    }
    preview
}

/// A caller signed in with a user's token: neither an operator nor the app's own server.
pub fn caller(user: &str, email: Option<&str>) -> billing_core::inbound::http::Identity {
    billing_core::inbound::http::Identity {
        user: billing_core::domain::ids::UserId::parse(user).expect("a well-formed user id"),
        email: email.map(str::to_owned),
        admin: false,
        service: false,
    }
}

/// An operator: a token with the `billing:admin` scope.
pub fn operator(user: &str) -> billing_core::inbound::http::Identity {
    billing_core::inbound::http::Identity {
        admin: true,
        ..caller(user, None)
    }
}
