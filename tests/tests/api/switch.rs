//! Plan switches, black-box: `POST /api/billing/subscription` moves the live subscription
//! to the new plan's price through (fake) Stripe, once; a second subscription checkout is
//! refused and names the switch route.

use billing_testing::{FakeSubscriptions, event, fake_stripe, subscription};
use black_box_tests::TestApp;
use serde_json::json;

const T0: i64 = 1_795_000_000;
const MONTHLY: &str = "price_sw_monthly";
const ANNUAL: &str = "price_sw_annual";

/// The item id of subscription `id` in the fake Stripe.
fn item_id(id: &str) -> String {
    format!("si_{}", id.trim_start_matches("sub_"))
}

/// A stack whose user holds `sub_id` on pro_monthly, as (fake) Stripe holds it too.
async fn subscribed_app(stripe: &wiremock::MockServer, user: &str, sub_id: &str) -> TestApp {
    let held = FakeSubscriptions::mount(stripe).await;
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_switch"),
        ("STRIPE_API_BASE", &stripe.uri()),
        ("STRIPE_PRICE_PRO_MONTHLY", MONTHLY),
        ("STRIPE_PRICE_PRO_ANNUAL", ANNUAL),
    ])
    .await;
    let mut sub = subscription(sub_id, user, "pro_monthly", "active", T0 + 2_592_000);
    sub["items"]["data"][0]["price"]["id"] = MONTHLY.into();
    sub["items"]["data"][0]["id"] = item_id(sub_id).into();
    held.put(&sub);
    app.deliver(&event(
        "evt_sw_created",
        "customer.subscription.created",
        T0,
        sub,
    ))
    .await;
    app.eventually("pro_monthly is live", || async {
        app.account(user).await["subscription"]["plan_id"] == "pro_monthly"
    })
    .await;
    app
}

#[tokio::test]
async fn a_switch_from_pro_monthly_to_pro_annual_calls_stripe_with_the_new_price_once() {
    let stripe = fake_stripe("cs_test_sw_unused").await;
    let app = subscribed_app(&stripe, "sam", "sub_sw_1").await;
    let sam = app.token("sam");
    let body = json!({ "plan_id": "pro_annual" });

    let switched = app
        .post_json("/api/billing/subscription", Some(&sam), &body)
        .await;
    assert_eq!(switched.status, 200, "{}", switched.body);
    assert_eq!(switched.body["subscription"]["id"], "sub_sw_1");
    assert_eq!(switched.body["subscription"]["plan_id"], "pro_annual");
    // A retried click finds Stripe on the new price already: the same answer, no second switch.
    let retried = app
        .post_json("/api/billing/subscription", Some(&sam), &body)
        .await;
    assert_eq!((retried.status, &retried.body), (200, &switched.body));

    let posts: Vec<_> = stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/subscriptions/sub_sw_1")
        .collect();
    assert_eq!(posts.len(), 1, "one switch in all");
    let form: std::collections::HashMap<String, String> = form_urlencoded::parse(&posts[0].body)
        .into_owned()
        .collect();
    assert_eq!(
        form.get("items[0][price]").map(String::as_str),
        Some(ANNUAL)
    );
    assert_eq!(form.get("items[0][id]"), Some(&item_id("sub_sw_1")));
    let key = posts[0]
        .headers
        .get("idempotency-key")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(key.starts_with("switch-"), "{key}");
    // The account changes only when Stripe's event says so.
    assert_eq!(
        app.account("sam").await["subscription"]["plan_id"],
        "pro_monthly"
    );
}

#[tokio::test]
async fn a_switch_is_refused_without_a_subscription_to_the_same_plan_or_to_a_pack() {
    let stripe = fake_stripe("cs_test_sw_unused2").await;
    let app = subscribed_app(&stripe, "tess", "sub_sw_2").await;
    let tess = app.token("tess");
    let cases = [
        (app.token("nobody"), "pro_annual", 404, "no_subscription"),
        (tess.clone(), "pro_monthly", 409, "already_subscribed"),
        (tess.clone(), "no_such_plan", 400, "unknown_plan"),
        (tess.clone(), "credits_starter", 400, "unsupported_plan"),
    ];
    for (token, plan, status, code) in cases {
        let r = app
            .post_json(
                "/api/billing/subscription",
                Some(&token),
                &json!({ "plan_id": plan }),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{plan}"
        );
    }
    let asked: Vec<_> = stripe.received_requests().await.unwrap();
    assert!(
        asked.iter().all(|r| r.method.as_str() != "POST"),
        "a refused switch never reaches Stripe"
    );
}

#[tokio::test]
async fn a_second_subscription_checkout_is_409_naming_the_switch_route() {
    let stripe = fake_stripe("cs_test_sw_second").await;
    let app = subscribed_app(&stripe, "uli", "sub_sw_3").await;
    let r = app
        .post_json(
            "/api/billing/checkout",
            Some(&app.token("uli")),
            &json!({ "plan_id": "pro_annual" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("already_subscribed"))
    );
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("POST /api/billing/subscription"),
        "{message}"
    );
    let sessions = stripe.received_requests().await.unwrap();
    assert!(
        sessions
            .iter()
            .all(|r| r.url.path() != "/v1/checkout/sessions")
    );
}

#[tokio::test]
async fn a_switch_without_stripe_is_503_and_a_stripe_refusal_is_502() {
    // No key: the honest degraded answer, pointing to a manual invoice.
    let app = TestApp::spawn().await;
    let mut sub = subscription("sub_sw_4", "vic", "pro_monthly", "active", T0 + 2_592_000);
    sub["items"]["data"][0]["price"]["id"] = MONTHLY.into();
    app.deliver(&event("evt_sw_4", "customer.subscription.created", T0, sub))
        .await;
    app.eventually("subscribed", || async {
        app.account("vic").await["subscription"]["status"] == "active"
    })
    .await;
    let r = app
        .post_json(
            "/api/billing/subscription",
            Some(&app.token("vic")),
            &json!({ "plan_id": "pro_annual" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (503, Some("billing_unavailable"))
    );

    // Stripe refuses the update: 502, Stripe's internal message kept from the caller.
    let stripe = fake_stripe("cs_test_sw_refused").await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/subscriptions/sub_sw_5"))
        .respond_with(
            wiremock::ResponseTemplate::new(400).set_body_json(json!({ "error": {
            "type": "invalid_request_error",
            "message": "No such price: 'price_sw_annual' on sub_sw_5" } })),
        )
        .with_priority(1)
        .mount(&stripe)
        .await;
    let app = subscribed_app(&stripe, "wes", "sub_sw_5").await;
    let r = app
        .post_json(
            "/api/billing/subscription",
            Some(&app.token("wes")),
            &json!({ "plan_id": "pro_annual" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (502, Some("stripe_error"))
    );
    assert!(!r.body.to_string().contains("sub_sw_5"), "{}", r.body);
    assert_eq!(
        app.account("wes").await["subscription"]["plan_id"],
        "pro_monthly"
    );
}

#[tokio::test]
async fn two_clicks_at_once_reach_stripe_under_one_idempotency_key() {
    let stripe = fake_stripe("cs_test_sw_double").await;
    let app = subscribed_app(&stripe, "xia", "sub_sw_6").await;
    let xia = app.token("xia");
    let body = json!({ "plan_id": "pro_annual" });
    let (a, b) = tokio::join!(
        app.post_json("/api/billing/subscription", Some(&xia), &body),
        app.post_json("/api/billing/subscription", Some(&xia), &body),
    );
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    let keys: std::collections::BTreeSet<String> = stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .filter_map(|r| {
            r.headers
                .get("idempotency-key")?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .collect();
    // However many POSTs the race let through, they are one switch for Stripe.
    assert_eq!(keys.len(), 1, "{keys:?}");
}

#[tokio::test]
async fn switching_back_and_forth_switches_each_time() {
    let stripe = fake_stripe("cs_test_sw_back").await;
    let app = subscribed_app(&stripe, "yan", "sub_sw_7").await;
    let yan = app.token("yan");
    let held = || async {
        reqwest::get(format!("{}/v1/subscriptions/sub_sw_7", stripe.uri()))
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    for (i, (plan, price)) in [
        ("pro_annual", ANNUAL),
        ("pro_monthly", MONTHLY),
        ("pro_annual", ANNUAL),
    ]
    .into_iter()
    .enumerate()
    {
        let r = app
            .post_json(
                "/api/billing/subscription",
                Some(&yan),
                &json!({ "plan_id": plan }),
            )
            .await;
        assert_eq!(r.status, 200, "{plan}: {}", r.body);
        let now = held().await;
        assert_eq!(now["items"]["data"][0]["price"]["id"], price, "switch {i}");
        // Stripe's event of the switch lands before the next click.
        app.deliver(&event(
            &format!("evt_sw_back_{i}"),
            "customer.subscription.updated",
            T0 + 10 + i as i64,
            now,
        ))
        .await;
        app.eventually(&format!("on {plan}"), || async {
            app.account("yan").await["subscription"]["plan_id"] == plan
        })
        .await;
    }
}
