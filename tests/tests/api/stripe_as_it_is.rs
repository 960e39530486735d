//! Stripe as it is, black-box (issue 16's "Done when"): the local stack with a fake Stripe
//! that holds each subscription as Stripe holds it now (`FakeSubscriptions`), events sent
//! over HTTP in the API version of the endpoint, and what the account then shows.

use billing_testing::{
    FakeSubscriptions, OLD_VERSION, event, fake_stripe, old_event, subscription_invoice,
    subscription_on,
};
use black_box_tests::TestApp;
use local_stack::auth;
use serde_json::Value;

const T0: i64 = 1_795_000_000;
const END: i64 = T0 + 2_600_000;

/// A stack with a Stripe key, the fake Stripe, and prices for the two monthly plans.
async fn stack() -> (TestApp, FakeSubscriptions, wiremock::MockServer) {
    let server = fake_stripe("cs_test_versions").await;
    let held = FakeSubscriptions::mount(&server).await;
    let base = server.uri();
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_versions"),
        ("STRIPE_API_BASE", base.as_str()),
        ("STRIPE_PRICE_PRO_MONTHLY", "price_pro"),
        ("STRIPE_PRICE_PRO_CREDITS_MONTHLY", "price_credits"),
    ])
    .await;
    (app, held, server)
}

async fn subscription_of(app: &TestApp, user: &str) -> Value {
    app.account(user).await["subscription"].clone()
}

async fn balance(app: &TestApp, user: &str) -> i64 {
    app.account(user).await["credits"]["balance"]
        .as_i64()
        .unwrap()
}

fn at(secs: i64) -> String {
    billing_core::domain::clock::rfc3339(chrono::DateTime::from_timestamp(secs, 0).unwrap())
}

#[tokio::test]
async fn a_renewal_sent_in_an_api_version_before_2025_03_31_grants_and_shows_the_period() {
    let (app, held, _server) = stack().await;
    let sub = subscription_on("sub_old", "olduser", "price_credits", "active", END);
    held.put(&sub);
    let created = old_event("evt_old_sub", "customer.subscription.created", T0, &sub);
    let renewal = subscription_invoice(
        "in_old",
        "sub_old",
        "olduser",
        "price_credits",
        "subscription_cycle",
        4900,
    );
    let paid = old_event("evt_old_inv", "invoice.paid", T0 + 1, &renewal);
    assert!(
        paid["data"]["object"]["parent"].is_null(),
        "the older shape"
    );
    assert_eq!(app.deliver(&created).await.body["status"], "queued");
    assert_eq!(app.deliver(&paid).await.body["status"], "queued");
    app.eventually("the renewal's credits", || async {
        balance(&app, "olduser").await == 2000
    })
    .await;
    let s = subscription_of(&app, "olduser").await;
    assert_eq!(s["plan_id"], "pro_credits_monthly");
    assert_eq!(s["current_period_end"], at(END));
}

/// A switch to the credits plan and then a cancellation at period end, Stripe sending both
/// in the same second, delivered in either order. The stale switch has the larger event id
/// (ids are random), so no order on `(created, rank, id)` could pick the cancellation.
async fn switch_then_cancel(cancel_first: bool) {
    let (app, held, _server) = stack().await;
    let user = format!("same{cancel_first}");
    let sub_id = format!("sub_{user}");
    let switched = subscription_on(&sub_id, &user, "price_credits", "active", END);
    let mut canceled = switched.clone();
    canceled["cancel_at"] = END.into();
    held.put(&canceled);
    let switch = event(
        &format!("evt_{user}_z"),
        "customer.subscription.updated",
        T0,
        switched,
    );
    let cancel = event(
        &format!("evt_{user}_b"),
        "customer.subscription.updated",
        T0,
        canceled,
    );
    let order = match cancel_first {
        true => [cancel, switch],
        false => [switch, cancel],
    };
    for e in &order {
        assert_eq!(app.deliver(e).await.body["status"], "queued");
    }
    let ops = auth::token(
        black_box_tests::JWT_SECRET,
        "ops",
        None,
        "openid billing:admin",
        3600,
    );
    app.eventually("both events processed", || async {
        let r = app
            .get("/api/billing/admin/events?state=processed", Some(&ops))
            .await;
        r.body["events"].as_array().is_some_and(|e| e.len() == 2)
    })
    .await;
    let s = subscription_of(&app, &user).await;
    assert_eq!(s["plan_id"], "pro_credits_monthly", "{s}");
    assert_eq!(s["cancel_at"], at(END), "{s}");
    assert_eq!(s["status"], "active");
}

#[tokio::test]
async fn a_same_second_switch_then_cancel_ends_in_stripes_state_in_delivery_order() {
    switch_then_cancel(false).await;
}

#[tokio::test]
async fn a_same_second_switch_then_cancel_ends_in_stripes_state_in_reverse_order() {
    switch_then_cancel(true).await;
}

#[tokio::test]
async fn a_plan_switched_in_the_portal_renews_as_the_new_plan() {
    let (app, held, _server) = stack().await;
    // Bought through our checkout as pro_monthly: the metadata still says so.
    let mut bought = subscription_on("sub_portal", "portal", "price_pro", "active", END);
    bought["metadata"]["plan_id"] = "pro_monthly".into();
    held.put(&bought);
    app.deliver(&event(
        "evt_p1",
        "customer.subscription.created",
        T0,
        bought.clone(),
    ))
    .await;
    app.eventually("pro_monthly", || async {
        subscription_of(&app, "portal").await["plan_id"] == "pro_monthly"
    })
    .await;
    // Switched in the Billing Portal: the price changes, our metadata does not.
    let mut switched = bought.clone();
    switched["items"]["data"][0]["price"]["id"] = "price_credits".into();
    switched["items"]["data"][0]["current_period_end"] = (END + 2_600_000).into();
    held.put(&switched);
    app.deliver(&event(
        "evt_p2",
        "customer.subscription.updated",
        T0 + 10,
        switched,
    ))
    .await;
    let renewal = subscription_invoice(
        "in_portal",
        "sub_portal",
        "portal",
        "price_credits",
        "subscription_cycle",
        4900,
    );
    app.deliver(&event("evt_p3", "invoice.paid", END, renewal))
        .await;
    app.eventually("the new plan's credits", || async {
        balance(&app, "portal").await == 2000
    })
    .await;
    let account = app.account("portal").await;
    assert_eq!(account["subscription"]["plan_id"], "pro_credits_monthly");
    assert_eq!(account["plan_id"], "pro_credits_monthly");
}

#[tokio::test]
async fn a_proration_invoice_grants_nothing() {
    let (app, held, _server) = stack().await;
    let sub = subscription_on("sub_prorate", "prorate", "price_credits", "active", END);
    held.put(&sub);
    let proration = subscription_invoice(
        "in_prorate",
        "sub_prorate",
        "prorate",
        "price_credits",
        "subscription_update",
        2000,
    );
    app.deliver(&event("evt_prorate", "invoice.paid", T0, proration))
        .await;
    app.eventually("the subscription shows", || async {
        subscription_of(&app, "prorate").await["plan_id"] == "pro_credits_monthly"
    })
    .await;
    assert_eq!(balance(&app, "prorate").await, 0);
}

#[tokio::test]
async fn the_admin_list_shows_each_events_api_version_and_the_public_status_never() {
    let (app, held, _server) = stack().await;
    let sub = subscription_on("sub_ver", "veruser", "price_pro", "active", END);
    held.put(&sub);
    app.deliver(&old_event(
        "evt_ver",
        "customer.subscription.created",
        T0,
        &sub,
    ))
    .await;
    let ops = auth::token(
        black_box_tests::JWT_SECRET,
        "ops",
        None,
        "openid billing:admin",
        3600,
    );
    app.eventually("listed with its version", || async {
        let r = app.get("/api/billing/admin/events", Some(&ops)).await;
        r.body["events"][0]["api_version"] == OLD_VERSION
    })
    .await;
    let status = app.get("/api/billing/status", None).await.body.to_string();
    assert!(!status.contains("api_version"), "{status}");
    assert!(!status.contains(OLD_VERSION), "{status}");
}
