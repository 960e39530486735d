//! Two tabs, one subscription: a subscription checkout closes the account's open one through
//! Stripe before it creates another, so two Checkout Sessions can never both be paid (and
//! two subscriptions billed side by side); one Stripe already holds as paid refuses it.

use billing_testing::{
    FakeSubscriptions, checkout_session, event, fake_stripe, object, subscription,
};
use black_box_tests::TestApp;
use serde_json::{Value, json};

/// A fake Stripe whose sessions are told apart by the request's `Idempotency-Key`.
async fn stripe() -> wiremock::MockServer {
    let server = fake_stripe("cs_test_tabs_unused").await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/checkout/sessions"))
        .respond_with(|req: &wiremock::Request| {
            let key = req
                .headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap();
            let id = format!("cs_test_tab_{}", key.trim_start_matches("checkout-"));
            wiremock::ResponseTemplate::new(200).set_body_json(object(
                "checkout.session",
                json!({ "id": id, "status": "open",
                        "url": format!("https://checkout.stripe.com/c/pay/{id}") }),
            ))
        })
        .with_priority(1)
        .mount(&server)
        .await;
    server
}

async fn app(stripe: &wiremock::MockServer) -> TestApp {
    TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_tabs"),
        ("STRIPE_API_BASE", &stripe.uri()),
        ("STRIPE_PRICE_PRO_MONTHLY", "price_tabs_monthly"),
        ("STRIPE_PRICE_PRO_ANNUAL", "price_tabs_annual"),
    ])
    .await
}

async fn checkout(app: &TestApp, user: &str, plan: &str, key: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/api/billing/checkout"))
        .bearer_auth(app.token(user))
        .header("idempotency-key", key)
        .json(&json!({ "plan_id": plan }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn expired(stripe: &wiremock::MockServer) -> Vec<String> {
    stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/expire"))
        .map(|r| r.url.path().split('/').nth(4).unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_second_tab_closes_the_first_tabs_checkout_before_opening_its_own() {
    let stripe = stripe().await;
    let app = app(&stripe).await;
    let (s1, first) = checkout(&app, "tabby", "pro_monthly", "tab-1").await;
    assert_eq!(s1, 200, "{first}");
    // The same request again (a retry) is the same session, left open.
    let (_, again) = checkout(&app, "tabby", "pro_monthly", "tab-1").await;
    assert_eq!(again["session_id"], first["session_id"]);
    assert!(expired(&stripe).await.is_empty());
    // Another tab, another plan: the first session is expired at Stripe first.
    let (s2, second) = checkout(&app, "tabby", "pro_annual", "tab-2").await;
    assert_eq!(s2, 200, "{second}");
    assert_ne!(second["session_id"], first["session_id"]);
    assert_eq!(
        expired(&stripe).await,
        [first["session_id"].as_str().unwrap()]
    );
    // And a third closes the second: only the newest can be paid.
    let (s3, third) = checkout(&app, "tabby", "pro_monthly", "tab-3").await;
    assert_eq!(s3, 200, "{third}");
    assert_eq!(
        expired(&stripe).await[1..],
        [second["session_id"].as_str().unwrap()]
    );
}

#[tokio::test]
async fn a_tab_whose_checkout_stripe_holds_complete_is_refused_a_second_subscription() {
    let stripe = stripe().await;
    let app = app(&stripe).await;
    let (_, first) = checkout(&app, "paidtab", "pro_monthly", "paid-1").await;
    let sid = first["session_id"].as_str().unwrap().to_owned();
    // Paid in the first tab; Stripe's webhook has not reached us yet.
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(format!(
            "/v1/checkout/sessions/{sid}/expire"
        )))
        .respond_with(
            wiremock::ResponseTemplate::new(400).set_body_json(json!({ "error": {
            "type": "invalid_request_error",
            "message": "Only Checkout Sessions with a status of `open` can be expired." } })),
        )
        .with_priority(1)
        .mount(&stripe)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(format!(
            "/v1/checkout/sessions/{sid}"
        )))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(object(
            "checkout.session",
            json!({ "id": sid, "status": "complete", "payment_status": "paid" }),
        )))
        .mount(&stripe)
        .await;
    let (status, body) = checkout(&app, "paidtab", "pro_annual", "paid-2").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_subscribed")),
        "{body}"
    );
    let created = stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/checkout/sessions")
        .count();
    assert_eq!(created, 1, "no second session was created");
}

#[tokio::test]
async fn a_subscription_bought_and_canceled_long_ago_does_not_block_a_new_one() {
    let stripe = stripe().await;
    let held = FakeSubscriptions::mount(&stripe).await;
    let app = app(&stripe).await;
    let (_, first) = checkout(&app, "returner", "pro_monthly", "ret-1").await;
    let sid = first["session_id"].as_str().unwrap();
    // Paid, fulfilled, and the subscription later canceled, as Stripe holds it.
    app.deliver(&event(
        "evt_ret_completed",
        "checkout.session.completed",
        1_795_000_000,
        checkout_session(sid, "returner", "pro_monthly", "paid", 2900),
    ))
    .await;
    let mut sub = subscription(
        "sub_ret",
        "returner",
        "pro_monthly",
        "canceled",
        1_797_000_000,
    );
    sub["items"]["data"][0]["price"]["id"] = "price_tabs_monthly".into();
    held.put(&sub);
    app.deliver(&event(
        "evt_ret_deleted",
        "customer.subscription.deleted",
        1_796_000_000,
        sub,
    ))
    .await;
    app.eventually("the canceled subscription shows", || async {
        app.account("returner").await["subscription"]["status"] == "canceled"
    })
    .await;
    let (status, again) = checkout(&app, "returner", "pro_annual", "ret-2").await;
    assert_eq!(status, 200, "{again}");
    assert!(
        expired(&stripe).await.is_empty(),
        "a completed session is not expired"
    );
}

#[tokio::test]
async fn a_last_session_stripe_does_not_know_blocks_nothing() {
    let stripe = stripe().await;
    let app = app(&stripe).await;
    let (_, first) = checkout(&app, "moved", "pro_monthly", "moved-1").await;
    let sid = first["session_id"].as_str().unwrap();
    // The account's last session is unknown to Stripe now (another account or mode).
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(format!(
            "/v1/checkout/sessions/{sid}/expire"
        )))
        .respond_with(
            wiremock::ResponseTemplate::new(404).set_body_json(json!({ "error": {
            "type": "invalid_request_error", "code": "resource_missing",
            "message": format!("No such checkout.session: '{sid}'") } })),
        )
        .with_priority(1)
        .mount(&stripe)
        .await;
    let (status, second) = checkout(&app, "moved", "pro_annual", "moved-2").await;
    assert_eq!(status, 200, "{second}");
}
