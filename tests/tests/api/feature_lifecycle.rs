//! Features over an account's life, black-box against the local stack: a `period` allowance
//! that starts again when Stripe's subscription period moves and keeps its units used
//! across plan switches mid-period; a boolean feature that follows Stripe's entitlement
//! summary, whatever the delivery order; operator grants of units and of a boolean feature,
//! audited.
//!
//! Stripe's periods are set relative to the real clock (the stack has no fake one): the
//! period moves when Stripe says so, as it does at a renewal.

use billing_testing::{
    FakeSubscriptions, checkout_session, event, fake_stripe, stripe_entitlement_summary,
    subscription, subscription_invoice,
};
use black_box_tests::{JWT_SECRET, Reply, TestApp};
use serde_json::{Value, json};

const DAY: i64 = 86_400;
const PRO: &str = "price_life_pro_monthly";
const TEAM: &str = "price_life_team_monthly";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn operator() -> String {
    local_stack::auth::token(JWT_SECRET, "ops_life", None, "openid billing:admin", 600)
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The event's state in the admin list, once it is listed.
async fn state_of(app: &TestApp, id: &str) -> Option<String> {
    let r = app
        .get("/api/billing/admin/events?limit=200", Some(&operator()))
        .await;
    r.body["events"]
        .as_array()?
        .iter()
        .find(|e| e["id"] == id)
        .and_then(|e| e["state"].as_str().map(str::to_owned))
}

/// Delivers `event` signed through the webhook and waits until the worker processed it.
async fn deliver_processed(app: &TestApp, event: &Value) {
    let id = event["id"].as_str().unwrap().to_owned();
    let r = app.deliver(event).await;
    assert_eq!(r.status, 200, "{id}: {}", r.body);
    app.eventually(&format!("{id} processed"), || async {
        state_of(app, &id).await.as_deref() == Some("processed")
    })
    .await;
}

async fn feature(app: &TestApp, user: &str, id: &str) -> Value {
    let r = app
        .get("/api/billing/entitlements", Some(&app.token(user)))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["features"][id].clone()
}

async fn track(app: &TestApp, user: &str, id: &str, units: i64, key: &str) -> Reply {
    app.post_json(
        &format!("/api/billing/features/{id}/usage"),
        Some(&app.token(user)),
        &json!({ "units": units, "idempotency_key": key }),
    )
    .await
}

async fn allowed(app: &TestApp, user: &str, id: &str, units: i64) -> bool {
    let r = app
        .get(
            &format!("/api/billing/features/{id}/check?units={units}"),
            Some(&app.token(user)),
        )
        .await;
    assert!(r.status == 200 || r.status == 402, "{}", r.body);
    r.body["allowed"]
        .as_bool()
        .expect("a check answers allowed")
}

/// Switches `user`'s plan through the API, then delivers the `customer.subscription.updated`
/// Stripe sends for it (the account follows Stripe's event), and waits for the new plan.
async fn switch(app: &TestApp, held: &FakeSubscriptions, user: &str, sub_id: &str, plan: &str) {
    let r = app
        .post_json(
            "/api/billing/subscription",
            Some(&app.token(user)),
            &json!({ "plan_id": plan }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let updated = event(
        &format!("evt_life_to_{plan}"),
        "customer.subscription.updated",
        now(),
        held.get(sub_id).unwrap(),
    );
    deliver_processed(app, &updated).await;
    assert_eq!(app.account(user).await["subscription"]["plan_id"], plan);
}

#[tokio::test]
async fn a_period_allowance_starts_again_when_stripe_renews_and_units_used_stay_used_across_plan_switches_mid_period()
 {
    let stripe = fake_stripe("cs_test_life_unused").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_life"),
        ("STRIPE_API_BASE", &stripe.uri()),
        ("STRIPE_PRICE_PRO_MONTHLY", PRO),
        ("STRIPE_PRICE_TEAM_MONTHLY", TEAM),
    ])
    .await;
    let (user, sub_id) = ("kit", "sub_life_kit");
    let first_end = now() + 10 * DAY;
    let mut sub = subscription(sub_id, user, "pro_monthly", "active", first_end);
    sub["items"]["data"][0]["price"]["id"] = PRO.into();
    sub["items"]["data"][0]["id"] = "si_life_kit".into();
    held.put(&sub);
    deliver_processed(
        &app,
        &event(
            "evt_life_created",
            "customer.subscription.created",
            now(),
            sub,
        ),
    )
    .await;
    let pro = feature(&app, user, "ai_messages").await;
    assert_eq!(
        (&pro["included"], &pro["resets_at"]),
        (&json!(1000), &json!(rfc3339(first_end))),
        "the period is Stripe's: {pro}"
    );
    let used = track(&app, user, "ai_messages", 990, "before-switch").await;
    assert_eq!(used.status, 200, "{}", used.body);

    // Mid-period to the team plan, which grants only the free entry's 20: used stays used.
    switch(&app, &held, user, sub_id, "team_monthly").await;
    let team = feature(&app, user, "ai_messages").await;
    assert_eq!(
        (&team["included"], &team["used"], &team["remaining"]),
        (&json!(20), &json!(990), &json!(0)),
        "{team}"
    );
    let refused = track(&app, user, "ai_messages", 1, "on-team").await;
    assert_eq!(refused.status, 402, "{}", refused.body);

    // Back to pro in the same period: 10 of its 1,000 are left, not a fresh 1,000.
    switch(&app, &held, user, sub_id, "pro_monthly").await;
    assert!(!allowed(&app, user, "ai_messages", 11).await);
    let eleven = track(&app, user, "ai_messages", 11, "back-on-pro").await;
    assert_eq!(eleven.status, 402, "{}", eleven.body);
    let account = app.account(user).await;
    assert_eq!(account["features"]["ai_messages"]["used"], 990);

    // Stripe renews: the period moves (the subscription's items), and it sends the
    // subscription's update and the cycle's paid invoice.
    let next_end = first_end + 30 * DAY;
    let mut renewed = held.get(sub_id).unwrap();
    renewed["items"]["data"][0]["current_period_start"] = first_end.into();
    renewed["items"]["data"][0]["current_period_end"] = next_end.into();
    held.put(&renewed);
    deliver_processed(
        &app,
        &event(
            "evt_life_renewed",
            "customer.subscription.updated",
            now(),
            renewed,
        ),
    )
    .await;
    let invoice = subscription_invoice(
        "in_life_cycle",
        sub_id,
        user,
        PRO,
        "subscription_cycle",
        2900,
    );
    deliver_processed(
        &app,
        &event("evt_life_cycle_paid", "invoice.paid", now(), invoice),
    )
    .await;
    let fresh = feature(&app, user, "ai_messages").await;
    assert_eq!(
        (
            &fresh["used"],
            &fresh["remaining"],
            fresh["resets_at"].as_str()
        ),
        (&json!(0), &json!(1000), Some(rfc3339(next_end).as_str())),
        "{fresh}"
    );
    let now_allowed = track(&app, user, "ai_messages", 11, "next-period").await;
    assert_eq!(now_allowed.status, 200, "{}", now_allowed.body);
    assert_eq!(now_allowed.body["feature"]["remaining"], 989);
}

#[tokio::test]
async fn a_boolean_feature_follows_stripes_latest_entitlement_summary_and_a_late_older_one_does_not_win()
 {
    let app = TestApp::spawn().await;
    let user = "oda";
    // A pack bought through Checkout links the customer cus_oda to oda; no plan grants
    // priority_support.
    deliver_processed(
        &app,
        &event(
            "evt_life_oda_pack",
            "checkout.session.completed",
            now(),
            checkout_session("cs_test_life_oda", user, "uses_20", "paid", 500),
        ),
    )
    .await;
    assert_eq!(
        feature(&app, user, "priority_support").await["enabled"],
        false
    );
    let t = now();
    let summary = |id: &str, at: i64, keys: &[&str]| {
        event(
            id,
            "entitlements.active_entitlement_summary.updated",
            at,
            stripe_entitlement_summary("cus_oda", keys),
        )
    };

    deliver_processed(
        &app,
        &summary("evt_life_sum_1", t + 10, &["priority_support"]),
    )
    .await;
    assert_eq!(
        feature(&app, user, "priority_support").await["enabled"],
        true
    );
    assert!(allowed(&app, user, "priority_support", 1).await);
    assert_eq!(
        app.account(user).await["features"]["priority_support"]["enabled"],
        true
    );
    app.eventually("an entitlement event with the feature on", || async {
        let events = app.get("/_local/entitlement-events", None).await;
        events.body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| {
                e["detail"]["user_id"] == user
                    && e["detail"]["features"]["priority_support"]["enabled"] == true
            })
    })
    .await;

    // A later summary without it turns it off.
    deliver_processed(&app, &summary("evt_life_sum_3", t + 30, &[])).await;
    assert_eq!(
        feature(&app, user, "priority_support").await["enabled"],
        false
    );
    // The summary in between, delivered late, does not turn it back on.
    deliver_processed(
        &app,
        &summary("evt_life_sum_2", t + 20, &["priority_support"]),
    )
    .await;
    assert_eq!(
        feature(&app, user, "priority_support").await["enabled"],
        false
    );
    assert!(!allowed(&app, user, "priority_support", 1).await);
    assert_eq!(
        app.account(user).await["features"]["priority_support"]["enabled"],
        false
    );
}

#[tokio::test]
async fn an_operator_grants_units_of_a_metered_feature_and_turns_a_boolean_one_on_audited_and_seen_by_the_check()
 {
    let app = TestApp::spawn().await;
    let ops = operator();
    let user = "ned";
    let spent = track(&app, user, "ai_messages", 20, "the-free-twenty").await;
    assert_eq!(spent.status, 200, "{}", spent.body);
    assert!(!allowed(&app, user, "ai_messages", 1).await);

    let grant = |body: Value| {
        let ops = ops.clone();
        let app = &app;
        async move {
            app.post_json("/api/billing/admin/grant", Some(&ops), &body)
                .await
        }
    };
    let units = grant(
        json!({ "user_id": user, "feature": "ai_messages", "units": 5,
                              "reason": "ticket 77: lost messages" }),
    )
    .await;
    assert_eq!(units.status, 200, "{}", units.body);
    assert_eq!(
        (&units.body["feature"], &units.body["units"]),
        (&json!("ai_messages"), &json!(5))
    );
    let on = grant(json!({ "user_id": user, "feature": "priority_support",
                           "reason": "ticket 78: beta partner" }))
    .await;
    assert_eq!(on.status, 200, "{}", on.body);

    assert!(allowed(&app, user, "ai_messages", 5).await);
    assert!(!allowed(&app, user, "ai_messages", 6).await);
    assert!(allowed(&app, user, "priority_support", 1).await);
    let granted = track(&app, user, "ai_messages", 5, "granted-five").await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(granted.body["feature"]["remaining"], 0);

    // Refused grants change nothing: units of a limit or of a boolean feature, no reason.
    for bad in [
        json!({ "user_id": user, "feature": "projects", "units": 5, "reason": "r" }),
        json!({ "user_id": user, "feature": "priority_support", "units": 1, "reason": "r" }),
        json!({ "user_id": user, "feature": "ai_messages", "units": 3, "reason": " " }),
    ] {
        let r = grant(bad.clone()).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
    assert!(!allowed(&app, user, "ai_messages", 1).await);

    // The operator's view lists both grants with who, why and what was granted.
    let view = app
        .get(&format!("/api/billing/admin/users/{user}"), Some(&ops))
        .await;
    assert_eq!(view.status, 200, "{}", view.body);
    let grants = view.body["grants"].as_array().expect("grants");
    assert_eq!(grants.len(), 2, "{grants:?}");
    let of = |feature: &str| {
        grants
            .iter()
            .find(|g| g["feature"] == feature)
            .unwrap_or_else(|| panic!("a grant of {feature} in {grants:?}"))
    };
    let (metered, boolean) = (of("ai_messages"), of("priority_support"));
    assert_eq!(
        (&metered["operator"], &metered["reason"], &metered["units"]),
        (
            &json!("ops_life"),
            &json!("ticket 77: lost messages"),
            &json!(5)
        )
    );
    assert_eq!(boolean["reason"], "ticket 78: beta partner");
    assert!(boolean.get("units").is_none_or(Value::is_null), "{boolean}");
}

#[tokio::test]
async fn the_seed_usage_route_answers_as_before_and_draws_on_the_free_entrys_usage_feature() {
    let app = TestApp::spawn().await;
    let (user, token) = ("uri", app.token("uri"));
    let before = feature(&app, user, "usage").await;
    assert_eq!(
        (
            &before["included"],
            &before["remaining"],
            &before["resets_at"]
        ),
        (&json!(3), &json!(3), &Value::Null),
        "FREE_USES is the free entry's usage feature, never reset: {before}"
    );
    let seed = app
        .post_json(
            "/api/billing/usage",
            Some(&token),
            &json!({ "units": 1, "idempotency_key": "seed-1" }),
        )
        .await;
    assert_eq!(
        (seed.status, &seed.body),
        (
            200,
            &json!({ "allowed": true, "free_uses_remaining": 2, "balance": 0 })
        )
    );
    // The feature route shares the seed route's keys: the same key tracks nothing more.
    let same_key = track(&app, user, "usage", 1, "seed-1").await;
    assert_eq!(same_key.status, 200, "{}", same_key.body);
    assert_eq!(feature(&app, user, "usage").await["used"], 1);
    let other = track(&app, user, "usage", 1, "feature-1").await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(other.body["feature"]["remaining"], 1);
    let check = app.get("/api/billing/usage?units=2", Some(&token)).await;
    assert_eq!(
        (
            check.status,
            check.body["allowed"].as_bool(),
            check.body["free_uses_remaining"].as_i64()
        ),
        (200, Some(false), Some(1)),
        "{}",
        check.body
    );
    let account = app.account(user).await;
    assert_eq!(account["credits"]["free_uses_remaining"], 1);
    assert_eq!(account["features"]["usage"]["used"], 2);
}

#[tokio::test]
async fn a_per_seat_limit_is_the_plans_figure_times_the_seats_stripe_holds() {
    let stripe = fake_stripe("cs_test_life_seats").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_life_seats"),
        ("STRIPE_API_BASE", &stripe.uri()),
        ("STRIPE_PRICE_TEAM_MONTHLY", TEAM),
    ])
    .await;
    let (user, sub_id) = ("tao", "sub_life_tao");
    let mut sub = subscription(sub_id, user, "team_monthly", "active", now() + 10 * DAY);
    sub["items"]["data"][0]["price"]["id"] = TEAM.into();
    sub["items"]["data"][0]["id"] = "si_life_tao".into();
    sub["items"]["data"][0]["quantity"] = 3.into();
    held.put(&sub);
    deliver_processed(
        &app,
        &event("evt_life_tao", "customer.subscription.created", now(), sub),
    )
    .await;
    // team_monthly: 5 workspaces a seat.
    assert_eq!(feature(&app, user, "workspaces").await["limit"], 15);
    assert!(allowed(&app, user, "workspaces", 15).await);
    assert!(!allowed(&app, user, "workspaces", 16).await);

    let seats = app
        .post_json(
            "/api/billing/subscription",
            Some(&app.token(user)),
            &json!({ "quantity": 5 }),
        )
        .await;
    assert_eq!(seats.status, 200, "{}", seats.body);
    deliver_processed(
        &app,
        &event(
            "evt_life_tao_seats",
            "customer.subscription.updated",
            now(),
            held.get(sub_id).unwrap(),
        ),
    )
    .await;
    assert_eq!(feature(&app, user, "workspaces").await["limit"], 25);
    assert!(allowed(&app, user, "workspaces", 25).await);
}
