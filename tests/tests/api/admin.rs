//! The operator routes, black-box: the events list, replay, reconcile against a fake
//! Stripe listing events some of which were never delivered, audited grants, and the
//! unauthenticated and forbidden cases.

use billing_testing::{checkout_session, event};
use black_box_tests::TestApp;
use local_stack::auth;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const T0: i64 = 1_795_000_000;

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

fn operator(_app: &TestApp) -> String {
    auth::token(
        black_box_tests::JWT_SECRET,
        "ops_admin",
        None,
        "openid billing:admin",
        3600,
    )
}

async fn balance(app: &TestApp, user: &str) -> i64 {
    app.account(user).await["credits"]["balance"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn admin_routes_refuse_anonymous_callers_and_non_operators() {
    let app = TestApp::spawn().await;
    let user = app.token("plain_user");
    for (m, p) in [
        ("GET", "/api/billing/admin/events"),
        ("POST", "/api/billing/admin/replay"),
        ("POST", "/api/billing/admin/reconcile"),
        ("POST", "/api/billing/admin/grant"),
    ] {
        let anon = if m == "GET" {
            app.get(p, None).await
        } else {
            app.post_json(p, None, &json!({})).await
        };
        assert_eq!(
            (anon.status, anon.body["error"]["code"].as_str()),
            (401, Some("unauthenticated")),
            "{p}"
        );
        let plain = if m == "GET" {
            app.get(p, Some(&user)).await
        } else {
            app.post_json(p, Some(&user), &json!({})).await
        };
        assert_eq!(
            (plain.status, plain.body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{p}"
        );
    }
}

#[tokio::test]
async fn the_events_list_shows_what_arrived_and_how_it_ended() {
    let app = TestApp::spawn().await;
    let ops = operator(&app);
    app.deliver(&credits("evt_adm_1", "amy")).await;
    app.deliver(&event(
        "evt_adm_ign",
        "plan.created",
        T0,
        billing_testing::fixture("plan"),
    ))
    .await;
    app.eventually("processed", || async {
        let r = app
            .get("/api/billing/admin/events?state=processed", Some(&ops))
            .await;
        r.body["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["id"] == "evt_adm_1"))
    })
    .await;
    let r = app.get("/api/billing/admin/events", Some(&ops)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "no-store");
    let events = r.body["events"].as_array().unwrap();
    let of = |id: &str| events.iter().find(|e| e["id"] == id).cloned().unwrap();
    assert_eq!(of("evt_adm_1")["state"], "processed");
    assert_eq!(of("evt_adm_1")["type"], "checkout.session.completed");
    assert!(of("evt_adm_1")["processed_at"].is_string());
    assert_eq!(of("evt_adm_ign")["state"], "ignored");
    let bad = app
        .get("/api/billing/admin/events?state=weird", Some(&ops))
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn a_replay_applies_nothing_twice_and_unknown_events_are_404() {
    let app = TestApp::spawn().await;
    let ops = operator(&app);
    app.deliver(&credits("evt_adm_2", "bea")).await;
    app.eventually("credits", || async { balance(&app, "bea").await == 1000 })
        .await;
    let r = app
        .post_json(
            "/api/billing/admin/replay",
            Some(&ops),
            &json!({ "event_id": "evt_adm_2" }),
        )
        .await;
    assert_eq!(
        (
            r.status,
            r.body["state"].as_str(),
            r.body["outcome"].as_str()
        ),
        (200, Some("processed"), Some("already_applied"))
    );
    assert_eq!(balance(&app, "bea").await, 1000);
    let missing = app
        .post_json(
            "/api/billing/admin/replay",
            Some(&ops),
            &json!({ "event_id": "evt_never" }),
        )
        .await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (404, Some("unknown_event"))
    );
    let malformed = app
        .post_json(
            "/api/billing/admin/replay",
            Some(&ops),
            &json!({ "id": "evt_adm_2" }),
        )
        .await;
    assert_eq!(malformed.status, 400);
}

#[tokio::test]
async fn reconcile_ingests_the_events_stripe_has_and_we_never_received() {
    let stripe = billing_testing::strict_stripe().await;
    let listed: Vec<Value> = ["evt_rec_1", "evt_rec_2", "evt_rec_3"]
        .iter()
        .map(|id| credits(id, "cal"))
        .collect();
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "object": "list", "has_more": false, "data": listed })),
        )
        .mount(&stripe)
        .await;
    let base = stripe.uri();
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_rec"),
        ("STRIPE_API_BASE", &base),
    ])
    .await;
    let ops = operator(&app);
    app.deliver(&credits("evt_rec_2", "cal")).await;
    let r = app
        .post_json("/api/billing/admin/reconcile", Some(&ops), &json!({}))
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({ "fetched": 3, "ingested": 2, "next": null }))
    );
    app.eventually("all three fulfilled", || async {
        balance(&app, "cal").await == 3000
    })
    .await;
    let again = app
        .post_json(
            "/api/billing/admin/reconcile",
            Some(&ops),
            &json!({ "since": T0 }),
        )
        .await;
    assert_eq!(
        again.body,
        json!({ "fetched": 3, "ingested": 0, "next": null })
    );
}

#[tokio::test]
async fn a_grant_is_applied_and_audited_and_a_bad_one_changes_nothing() {
    let app = TestApp::spawn().await;
    let ops = operator(&app);
    let ok = app
        .post_json(
            "/api/billing/admin/grant",
            Some(&ops),
            &json!({ "user_id": "dee", "days": 7, "credits": 25, "reason": "outage credit" }),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body["grant_id"].is_string() && ok.body["credit_until"].is_string());
    let account = app.account("dee").await;
    assert_eq!(
        (
            account["tier"].as_str(),
            account["credits"]["balance"].as_i64()
        ),
        (Some("paid"), Some(25))
    );
    let bad = app
        .post_json(
            "/api/billing/admin/grant",
            Some(&ops),
            &json!({ "user_id": "eve", "credits": 5 }),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(app.account("eve").await["credits"]["balance"], 0);
}
