//! The app's own server, black-box: a `billing:service` token consumes, checks and reads
//! the account of the user it names in the path; a user token there is 403.

use black_box_tests::{JWT_SECRET, TestApp};
use serde_json::json;

fn service_token() -> String {
    local_stack::auth::token(JWT_SECRET, "app_backend", None, "billing:service", 600)
}

#[tokio::test]
async fn a_service_token_consumes_and_checks_for_a_user_and_reads_the_account() {
    let app = TestApp::spawn_with(&[("FREE_USES", "3")]).await;
    let server = service_token();

    let check = app
        .get("/api/billing/users/uma/usage?units=2", Some(&server))
        .await;
    assert_eq!(check.status, 200, "{}", check.body);
    assert_eq!(
        (
            check.body["allowed"].as_bool(),
            check.body["free_uses_remaining"].as_i64()
        ),
        (Some(true), Some(1))
    );
    let body = json!({ "units": 2, "idempotency_key": "agent-call-1" });
    let consumed = app
        .post_json("/api/billing/users/uma/usage", Some(&server), &body)
        .await;
    assert_eq!(
        (consumed.status, consumed.body.clone()),
        (
            200,
            json!({ "allowed": true, "free_uses_remaining": 1, "balance": 0 })
        )
    );
    // The same call retried by the server consumes once.
    let again = app
        .post_json("/api/billing/users/uma/usage", Some(&server), &body)
        .await;
    assert_eq!(again.body, consumed.body);

    let account = app
        .get("/api/billing/users/uma/account", Some(&server))
        .await;
    assert_eq!(account.status, 200, "{}", account.body);
    assert_eq!(account.body["user_id"], "uma");
    assert_eq!(account.body["credits"]["free_uses_remaining"], 1);
    // The user sees the very same account through her own route.
    assert_eq!(app.account("uma").await["credits"], account.body["credits"]);
    // The server's own account (its token's sub) was never touched.
    assert_eq!(
        app.account("app_backend").await["credits"]["free_uses_remaining"],
        3
    );
}

#[tokio::test]
async fn a_user_token_on_a_service_route_is_403_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let mallory = app.token("mallory");
    let admin = local_stack::auth::token(JWT_SECRET, "ops", None, "openid billing:admin", 600);
    for token in [&mallory, &admin] {
        let read = app
            .get("/api/billing/users/victim/account", Some(token))
            .await;
        let spend = app
            .post_json(
                "/api/billing/users/victim/usage",
                Some(token),
                &json!({ "units": 1, "idempotency_key": "steal" }),
            )
            .await;
        let check = app
            .get("/api/billing/users/victim/usage?units=1", Some(token))
            .await;
        for r in [read, spend, check] {
            assert_eq!(
                (r.status, r.body["error"]["code"].as_str()),
                (403, Some("forbidden")),
                "{}",
                r.body
            );
        }
    }
    let none = app.get("/api/billing/users/victim/account", None).await;
    assert_eq!(none.status, 401);
    assert_eq!(
        app.account("victim").await["credits"]["free_uses_remaining"],
        3
    );
}

#[tokio::test]
async fn a_bad_user_id_in_the_path_is_400_invalid_user_id() {
    let app = TestApp::spawn().await;
    let server = service_token();
    let too_long = "u".repeat(129);
    for user in ["a%20b", "a%2Fb", "%3Cscript%3E", too_long.as_str()] {
        let r = app
            .get(&format!("/api/billing/users/{user}/account"), Some(&server))
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_user_id")),
            "{user}: {}",
            r.body
        );
    }
    // An id with characters a path escapes (auth0|…) reaches the same account.
    let r = app
        .get("/api/billing/users/auth0%7Cabc/account", Some(&server))
        .await;
    assert_eq!(
        (r.status, r.body["user_id"].as_str()),
        (200, Some("auth0|abc"))
    );
}
