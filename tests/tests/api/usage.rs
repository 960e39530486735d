//! Usage metering, black-box against DynamoDB (moto): concurrency and idempotency.

use black_box_tests::TestApp;
use serde_json::json;

#[tokio::test]
async fn fifty_parallel_calls_against_a_balance_of_ten_allow_exactly_ten() {
    let app = TestApp::spawn_with(&[("FREE_USES", "0")]).await;
    let ops = local_stack::auth::token(
        black_box_tests::JWT_SECRET,
        "ops",
        None,
        "openid billing:admin",
        600,
    );
    let grant = json!({ "user_id": "hal", "credits": 10, "reason": "test balance" });
    assert_eq!(
        app.post_json("/api/billing/admin/grant", Some(&ops), &grant)
            .await
            .status,
        200
    );
    let token = app.token("hal");
    let calls = (0..50).map(|i| {
        let body = json!({ "units": 1, "idempotency_key": format!("call-{i}") });
        let token = token.clone();
        let app = &app;
        async move {
            app.post_json("/api/billing/usage", Some(&token), &body)
                .await
        }
    });
    let replies = futures::future::join_all(calls).await;
    let allowed = replies.iter().filter(|r| r.status == 200).count();
    let denied = replies
        .iter()
        .filter(|r| r.status == 402 && r.body["error"]["code"] == "payment_required")
        .count();
    assert_eq!(
        (allowed, denied),
        (10, 40),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        replies
            .iter()
            .filter(|r| r.status == 402)
            .all(|r| r.body["purchase"]["plan_id"].is_string())
    );
    assert_eq!(app.account("hal").await["credits"]["balance"], 0);
}

#[tokio::test]
async fn the_same_key_consumes_once_and_bad_bodies_are_400() {
    let app = TestApp::spawn().await;
    let token = app.token("ida");
    let body = json!({ "units": 2, "idempotency_key": "once" });
    let first = app
        .post_json("/api/billing/usage", Some(&token), &body)
        .await;
    let again = app
        .post_json("/api/billing/usage", Some(&token), &body)
        .await;
    assert_eq!(
        (first.status, first.body.clone()),
        (
            200,
            json!({ "allowed": true, "free_uses_remaining": 1, "balance": 0 })
        )
    );
    assert_eq!(again.body, first.body);
    for bad in [
        json!({ "units": 0, "idempotency_key": "x" }),
        json!({ "units": 1 }),
        json!({ "units": "1", "idempotency_key": "x" }),
    ] {
        let r = app
            .post_json("/api/billing/usage", Some(&token), &bad)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
    assert_eq!(
        app.account("ida").await["credits"]["free_uses_remaining"],
        1
    );
    assert_eq!(
        app.post_json("/api/billing/usage", None, &body)
            .await
            .status,
        401
    );
}
