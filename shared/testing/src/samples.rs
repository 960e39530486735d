//! The Stripe sample events of `events/stripe/`, built here with the same builder as every
//! test's event ([`crate::event`] around the official fixtures), so the repository has one
//! place that builds Stripe events. `local-stack stripe-events` prints them and
//! `infra/make_sample_events.py` writes them (and the API Gateway and SQS samples that wrap
//! one); a test of local-stack checks that the files are what this builds.
//!
//! Each starts from a fixture object and replaces only ids, metadata, amounts, statuses and
//! timestamps (whole fields, as Stripe sends them), so the project's Stripe types are
//! tested against Stripe's real shapes.

use crate::{event, fixture};
use serde_json::{Value, json};

const USER: &str = "user_demo";
const CUSTOMER: &str = "cus_demo";
const DAY: i64 = 86_400;

/// Replaces each of `fields` in `target` (no merging: a field is Stripe's whole value).
fn set(target: &mut Value, fields: Value) {
    if let (Some(t), Value::Object(f)) = (target.as_object_mut(), fields) {
        for (k, v) in f {
            t.insert(k, v);
        }
    }
}

struct Session<'a> {
    id: &'a str,
    plan: &'a str,
    amount: i64,
    status: &'a str,
    payment_status: &'a str,
    created: i64,
    payment_intent: Option<&'a str>,
}

fn checkout_session(s: Session<'_>) -> Value {
    let mut o = fixture("checkout.session");
    set(
        &mut o,
        json!({
            "id": s.id,
            "client_reference_id": USER,
            "metadata": { "user_id": USER, "plan_id": s.plan },
            "mode": "payment",
            "status": s.status,
            "payment_status": s.payment_status,
            "amount_subtotal": s.amount,
            "amount_total": s.amount,
            "currency": "usd",
            "customer": CUSTOMER,
            "payment_intent": s.payment_intent,
            "created": s.created,
            "expires_at": s.created + DAY,
            // Every sample is complete or expired, and Stripe clears the hosted page URL then.
            "url": null,
        }),
    );
    // The fixture's random amounts would contradict amount_total.
    set(
        &mut o["shipping_cost"],
        json!({ "amount_subtotal": 0, "amount_tax": 0, "amount_total": 0 }),
    );
    set(
        &mut o["total_details"],
        json!({ "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 }),
    );
    set(
        &mut o["currency_conversion"],
        json!({ "amount_subtotal": s.amount, "amount_total": s.amount }),
    );
    o
}

fn subscription(status: &str, canceled_at: Option<i64>) -> Value {
    let (sub_id, start, period_end) = ("sub_demo_pro", 1_795_000_000_i64, 1_797_592_000_i64);
    // pro_monthly in shared/src/domain/catalog.json
    let (price_id, amount) = ("price_demo_pro_monthly", 2900);
    let mut sub = fixture("subscription");
    set(
        &mut sub,
        json!({
            "id": sub_id,
            "customer": CUSTOMER,
            "status": status,
            "metadata": { "user_id": USER, "plan_id": "pro_monthly" },
            "created": start,
            "start_date": start,
            "billing_cycle_anchor": start,
            "cancel_at_period_end": false,
            "cancel_at": null,
            "canceled_at": canceled_at,
            "ended_at": canceled_at,
            "trial_start": null,
            "trial_end": null,
            "next_pending_invoice_item_invoice": null,
            // The fixture describes a paused subscription with a pending update; a plain
            // monthly plan has neither.
            "pause_collection": null,
            "pending_update": null,
        }),
    );
    if canceled_at.is_some() {
        sub["cancellation_details"]["reason"] = "cancellation_requested".into();
    }
    let item = &mut sub["items"]["data"][0];
    set(
        item,
        json!({
            "id": "si_demo_pro",
            "created": start,
            "subscription": sub_id,
            "current_period_start": start,
            "current_period_end": period_end,
        }),
    );
    set(
        &mut item["price"],
        json!({ "id": price_id, "unit_amount": amount, "unit_amount_decimal": amount.to_string() }),
    );
    set(
        &mut item["plan"],
        json!({ "id": price_id, "amount": amount, "amount_decimal": amount.to_string() }),
    );
    sub["items"]["url"] = format!("/v1/subscription_items?subscription={sub_id}").into();
    sub
}

/// A PaymentIntent as `POST /api/billing/purchases` creates it (Stripe Elements).
fn payment_intent(pi_id: &str, status: &str) -> Value {
    let succeeded = status == "succeeded";
    let amount = 500;
    let mut pi = fixture("payment_intent");
    set(
        &mut pi,
        json!({
            "id": pi_id,
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": if succeeded { amount } else { 0 },
            "currency": "usd",
            "customer": CUSTOMER,
            "metadata": { "user_id": USER, "plan_id": "uses_20", "quantity": "1" },
            "status": status,
            "created": 1_795_000_240,
            "client_secret": format!("{pi_id}_secret_demo"),
            "latest_charge": if succeeded { Some(format!("ch_{}", &pi_id[3..])) } else { None },
            // The fixture's error describes an idempotency failure; a declined card says so.
            "last_payment_error": if succeeded { Value::Null } else { json!({
                "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                "message": "Your card was declined." }) },
        }),
    );
    pi
}

/// `kind` around `object`, with the changed fields' old values as Stripe sends them with
/// every `*.updated` (and paused/resumed) event.
fn changed(id: &str, kind: &str, created: i64, object: Value, previous: Value) -> Value {
    let mut e = event(id, kind, created, object);
    e["data"]["previous_attributes"] = previous;
    e
}

/// Every sample of `events/stripe/`: file name → the event.
pub fn stripe_samples() -> Vec<(&'static str, Value)> {
    let starter = checkout_session(Session {
        id: "cs_test_demo_credits_starter",
        plan: "credits_starter",
        amount: 1000,
        status: "complete",
        payment_status: "paid",
        created: 1_795_000_000 - 600,
        payment_intent: Some("pi_demo_credits_starter"),
    });
    let async_session = |payment_status| {
        checkout_session(Session {
            id: "cs_test_demo_async",
            plan: "uses_20",
            amount: 500,
            status: "complete",
            payment_status,
            created: 1_795_000_000 - 600,
            payment_intent: Some("pi_demo_async"),
        })
    };
    // Created a day before the event so that the expiry is what the event reports.
    let expired = checkout_session(Session {
        id: "cs_test_demo_expired",
        plan: "credits_basic",
        amount: 4500,
        status: "expired",
        payment_status: "unpaid",
        created: 1_795_000_000 - DAY,
        payment_intent: None,
    });
    let status = |s: &str| json!({ "status": s });
    vec![
        (
            "checkout.session.completed.credits_starter.json",
            event(
                "evt_demo_credits_starter_completed",
                "checkout.session.completed",
                1_795_000_000,
                starter,
            ),
        ),
        (
            "checkout.session.completed.async_pending.json",
            event(
                "evt_demo_async_completed",
                "checkout.session.completed",
                1_795_000_000,
                async_session("unpaid"),
            ),
        ),
        (
            "checkout.session.async_payment_succeeded.json",
            event(
                "evt_demo_async_succeeded",
                "checkout.session.async_payment_succeeded",
                1_795_000_060,
                async_session("paid"),
            ),
        ),
        (
            "checkout.session.async_payment_failed.json",
            event(
                "evt_demo_async_failed",
                "checkout.session.async_payment_failed",
                1_795_000_060,
                async_session("unpaid"),
            ),
        ),
        (
            "checkout.session.expired.json",
            event(
                "evt_demo_expired",
                "checkout.session.expired",
                1_795_000_000,
                expired,
            ),
        ),
        (
            "customer.subscription.created.json",
            event(
                "evt_demo_sub_created",
                "customer.subscription.created",
                1_795_000_000,
                subscription("active", None),
            ),
        ),
        (
            "customer.subscription.updated.json",
            changed(
                "evt_demo_sub_updated",
                "customer.subscription.updated",
                1_795_000_100,
                subscription("past_due", None),
                status("active"),
            ),
        ),
        // Paused: a trial that ended without a payment method (pause on trial end).
        (
            "customer.subscription.paused.json",
            changed(
                "evt_demo_sub_paused",
                "customer.subscription.paused",
                1_795_000_140,
                subscription("paused", None),
                status("trialing"),
            ),
        ),
        (
            "customer.subscription.resumed.json",
            changed(
                "evt_demo_sub_resumed",
                "customer.subscription.resumed",
                1_795_000_160,
                subscription("active", None),
                status("paused"),
            ),
        ),
        (
            "customer.subscription.deleted.json",
            event(
                "evt_demo_sub_deleted",
                "customer.subscription.deleted",
                1_795_000_200,
                subscription("canceled", Some(1_795_000_200)),
            ),
        ),
        (
            "payment_intent.succeeded.json",
            event(
                "evt_demo_pi_succeeded",
                "payment_intent.succeeded",
                1_795_000_300,
                payment_intent("pi_demo_elements", "succeeded"),
            ),
        ),
        (
            "payment_intent.payment_failed.json",
            event(
                "evt_demo_pi_failed",
                "payment_intent.payment_failed",
                1_795_000_300,
                payment_intent("pi_demo_declined", "requires_payment_method"),
            ),
        ),
    ]
}
