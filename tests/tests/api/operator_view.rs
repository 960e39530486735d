//! The operator's view of one user over HTTP: by id, by Stripe customer and by checkout
//! session, paged, and refused to anyone but an operator.

use billing_testing::{checkout_session, event};
use black_box_tests::TestApp;
use local_stack::auth;
use serde_json::{Value, json};

const T0: i64 = 1_795_000_000;

fn operator() -> String {
    auth::token(
        black_box_tests::JWT_SECRET,
        "ops_view",
        None,
        "openid billing:admin",
        3600,
    )
}

fn credits(id: &str, user: &str) -> Value {
    event(
        id,
        "checkout.session.completed",
        T0,
        checkout_session(
            &format!("cs_test_{id}"),
            user,
            "credits_starter",
            "paid",
            1000,
        ),
    )
}

#[tokio::test]
async fn an_operator_sees_a_users_billing_by_id_by_customer_and_by_checkout_session() {
    let app = TestApp::spawn().await;
    let ops = operator();
    app.deliver(&credits("evt_ov_bb1", "vera")).await;
    let grant = json!({"user_id": "vera", "credits": 5, "reason": "ticket 42: paid twice"});
    let granted = app
        .post_json("/api/billing/admin/grant", Some(&ops), &grant)
        .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    app.eventually("the pack applied", || async {
        app.account("vera").await["credits"]["balance"] == 1005
    })
    .await;

    let r = app.get("/api/billing/admin/users/vera", Some(&ops)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let v = &r.body;
    assert_eq!(v["user_id"], "vera");
    assert_eq!(v["stripe_customer_id"], "cus_vera");
    assert_eq!(v["account"]["credits"]["balance"], 1005);
    assert_eq!(
        v["account"]["purchases"][0]["session_id"],
        "cs_test_evt_ov_bb1"
    );
    assert_eq!(v["grants"][0]["operator"], "ops_view");
    assert_eq!(v["grants"][0]["reason"], "ticket 42: paid twice");
    assert_eq!(v["events"][0]["id"], "evt_ov_bb1");
    assert_eq!(v["events"][0]["state"], "processed");
    assert!(
        v["events"][0].get("payload").is_none(),
        "no payload in the view"
    );

    for lookup in ["customer_id=cus_vera", "session_id=cs_test_evt_ov_bb1"] {
        let found = app
            .get(&format!("/api/billing/admin/users?{lookup}"), Some(&ops))
            .await;
        assert_eq!(
            (found.status, found.body["user_id"].as_str()),
            (200, Some("vera")),
            "{lookup}: {}",
            found.body
        );
    }
}

#[tokio::test]
async fn the_view_pages_grants_with_a_cursor() {
    let app = TestApp::spawn().await;
    let ops = operator();
    for i in 0..22 {
        let body = json!({"user_id": "gail", "credits": 1, "reason": format!("r{i}"),
            "idempotency_key": format!("k{i}")});
        let r = app
            .post_json("/api/billing/admin/grant", Some(&ops), &body)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let first = app.get("/api/billing/admin/users/gail", Some(&ops)).await;
    assert_eq!(first.body["grants"].as_array().unwrap().len(), 20);
    let next = first.body["grants_next"].as_str().unwrap().to_owned();
    let rest = app
        .get(
            &format!(
                "/api/billing/admin/users/gail?grants_cursor={}",
                urlencoding(&next)
            ),
            Some(&ops),
        )
        .await;
    assert_eq!(rest.status, 200, "{}", rest.body);
    assert_eq!(rest.body["grants"].as_array().unwrap().len(), 2);
    assert_eq!(rest.body["grants_next"], Value::Null);
}

fn urlencoding(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_view_is_refused_to_anyone_but_an_operator_and_bad_lookups_are_clear_errors() {
    let app = TestApp::spawn().await;
    let ops = operator();
    app.deliver(&credits("evt_ov_bb3", "noor")).await;
    let plain = app.token("noor");
    for p in [
        "/api/billing/admin/users/noor",
        "/api/billing/admin/users?customer_id=cus_noor",
    ] {
        let anon = app.get(p, None).await;
        assert_eq!(
            (anon.status, anon.body["error"]["code"].as_str()),
            (401, Some("unauthenticated")),
            "{p}"
        );
        let own = app.get(p, Some(&plain)).await;
        assert_eq!(
            (own.status, own.body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{p}: even for one's own account"
        );
    }
    for (p, status, code) in [
        ("/api/billing/admin/users/nobody_here", 404, "unknown_user"),
        (
            "/api/billing/admin/users?customer_id=cus_nobody",
            404,
            "unknown_user",
        ),
        (
            "/api/billing/admin/users?customer_id=nope",
            400,
            "invalid_request",
        ),
        ("/api/billing/admin/users", 400, "invalid_request"),
        (
            "/api/billing/admin/users?customer_id=cus_noor&session_id=cs_test_x",
            400,
            "invalid_request",
        ),
        (
            "/api/billing/admin/users/noor?grants_cursor=elsewhere",
            400,
            "invalid_request",
        ),
    ] {
        let r = app.get(p, Some(&ops)).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{p}: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn an_operator_erases_a_users_personal_data_once_and_the_money_stays() {
    let app = TestApp::spawn().await;
    let ops = operator();
    app.deliver(&credits("evt_ov_er1", "erin")).await;
    app.eventually("the pack applied", || async {
        app.account("erin").await["credits"]["balance"] == 1000
    })
    .await;
    let path = "/api/billing/admin/users/erin/erase";
    let plain = app
        .post_json(path, Some(&app.token("erin")), &json!({"reason": "mine"}))
        .await;
    assert_eq!(plain.status, 403, "{}", plain.body);
    let no_reason = app.post_json(path, Some(&ops), &json!({})).await;
    assert_eq!(no_reason.status, 400, "{}", no_reason.body);

    let erased = app
        .post_json(path, Some(&ops), &json!({"reason": "GDPR request 7"}))
        .await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(erased.body["events_scrubbed"], 1);
    assert_eq!(erased.body["erased_by"], "ops_view");
    let again = app
        .post_json(path, Some(&ops), &json!({"reason": "twice"}))
        .await;
    assert_eq!(
        (
            again.status,
            &again.body["erased_at"],
            &again.body["reason"]
        ),
        (200, &erased.body["erased_at"], &json!("GDPR request 7"))
    );
    assert_eq!(again.body["events_scrubbed"], 0);

    let v = app.get("/api/billing/admin/users/erin", Some(&ops)).await;
    assert_eq!(v.body["erasure"]["reason"], "GDPR request 7");
    assert_eq!(v.body["account"]["credits"]["balance"], 1000);
    assert_eq!(v.body["events"][0]["id"], "evt_ov_er1");
}

#[tokio::test]
async fn a_user_named_erase_is_viewed_not_erased() {
    let app = TestApp::spawn().await;
    let ops = operator();
    app.deliver(&credits("evt_ov_named", "erase")).await;
    app.eventually("the pack applied", || async {
        app.account("erase").await["credits"]["balance"] == 1000
    })
    .await;
    let r = app.get("/api/billing/admin/users/erase", Some(&ops)).await;
    assert_eq!(
        (r.status, r.body["user_id"].as_str()),
        (200, Some("erase")),
        "{}",
        r.body
    );
    assert_eq!(r.body["erasure"], Value::Null);
}
