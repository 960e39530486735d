//! Features, black-box against the local stack: entitlements, checks of each kind, tracks
//! with their overage rules, concurrency, keys, the service routes and the account.

use black_box_tests::{JWT_SECRET, TestApp};
use serde_json::json;

fn operator() -> String {
    local_stack::auth::token(JWT_SECRET, "ops", None, "openid billing:admin", 600)
}

fn service_token() -> String {
    local_stack::auth::token(JWT_SECRET, "app_backend", None, "billing:service", 600)
}

#[tokio::test]
async fn each_kind_of_feature_is_checked_and_a_metered_one_tracked_until_its_allowance_is_gone() {
    let app = TestApp::spawn().await;
    let token = app.token("nia");
    let ent = app.get("/api/billing/entitlements", Some(&token)).await;
    assert_eq!(ent.status, 200, "{}", ent.body);
    assert_eq!(ent.headers["cache-control"], "no-store");
    let f = &ent.body["features"];
    assert_eq!(f["priority_support"]["type"], "boolean");
    assert_eq!(f["priority_support"]["enabled"], false);
    assert_eq!(f["projects"]["limit"], 1);
    assert_eq!(f["ai_messages"]["remaining"], 20);
    assert_eq!(ent.body["credits"]["balance"], 0);

    let boolean = app
        .get("/api/billing/features/priority_support/check", Some(&token))
        .await;
    assert_eq!(
        (
            boolean.body["allowed"].as_bool(),
            boolean.body["upgrade"]["plan_id"].as_str()
        ),
        (Some(false), Some("pro_monthly"))
    );
    let limit = app
        .get("/api/billing/features/projects/check?units=1", Some(&token))
        .await;
    assert_eq!(limit.body["allowed"], true);

    let body = json!({ "units": 20, "idempotency_key": "batch-1" });
    let tracked = app
        .post_json(
            "/api/billing/features/ai_messages/usage",
            Some(&token),
            &body,
        )
        .await;
    assert_eq!(tracked.status, 200, "{}", tracked.body);
    assert_eq!(tracked.body["feature"]["remaining"], 0);
    let again = app
        .post_json(
            "/api/billing/features/ai_messages/usage",
            Some(&token),
            &body,
        )
        .await;
    assert_eq!(again.body, tracked.body, "the same key tracks once");
    let over = app
        .post_json(
            "/api/billing/features/ai_messages/usage",
            Some(&token),
            &json!({ "units": 1, "idempotency_key": "batch-2" }),
        )
        .await;
    assert_eq!(
        (over.status, over.body["error"]["code"].as_str()),
        (402, Some("payment_required"))
    );
    assert_eq!(over.body["upgrade"]["plan_id"], "pro_monthly");
    let account = app.account("nia").await;
    assert_eq!(account["features"]["ai_messages"]["used"], 20);
    assert_eq!(
        account["credits"]["free_uses_remaining"], 3,
        "other features untouched"
    );
}

#[tokio::test]
async fn bad_requests_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token("oli");
    let unknown = app
        .get("/api/billing/features/teleport/check", Some(&token))
        .await;
    assert_eq!(
        (unknown.status, unknown.body["error"]["code"].as_str()),
        (404, Some("unknown_feature"))
    );
    let limit = app
        .post_json(
            "/api/billing/features/projects/usage",
            Some(&token),
            &json!({ "units": 1, "idempotency_key": "p" }),
        )
        .await;
    assert_eq!(
        (limit.status, limit.body["error"]["code"].as_str()),
        (400, Some("not_metered"))
    );
    for bad in [
        json!({ "units": 0, "idempotency_key": "x" }),
        json!({ "units": 1 }),
        json!({ "units": 1, "idempotency_key": "has space" }),
    ] {
        let r = app
            .post_json(
                "/api/billing/features/ai_messages/usage",
                Some(&token),
                &bad,
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
    assert_eq!(
        app.account("oli").await["features"]["ai_messages"]["used"],
        0
    );
    let none = app.get("/api/billing/entitlements", None).await;
    assert_eq!(none.status, 401);
}

#[tokio::test]
async fn thirty_parallel_tracks_against_an_allowance_of_twenty_allow_exactly_twenty() {
    let app = TestApp::spawn().await;
    let token = app.token("pia");
    let calls = (0..30).map(|i| {
        let body = json!({ "units": 1, "idempotency_key": format!("m-{i}") });
        let token = token.clone();
        let app = &app;
        async move {
            app.post_json(
                "/api/billing/features/ai_messages/usage",
                Some(&token),
                &body,
            )
            .await
        }
    });
    let replies = futures::future::join_all(calls).await;
    let allowed = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies.iter().filter(|r| r.status == 402).count();
    assert_eq!(
        (allowed, refused),
        (20, 10),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        app.account("pia").await["features"]["ai_messages"]["used"],
        20
    );
}

#[tokio::test]
async fn the_apps_server_tracks_for_a_user_and_units_beyond_the_allowance_spend_credits() {
    let app = TestApp::spawn().await;
    let grant = json!({ "user_id": "quin", "credits": 25, "reason": "test balance" });
    let granted = app
        .post_json("/api/billing/admin/grant", Some(&operator()), &grant)
        .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    let server = service_token();
    // exports: 2 a month included for free accounts, then 10 credits each.
    let t = app
        .post_json(
            "/api/billing/users/quin/features/exports/usage",
            Some(&server),
            &json!({ "units": 4, "idempotency_key": "export-run-1" }),
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(
        (
            t.body["feature"]["remaining"].as_i64(),
            t.body["credits"]["balance"].as_i64()
        ),
        (Some(0), Some(5))
    );
    let check = app
        .get(
            "/api/billing/users/quin/features/exports/check?units=1",
            Some(&server),
        )
        .await;
    assert_eq!(check.body["allowed"], false);
    assert_eq!(check.body["purchase"]["plan_id"], "uses_20");
    let ent = app
        .get("/api/billing/users/quin/entitlements", Some(&server))
        .await;
    assert_eq!(ent.body["features"]["exports"]["used"], 2);
    let user_token = app.token("quin");
    let forbidden = app
        .get("/api/billing/users/quin/entitlements", Some(&user_token))
        .await;
    assert_eq!(forbidden.status, 403);
    // The credits spent published an entitlement event that carries the features.
    app.eventually("an event with the features", || async {
        let events = app.get("/_local/entitlement-events", None).await;
        events.body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| {
                e["detail"]["user_id"] == "quin"
                    && e["detail"]["features"]["exports"]["remaining"] == 0
            })
    })
    .await;
}
