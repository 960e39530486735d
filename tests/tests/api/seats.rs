//! Seats, black-box: a per-seat plan (`team_monthly`) is bought and changed with a
//! `quantity` within 1..its `max_quantity`; other plans take none; the account shows the
//! seats Stripe holds once Stripe's event says so.

use billing_testing::{FakeSubscriptions, event, fake_stripe, subscription};
use black_box_tests::TestApp;
use serde_json::{Value, json};

const T0: i64 = 1_795_000_000;
const TEAM: &str = "price_seat_team";
const MONTHLY: &str = "price_seat_monthly";

fn env(stripe: &wiremock::MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("STRIPE_SECRET_KEY", "sk_test_seats".into()),
        ("STRIPE_API_BASE", stripe.uri()),
        ("STRIPE_PRICE_TEAM_MONTHLY", TEAM.into()),
        ("STRIPE_PRICE_PRO_MONTHLY", MONTHLY.into()),
    ]
}

async fn spawn(stripe: &wiremock::MockServer) -> TestApp {
    let vars = env(stripe);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn_with(&pairs).await
}

/// A subscription on `price` with `seats`, as Stripe holds it.
fn on_price(sub_id: &str, user: &str, plan: &str, price: &str, seats: i64) -> Value {
    let mut sub = subscription(sub_id, user, plan, "active", T0 + 2_592_000);
    sub["items"]["data"][0]["price"]["id"] = price.into();
    sub["items"]["data"][0]["id"] = format!("si_{}", sub_id.trim_start_matches("sub_")).into();
    sub["items"]["data"][0]["quantity"] = seats.into();
    sub
}

/// A stack whose `user` holds `sub` (as Stripe holds it too), applied.
async fn holding(stripe: &wiremock::MockServer, user: &str, sub: Value) -> TestApp {
    let held = FakeSubscriptions::mount(stripe).await;
    let app = spawn(stripe).await;
    held.put(&sub);
    let id = sub["id"].as_str().unwrap().to_owned();
    app.deliver(&event(
        &format!("evt_{id}_created"),
        "customer.subscription.created",
        T0,
        sub,
    ))
    .await;
    app.eventually("the subscription is applied", || async {
        app.account(user).await["subscription"]["id"] == id.as_str()
    })
    .await;
    app
}

fn posts_to(
    requests: &[wiremock::Request],
    path: &str,
) -> Vec<std::collections::HashMap<String, String>> {
    requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == path)
        .map(|r| form_urlencoded::parse(&r.body).into_owned().collect())
        .collect()
}

#[tokio::test]
async fn a_per_seat_checkout_sends_the_seats_to_stripe_and_other_plans_refuse_a_quantity() {
    let stripe = fake_stripe("cs_test_seats_checkout").await;
    let app = spawn(&stripe).await;
    let ann = app.token("ann");
    let ok = app
        .post_json(
            "/api/billing/checkout",
            Some(&ann),
            &json!({ "plan_id": "team_monthly", "quantity": 7 }),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let sessions = posts_to(
        &stripe.received_requests().await.unwrap(),
        "/v1/checkout/sessions",
    );
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["line_items[0][quantity]"], "7");
    assert_eq!(sessions[0]["line_items[0][price]"], TEAM);

    let bob = app.token("bob");
    let cases = [
        (
            json!({ "plan_id": "team_monthly", "quantity": 0 }),
            "invalid_quantity",
        ),
        (
            json!({ "plan_id": "team_monthly", "quantity": 51 }),
            "invalid_quantity",
        ),
        (
            json!({ "plan_id": "pro_monthly", "quantity": 2 }),
            "quantity_not_allowed",
        ),
    ];
    for (body, code) in cases {
        let r = app
            .post_json("/api/billing/checkout", Some(&bob), &body)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    let sessions = posts_to(
        &stripe.received_requests().await.unwrap(),
        "/v1/checkout/sessions",
    );
    assert_eq!(sessions.len(), 1, "a refused quantity never reaches Stripe");
}

#[tokio::test]
async fn the_account_shows_the_seats_stripe_holds() {
    let stripe = fake_stripe("cs_test_seats_account").await;
    let app = holding(
        &stripe,
        "cai",
        on_price("sub_seat_1", "cai", "team_monthly", TEAM, 5),
    )
    .await;
    let account = app.account("cai").await;
    assert_eq!(account["subscription"]["quantity"], 5, "{account}");
    assert_eq!(account["subscription"]["plan_id"], "team_monthly");
}

#[tokio::test]
async fn changing_seats_calls_stripe_with_the_new_quantity_and_lands_with_stripes_event() {
    let stripe = fake_stripe("cs_test_seats_change").await;
    let app = holding(
        &stripe,
        "dee",
        on_price("sub_seat_2", "dee", "team_monthly", TEAM, 3),
    )
    .await;
    let dee = app.token("dee");
    let r = app
        .post_json(
            "/api/billing/subscription",
            Some(&dee),
            &json!({ "quantity": 8 }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["subscription"]["quantity"], 8);
    let posts = posts_to(
        &stripe.received_requests().await.unwrap(),
        "/v1/subscriptions/sub_seat_2",
    );
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["items[0][quantity]"], "8");
    assert_eq!(posts[0]["items[0][price]"], TEAM);
    // Until Stripe's event arrives the account shows what was applied.
    assert_eq!(app.account("dee").await["subscription"]["quantity"], 3);
    let now = reqwest::get(format!("{}/v1/subscriptions/sub_seat_2", stripe.uri()))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    app.deliver(&event(
        "evt_seat_2_upd",
        "customer.subscription.updated",
        T0 + 5,
        now,
    ))
    .await;
    app.eventually("eight seats", || async {
        app.account("dee").await["subscription"]["quantity"] == 8
    })
    .await;
    // The same seats again: nothing to change.
    let again = app
        .post_json(
            "/api/billing/subscription",
            Some(&dee),
            &json!({ "quantity": 8 }),
        )
        .await;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (409, Some("already_subscribed"))
    );
}

#[tokio::test]
async fn seat_changes_outside_the_plans_bounds_or_on_a_plan_without_seats_are_refused() {
    let stripe = fake_stripe("cs_test_seats_bounds").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    let app = spawn(&stripe).await;
    for (user, sub) in [
        (
            "eve",
            on_price("sub_seat_3", "eve", "team_monthly", TEAM, 2),
        ),
        (
            "fay",
            on_price("sub_seat_4", "fay", "pro_monthly", MONTHLY, 1),
        ),
    ] {
        held.put(&sub);
        let id = sub["id"].as_str().unwrap().to_owned();
        app.deliver(&event(
            &format!("evt_{id}"),
            "customer.subscription.created",
            T0,
            sub,
        ))
        .await;
        app.eventually("applied", || async {
            app.account(user).await["subscription"]["id"] == id.as_str()
        })
        .await;
    }
    let cases = [
        ("eve", json!({ "quantity": 0 }), "invalid_quantity"),
        ("eve", json!({ "quantity": 51 }), "invalid_quantity"),
        ("eve", json!({ "quantity": -3 }), "invalid_quantity"),
        (
            "eve",
            json!({ "plan_id": "pro_monthly", "quantity": 4 }),
            "quantity_not_allowed",
        ),
        ("fay", json!({ "quantity": 2 }), "quantity_not_allowed"),
        ("fay", json!({}), "invalid_request"),
        ("fay", json!({ "quantity": "two" }), "invalid_request"),
        // Eve names Fay's subscription: not a field of the route, so nothing changes.
        (
            "eve",
            json!({ "quantity": 3, "subscription_id": "sub_seat_4" }),
            "invalid_request",
        ),
    ];
    for (user, body, code) in cases {
        let r = app
            .post_json("/api/billing/subscription", Some(&app.token(user)), &body)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{user} {body}"
        );
    }
    let asked = stripe.received_requests().await.unwrap();
    assert!(
        asked.iter().all(|r| r.method.as_str() != "POST"),
        "nothing reached Stripe"
    );
    assert_eq!(app.account("eve").await["subscription"]["quantity"], 2);
}

#[tokio::test]
async fn moving_from_a_per_seat_plan_to_one_without_seats_resets_the_quantity_to_one() {
    let stripe = fake_stripe("cs_test_seats_down").await;
    let app = holding(
        &stripe,
        "gus",
        on_price("sub_seat_5", "gus", "team_monthly", TEAM, 6),
    )
    .await;
    let r = app
        .post_json(
            "/api/billing/subscription",
            Some(&app.token("gus")),
            &json!({ "plan_id": "pro_monthly" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let posts = posts_to(
        &stripe.received_requests().await.unwrap(),
        "/v1/subscriptions/sub_seat_5",
    );
    assert_eq!(
        (
            posts[0]["items[0][price]"].as_str(),
            posts[0]["items[0][quantity]"].as_str()
        ),
        (MONTHLY, "1")
    );
    assert_eq!(r.body["subscription"]["quantity"], 1);
}

#[tokio::test]
async fn the_status_names_the_plans_sold_per_seat_with_their_most_seats() {
    let stripe = fake_stripe("cs_test_seats_status").await;
    let app = spawn(&stripe).await;
    let status = app.get("/api/billing/status", None).await;
    assert_eq!(status.status, 200);
    let team = &status.body["plans"]["team_monthly"];
    assert_eq!(
        (team["per_seat"].as_bool(), team["max_quantity"].as_i64()),
        (Some(true), Some(50))
    );
    let pro = &status.body["plans"]["pro_monthly"];
    assert!(
        pro.get("per_seat").is_none() && pro.get("max_quantity").is_none(),
        "{pro}"
    );
}
