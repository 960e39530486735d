//! Taking money, black-box: the local stack with `STRIPE_API_BASE` pointed at a fake Stripe
//! (wiremock, answering with the official fixtures): checkout → the signed completion event
//! → the account shows the plan → the portal opens for that user and for no other.

use billing_testing::{checkout_session, event, fake_stripe};
use black_box_tests::TestApp;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn checkout_then_completion_then_the_portal_for_the_owner_only() {
    let stripe = fake_stripe("cs_test_flow_1").await;
    let base = stripe.uri();
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_flow"),
        ("STRIPE_API_BASE", &base),
        ("STRIPE_PRICE_CREDITS_STARTER", "price_flow_starter"),
    ])
    .await;
    let alice = app.token("alice");

    let started = app
        .post_json(
            "/api/billing/checkout",
            Some(&alice),
            &json!({ "plan_id": "credits_starter" }),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.body["via"], "checkout_session");
    assert_eq!(started.body["session_id"], "cs_test_flow_1");
    assert_eq!(app.checkout_state("cs_test_flow_1").await, "processing");

    let mut session = checkout_session("cs_test_flow_1", "alice", "credits_starter", "paid", 1000);
    session["customer"] = json!("cus_flow_alice");
    app.deliver(&event(
        "evt_flow_1",
        "checkout.session.completed",
        1_795_000_000,
        session,
    ))
    .await;
    app.eventually("fulfilled", || async {
        app.checkout_state("cs_test_flow_1").await == "fulfilled"
    })
    .await;
    let account = app.account("alice").await;
    assert_eq!(account["credits"]["balance"], 1000);
    assert_eq!(account["purchases"][0]["plan_id"], "credits_starter");

    let portal = app
        .post_json(
            "/api/billing/portal",
            Some(&alice),
            &json!({ "return_path": "/account" }),
        )
        .await;
    assert_eq!(portal.status, 200, "{}", portal.body);
    assert!(portal.body["url"].as_str().unwrap().starts_with("https://"));
    let bob = app
        .post_json("/api/billing/portal", Some(&app.token("bob")), &json!({}))
        .await;
    assert_eq!(
        (bob.status, bob.body["error"]["code"].as_str()),
        (404, Some("no_customer"))
    );

    // The portal request named alice's customer, and only hers.
    let requests = stripe.received_requests().await.unwrap();
    let portal_forms: Vec<String> = requests
        .iter()
        .filter(|r| r.url.path() == "/v1/billing_portal/sessions")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(portal_forms.len(), 1);
    assert!(portal_forms[0].contains("customer=cus_flow_alice"));
}

#[tokio::test]
async fn checkout_errors_follow_the_contract_and_leak_nothing() {
    let stripe = billing_testing::strict_stripe().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "error": {
            "type": "invalid_request_error", "message": "No such price: 'price_internal_9'" } })))
        .mount(&stripe)
        .await;
    let base = stripe.uri();
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_errors"),
        ("STRIPE_API_BASE", &base),
        ("STRIPE_PRICE_CREDITS_STARTER", "price_internal_9"),
    ])
    .await;
    let t = app.token("zed");
    let cases = [
        (json!({ "plan_id": "credits_starter" }), 502, "stripe_error"),
        (json!({ "plan_id": "nope" }), 400, "unknown_plan"),
        (
            json!({ "plan_id": "credits_starter", "success_path": "https://evil.example" }),
            400,
            "invalid_redirect",
        ),
        (
            json!({ "plan_id": "deposit_500" }),
            503,
            "billing_unavailable",
        ),
        (json!({ "plan": "credits_starter" }), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let r = app
            .post_json("/api/billing/checkout", Some(&t), &body)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        let text = r.body.to_string();
        assert!(
            !text.contains("price_internal_9") && !text.contains("sk_test_errors"),
            "{text}"
        );
    }
    let anonymous = app
        .post_json(
            "/api/billing/checkout",
            None,
            &json!({ "plan_id": "credits_starter" }),
        )
        .await;
    assert_eq!(anonymous.status, 401);
}
