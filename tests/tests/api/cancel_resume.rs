//! Cancel at period end and resume, black-box: both go through (fake) Stripe's
//! `cancel_at_period_end` and show on the account when Stripe's update arrives; a user
//! only ever reaches their own subscription.

use billing_testing::{FakeSubscriptions, event, fake_stripe, subscription};
use black_box_tests::TestApp;
use serde_json::{Value, json};

const T0: i64 = 1_795_000_000;
const PERIOD_END: i64 = T0 + 2_592_000;
const MONTHLY: &str = "price_cr_monthly";

fn held_sub(sub_id: &str, user: &str) -> Value {
    let mut sub = subscription(sub_id, user, "pro_monthly", "active", PERIOD_END);
    sub["items"]["data"][0]["price"]["id"] = MONTHLY.into();
    sub["items"]["data"][0]["id"] = format!("si_{}", sub_id.trim_start_matches("sub_")).into();
    sub
}

/// A stack where each `(user, sub_id)` holds an active pro_monthly subscription, as (fake)
/// Stripe holds it too.
async fn subscribed(
    stripe: &wiremock::MockServer,
    users: &[(&str, &str)],
) -> (TestApp, FakeSubscriptions) {
    let held = FakeSubscriptions::mount(stripe).await;
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_cancel"),
        ("STRIPE_API_BASE", &stripe.uri()),
        ("STRIPE_PRICE_PRO_MONTHLY", MONTHLY),
    ])
    .await;
    for (user, sub_id) in users {
        let sub = held_sub(sub_id, user);
        held.put(&sub);
        app.deliver(&event(
            &format!("evt_{sub_id}_created"),
            "customer.subscription.created",
            T0,
            sub,
        ))
        .await;
        app.eventually("subscribed", || async {
            app.account(user).await["subscription"]["status"] == "active"
        })
        .await;
    }
    (app, held)
}

async fn deliver_update(app: &TestApp, held: &FakeSubscriptions, sub_id: &str, n: i64) {
    let now = held.get(sub_id).unwrap();
    app.deliver(&event(
        &format!("evt_{sub_id}_upd_{n}"),
        "customer.subscription.updated",
        T0 + n,
        now,
    ))
    .await;
}

fn subscription_posts(requests: &[wiremock::Request]) -> Vec<(String, String)> {
    requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().starts_with("/v1/subscriptions/"))
        .map(|r| {
            (
                r.url.path().to_owned(),
                String::from_utf8_lossy(&r.body).into_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn cancel_sets_cancel_at_period_end_and_the_account_shows_the_end_once_stripe_says_so() {
    let stripe = fake_stripe("cs_test_cr_1").await;
    let (app, held) = subscribed(&stripe, &[("ada", "sub_cr_1")]).await;
    let ada = app.token("ada");
    let r = app
        .post_json("/api/billing/subscription/cancel", Some(&ada), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["subscription"]["cancel_at_period_end"], true);
    assert_eq!(held.get("sub_cr_1").unwrap()["cancel_at_period_end"], true);
    // Until Stripe's update arrives, the account shows what was applied.
    assert_eq!(
        app.account("ada").await["subscription"]["cancel_at_period_end"],
        false
    );
    deliver_update(&app, &held, "sub_cr_1", 1).await;
    app.eventually("the end shows", || async {
        let s = app.account("ada").await["subscription"].clone();
        s["cancel_at_period_end"] == true && s["cancel_at"] == "2026-12-18T11:06:40Z"
    })
    .await;
    // A second click: Stripe holds the end already; the same answer, no second update.
    let again = app
        .post_json("/api/billing/subscription/cancel", Some(&ada), &json!({}))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    let posts = subscription_posts(&stripe.received_requests().await.unwrap());
    assert_eq!(
        posts,
        vec![(
            "/v1/subscriptions/sub_cr_1".into(),
            "cancel_at_period_end=true".into()
        )]
    );
}

#[tokio::test]
async fn resume_undoes_a_cancellation_and_is_409_when_nothing_is_set_to_end() {
    let stripe = fake_stripe("cs_test_cr_2").await;
    let (app, held) = subscribed(&stripe, &[("bea", "sub_cr_2")]).await;
    let bea = app.token("bea");
    let early = app
        .post_json("/api/billing/subscription/resume", Some(&bea), &json!({}))
        .await;
    assert_eq!(
        (early.status, early.body["error"]["code"].as_str()),
        (409, Some("not_canceling"))
    );
    let cancel = app
        .post_json("/api/billing/subscription/cancel", Some(&bea), &json!({}))
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    deliver_update(&app, &held, "sub_cr_2", 1).await;
    app.eventually("canceling", || async {
        app.account("bea").await["subscription"]["cancel_at_period_end"] == true
    })
    .await;
    let resumed = app
        .post_json("/api/billing/subscription/resume", Some(&bea), &json!({}))
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(resumed.body["subscription"]["cancel_at_period_end"], false);
    assert_eq!(resumed.body["subscription"]["cancel_at"], Value::Null);
    deliver_update(&app, &held, "sub_cr_2", 2).await;
    app.eventually("renewing again", || async {
        let s = app.account("bea").await["subscription"].clone();
        s["cancel_at_period_end"] == false && s["cancel_at"].is_null()
    })
    .await;
}

#[tokio::test]
async fn resume_after_the_period_ended_is_404_and_reaches_no_stripe_update() {
    let stripe = fake_stripe("cs_test_cr_3").await;
    let (app, held) = subscribed(&stripe, &[("cid", "sub_cr_3")]).await;
    let cid = app.token("cid");
    app.post_json("/api/billing/subscription/cancel", Some(&cid), &json!({}))
        .await;
    // The period ends: Stripe deletes the subscription.
    let mut ended = held.get("sub_cr_3").unwrap();
    ended["status"] = "canceled".into();
    held.put(&ended);
    app.deliver(&event(
        "evt_cr_3_deleted",
        "customer.subscription.deleted",
        T0 + 9,
        ended,
    ))
    .await;
    app.eventually("ended", || async {
        app.account("cid").await["subscription"]["status"] == "canceled"
    })
    .await;
    let before = subscription_posts(&stripe.received_requests().await.unwrap()).len();
    for route in [
        "/api/billing/subscription/resume",
        "/api/billing/subscription/cancel",
    ] {
        let r = app.post_json(route, Some(&cid), &json!({})).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (404, Some("no_subscription")),
            "{route}"
        );
    }
    let after = subscription_posts(&stripe.received_requests().await.unwrap()).len();
    assert_eq!(before, after, "nothing more reached Stripe");
}

#[tokio::test]
async fn a_resume_stripe_already_ended_is_404_even_before_its_event_arrives() {
    let stripe = fake_stripe("cs_test_cr_4").await;
    let (app, held) = subscribed(&stripe, &[("dan", "sub_cr_4")]).await;
    let mut ended = held.get("sub_cr_4").unwrap();
    ended["status"] = "canceled".into();
    ended["cancel_at_period_end"] = true.into();
    held.put(&ended);
    let r = app
        .post_json(
            "/api/billing/subscription/resume",
            Some(&app.token("dan")),
            &json!({}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("no_subscription"))
    );
    assert!(subscription_posts(&stripe.received_requests().await.unwrap()).is_empty());
}

#[tokio::test]
async fn a_user_can_never_cancel_or_resume_another_users_subscription() {
    let stripe = fake_stripe("cs_test_cr_5").await;
    let (app, held) = subscribed(&stripe, &[("eli", "sub_cr_eli")]).await;
    let mallory = app.token("mallory");
    // Naming the victim's subscription is not part of the route: refused, nothing changes.
    for body in [
        json!({ "subscription_id": "sub_cr_eli" }),
        json!({ "subscription": "sub_cr_eli" }),
        json!({ "user_id": "eli" }),
    ] {
        let r = app
            .post_json("/api/billing/subscription/cancel", Some(&mallory), &body)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
    // Without a subscription of their own, the caller has nothing to cancel or resume.
    for route in [
        "/api/billing/subscription/cancel",
        "/api/billing/subscription/resume",
    ] {
        let r = app.post_json(route, Some(&mallory), &json!({})).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (404, Some("no_subscription"))
        );
    }
    // A service token is not a user: these routes act for the caller only.
    let r = app
        .post_json(
            "/api/billing/users/eli/subscription/cancel",
            Some(&mallory),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        held.get("sub_cr_eli").unwrap()["cancel_at_period_end"],
        false
    );
    assert!(subscription_posts(&stripe.received_requests().await.unwrap()).is_empty());
    // No identity: 401.
    let r = app
        .post_json("/api/billing/subscription/cancel", None, &json!({}))
        .await;
    assert_eq!(r.status, 401);
}
