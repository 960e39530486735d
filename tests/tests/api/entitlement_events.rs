//! `billing.entitlements.changed`, black-box: signed Stripe events through intake, SQS and
//! the worker; the table's stream through the publisher; moto's EventBridge; read back at
//! `GET /_local/entitlement-events` from a queue subscribed to the stack's bus.

use billing_testing::{checkout_session, event, object, subscription};
use black_box_tests::TestApp;
use serde_json::{Value, json};
use std::time::Duration;

const T0: i64 = 1_795_000_000;

/// The details published for `user`, in the order they reached the subscriber's queue.
async fn published(app: &TestApp, user: &str) -> Vec<Value> {
    let r = app.get("/_local/entitlement-events", None).await;
    assert_eq!(r.status, 200);
    r.body["events"]
        .as_array()
        .expect("a list of events")
        .iter()
        .filter(|e| e["detail"]["user_id"] == user)
        .map(|e| {
            assert_eq!(
                (e["source"].as_str(), e["detail-type"].as_str()),
                (Some("billing"), Some("billing.entitlements.changed"))
            );
            e["detail"].clone()
        })
        .collect()
}

async fn wait_for(app: &TestApp, user: &str, count: usize) -> Vec<Value> {
    app.eventually(&format!("{count} events for {user}"), || async {
        published(app, user).await.len() >= count
    })
    .await;
    published(app, user).await
}

#[tokio::test]
async fn a_purchase_a_cancellation_and_a_refund_each_publish_one_event_with_a_higher_version() {
    let app = TestApp::spawn().await;
    let user = "nora";
    let buy = event(
        "evt_ee_buy",
        "checkout.session.completed",
        T0,
        checkout_session("cs_test_ee_nora", user, "credits_starter", "paid", 1000),
    );
    app.deliver(&buy).await;
    let after_buy = wait_for(&app, user, 1).await;
    // The features are the account's (`GET /api/billing/entitlements`, checked there).
    let mut detail = after_buy[0].clone();
    let features = detail
        .as_object_mut()
        .and_then(|d| d.remove("features"))
        .expect("the event carries the features");
    assert_eq!(features["usage"]["remaining"], 3);
    assert_eq!(
        detail,
        json!({ "id": "nora:1", "user_id": user, "tier": "free", "plan_id": null,
                "subscription_status": null, "credits": { "balance": 1000, "free_uses_remaining": 3 },
                "credit_until": null, "cause": "evt_ee_buy", "version": 1 })
    );

    let sub = |status: &str| subscription("sub_ee", user, "pro_monthly", status, T0 + 2_592_000);
    app.deliver(&event(
        "evt_ee_sub",
        "customer.subscription.created",
        T0 + 10,
        sub("active"),
    ))
    .await;
    let after_sub = wait_for(&app, user, 2).await;
    assert_eq!(
        (
            after_sub[1]["tier"].as_str(),
            after_sub[1]["plan_id"].as_str(),
            after_sub[1]["version"].as_i64()
        ),
        (Some("paid"), Some("pro_monthly"), Some(2))
    );

    app.deliver(&event(
        "evt_ee_cancel",
        "customer.subscription.deleted",
        T0 + 20,
        sub("canceled"),
    ))
    .await;
    let after_cancel = wait_for(&app, user, 3).await;
    assert_eq!(
        (
            after_cancel[2]["tier"].as_str(),
            after_cancel[2]["subscription_status"].as_str(),
            after_cancel[2]["cause"].as_str(),
            after_cancel[2]["version"].as_i64()
        ),
        (
            Some("free"),
            Some("canceled"),
            Some("evt_ee_cancel"),
            Some(3)
        )
    );

    let charge = object(
        "charge",
        json!({ "id": "ch_ee", "payment_intent": "pi_cs_test_ee_nora", "amount": 1000, "amount_refunded": 1000 }),
    );
    app.deliver(&event("evt_ee_refund", "charge.refunded", T0 + 30, charge))
        .await;
    let after_refund = wait_for(&app, user, 4).await;
    assert_eq!(
        (
            after_refund[3]["credits"]["balance"].as_i64(),
            after_refund[3]["cause"].as_str(),
            after_refund[3]["id"].as_str()
        ),
        (Some(0), Some("evt_ee_refund"), Some("nora:4"))
    );

    // Nothing more arrives: one event per change.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let versions: Vec<i64> = published(&app, user)
        .await
        .iter()
        .filter_map(|d| d["version"].as_i64())
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn the_same_stripe_event_again_publishes_no_new_version() {
    let app = TestApp::spawn().await;
    let buy = event(
        "evt_ee_dup",
        "checkout.session.completed",
        T0,
        checkout_session("cs_test_ee_olga", "olga", "credits_starter", "paid", 1000),
    );
    app.deliver(&buy).await;
    wait_for(&app, "olga", 1).await;
    // Stripe delivers it again (intake answers duplicate), and SQS hands the worker the
    // same event again (its guard finds it applied): neither changes the account.
    assert_eq!(
        app.deliver(&buy).await.body,
        json!({ "status": "duplicate" })
    );
    let again = billing_core::queue::OutgoingMessage {
        group: "cus_olga".into(),
        dedup_id: "redelivery-of-evt_ee_dup".into(),
        body: buy.to_string(),
    };
    app.stack.services.queue.send(&again).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let events = published(&app, "olga").await;
    assert_eq!(
        events.iter().map(|d| d["id"].clone()).collect::<Vec<_>>(),
        vec![json!("olga:1")],
        "{events:?}"
    );
}

#[tokio::test]
async fn a_new_stack_has_published_nothing() {
    let app = TestApp::spawn().await;
    let r = app.get("/_local/entitlement-events", None).await;
    assert_eq!(
        (r.status, r.body["events"].as_array().map(Vec::len)),
        (200, Some(0))
    );
}
