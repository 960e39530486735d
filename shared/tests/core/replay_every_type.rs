//! A replayed event of every handled type changes nothing: apply one of each, snapshot
//! the accounts and checkouts, deliver them all again (in reverse), and compare.

use billing_core::app::Services;
use billing_core::domain::ids::{SessionId, UserId};
use billing_core::stripe::event_types::HANDLED;
use billing_core::usecases::account::account;
use billing_core::usecases::checkout_status::checkout_status;
use billing_core::usecases::fulfil;
use billing_testing::{
    checkout_session, event, memory_services, object, payment_intent, stripe_entitlement_summary,
    subscription,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const T0: i64 = 1_795_000_000;

fn every_type() -> Vec<Value> {
    let unpaid = checkout_session("cs_test_rp_async", "rp", "uses_20", "unpaid", 500);
    let paid_async = checkout_session("cs_test_rp_async", "rp", "uses_20", "paid", 500);
    let failed = checkout_session("cs_test_rp_fail", "rp", "uses_20", "unpaid", 500);
    let mut expired = checkout_session("cs_test_rp_exp", "rp", "credits_basic", "unpaid", 4500);
    expired["status"] = json!("expired");
    let sub = |status: &str| {
        subscription(
            "sub_rp",
            "rp",
            "pro_credits_monthly",
            status,
            T0 + 2_600_000,
        )
    };
    let mut invoice = object(
        "invoice",
        json!({ "id": "in_rp", "customer": "cus_rp",
                "billing_reason": "subscription_cycle", "amount_paid": 2000 }),
    );
    invoice["parent"] = json!({ "subscription_details": { "subscription": "sub_rp", "metadata": { "user_id": "rp", "plan_id": "pro_credits_monthly" } } });
    let charge = object(
        "charge",
        json!({ "id": "ch_rp", "payment_intent": "pi_cs_test_rp_pack", "amount": 1000, "amount_refunded": 400 }),
    );
    let dispute = object(
        "dispute",
        json!({ "id": "dp_rp", "amount": 500, "status": "needs_response", "payment_intent": "pi_cs_test_rp_pack2" }),
    );
    let mut lost = dispute.clone();
    lost["status"] = json!("lost");
    let mut withdrawn = dispute.clone();
    withdrawn["status"] = json!("needs_response");
    let won = object(
        "dispute",
        json!({ "id": "dp_rp_won", "amount": 500, "status": "won", "payment_intent": "pi_cs_test_rp_async" }),
    );
    vec![
        event(
            "evt_rp1",
            "checkout.session.completed",
            T0,
            checkout_session("cs_test_rp_pack", "rp", "credits_starter", "paid", 1000),
        ),
        event(
            "evt_rp1b",
            "checkout.session.completed",
            T0,
            checkout_session("cs_test_rp_pack2", "rp", "uses_20", "paid", 500),
        ),
        event("evt_rp2", "checkout.session.completed", T0 + 1, unpaid),
        event(
            "evt_rp3",
            "checkout.session.async_payment_succeeded",
            T0 + 2,
            paid_async,
        ),
        event(
            "evt_rp4",
            "checkout.session.async_payment_failed",
            T0 + 3,
            failed,
        ),
        event("evt_rp5", "checkout.session.expired", T0 + 4, expired),
        event(
            "evt_rp6",
            "customer.subscription.created",
            T0 + 5,
            sub("active"),
        ),
        event(
            "evt_rp7",
            "customer.subscription.updated",
            T0 + 6,
            sub("past_due"),
        ),
        event("evt_rp8", "invoice.payment_failed", T0 + 7, invoice.clone()),
        event(
            "evt_rp8b",
            "invoice.payment_action_required",
            T0 + 7,
            invoice.clone(),
        ),
        event("evt_rp9", "invoice.paid", T0 + 8, invoice),
        event("evt_rp10", "charge.refunded", T0 + 9, charge),
        event("evt_rp11", "charge.dispute.created", T0 + 10, dispute),
        event("evt_rp11b", "charge.dispute.closed", T0 + 10, lost),
        event("evt_rp11c", "charge.dispute.funds_reinstated", T0 + 10, won),
        event(
            "evt_rp11d",
            "charge.dispute.funds_withdrawn",
            T0 + 10,
            withdrawn,
        ),
        event(
            "evt_rp7b",
            "customer.subscription.paused",
            T0 + 8,
            sub("paused"),
        ),
        event(
            "evt_rp7c",
            "customer.subscription.resumed",
            T0 + 9,
            sub("active"),
        ),
        event(
            "evt_rp12",
            "customer.subscription.deleted",
            T0 + 11,
            sub("canceled"),
        ),
        // A pack bought with Stripe Elements, and the checkout pack's own PaymentIntent
        // (already fulfilled through its session).
        event(
            "evt_rp13",
            "payment_intent.succeeded",
            T0 + 12,
            payment_intent("pi_rp_elements", "rp", "uses_20", 1, 500, "succeeded"),
        ),
        event(
            "evt_rp14",
            "payment_intent.succeeded",
            T0 + 13,
            payment_intent(
                "pi_cs_test_rp_pack",
                "rp",
                "credits_starter",
                1,
                1000,
                "succeeded",
            ),
        ),
        event(
            "evt_rp15",
            "payment_intent.payment_failed",
            T0 + 14,
            payment_intent(
                "pi_rp_declined",
                "rp",
                "uses_20",
                1,
                500,
                "requires_payment_method",
            ),
        ),
        event(
            "evt_rp_summary",
            "entitlements.active_entitlement_summary.updated",
            T0 + 20,
            stripe_entitlement_summary("cus_rp", &["priority_support"]),
        ),
    ]
}

async fn snapshot(s: &Services) -> Value {
    let mut a =
        serde_json::to_value(account(s, &UserId::parse("rp").unwrap()).await.unwrap()).unwrap();
    // Purchases carry the time they were recorded, which a replay does not change either.
    let mut states = Vec::new();
    for id in [
        "cs_test_rp_pack",
        "cs_test_rp_async",
        "cs_test_rp_fail",
        "cs_test_rp_exp",
    ] {
        states.push(
            checkout_status(s, &SessionId::parse(id).unwrap())
                .await
                .unwrap()
                .state
                .as_str(),
        );
    }
    a["checkouts"] = json!(states);
    a
}

#[tokio::test]
async fn the_fixture_set_covers_every_handled_type() {
    let kinds: BTreeSet<String> = every_type()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, HANDLED.iter().map(|k| k.to_string()).collect());
}

#[tokio::test]
async fn replaying_every_event_type_changes_nothing() {
    let s = memory_services(&[]);
    for e in every_type() {
        fulfil::process(&s, &e.to_string()).await.unwrap();
    }
    let before = snapshot(&s).await;
    assert_eq!(
        before["credits"]["balance"],
        1000 - 400 + 2000 + 20 + 20 - 20 + 20,
        "{before}"
    );
    for e in every_type().iter().rev() {
        fulfil::process(&s, &e.to_string()).await.unwrap();
    }
    assert_eq!(snapshot(&s).await, before);
}
