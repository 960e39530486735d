//! The billing spine, black-box: signed events over HTTP into the local stack (moto, the
//! real handlers, the SQS → worker mapping), and what callers then read.

use billing_testing::{TEST_WEBHOOK_SECRET, checkout_session, event, signature, subscription};
use black_box_tests::TestApp;
use serde_json::{Value, json};

const T0: i64 = 1_795_000_000;

fn credits_completed(id: &str, session: &str, user: &str) -> Value {
    event(
        id,
        "checkout.session.completed",
        T0,
        checkout_session(session, user, "credits_starter", "paid", 1000),
    )
}

async fn balance(app: &TestApp, user: &str) -> i64 {
    app.account(user).await["credits"]["balance"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_paid_credit_pack_shows_on_the_account_and_the_checkout_is_fulfilled() {
    let app = TestApp::spawn().await;
    let r = app
        .deliver(&credits_completed("evt_bb_1", "cs_test_bb_1", "alice"))
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({ "status": "queued" }))
    );
    app.eventually("credits land", || async {
        balance(&app, "alice").await == 1000
    })
    .await;
    assert_eq!(app.checkout_state("cs_test_bb_1").await, "fulfilled");
    let account = app.account("alice").await;
    assert_eq!(account["purchases"][0]["plan_id"], "credits_starter");
    assert_eq!(account["tier"], "free");
}

#[tokio::test]
async fn the_same_event_again_answers_duplicate_and_the_balance_stays() {
    let app = TestApp::spawn().await;
    let e = credits_completed("evt_bb_2", "cs_test_bb_2", "bob");
    app.deliver(&e).await;
    app.eventually("credits land", || async {
        balance(&app, "bob").await == 1000
    })
    .await;
    let again = app.deliver(&e).await;
    assert_eq!(
        (again.status, again.body),
        (200, json!({ "status": "duplicate" }))
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(balance(&app, "bob").await, 1000);
}

#[tokio::test]
async fn twenty_concurrent_deliveries_of_one_new_event_grant_once() {
    let app = TestApp::spawn().await;
    let e = credits_completed("evt_bb_3", "cs_test_bb_3", "carol");
    let replies = futures::future::join_all((0..20).map(|_| app.deliver(&e))).await;
    let queued = replies
        .iter()
        .filter(|r| r.body["status"] == "queued")
        .count();
    let others_ok = replies.iter().all(|r| {
        r.body["status"] == "queued"
            || r.body["status"] == "duplicate"
            || r.body["error"]["code"] == "in_progress"
    });
    assert_eq!(
        queued,
        1,
        "{:?}",
        replies
            .iter()
            .map(|r| r.body.to_string())
            .collect::<Vec<_>>()
    );
    assert!(others_ok);
    app.eventually("credits land", || async {
        balance(&app, "carol").await == 1000
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(balance(&app, "carol").await, 1000);
}

#[tokio::test]
async fn a_bad_or_stale_signature_gets_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let body = credits_completed("evt_bb_4", "cs_test_bb_4", "dave").to_string();
    let now = chrono::Utc::now().timestamp();
    for header in [
        signature("whsec_wrong", now, &body),
        signature(TEST_WEBHOOK_SECRET, now - 301, &body),
    ] {
        let r = app.post_webhook(&body, Some(&header)).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_signature"))
        );
    }
    let missing = app.post_webhook(&body, None).await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (400, Some("missing_signature"))
    );
    // Nothing was recorded: the event is new to a correctly signed delivery.
    let good = app.deliver(&serde_json::from_str(&body).unwrap()).await;
    assert_eq!(good.body["status"], "queued");
}

#[tokio::test]
async fn a_tampered_body_fails_verification() {
    let app = TestApp::spawn().await;
    let body = credits_completed("evt_bb_5", "cs_test_bb_5", "erin").to_string();
    let header = signature(TEST_WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
    let tampered = body.replace("1000", "9000");
    let r = app.post_webhook(&tampered, Some(&header)).await;
    assert_eq!(r.status, 400);
    assert_eq!(balance(&app, "erin").await, 0);
}

#[tokio::test]
async fn an_oversized_or_unparseable_body_is_refused_with_its_code() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();
    let huge = "x".repeat(256 * 1024 + 1);
    let r = app
        .post_webhook(&huge, Some(&signature(TEST_WEBHOOK_SECRET, now, &huge)))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let junk = "{\"hello\": 1}";
    let r = app
        .post_webhook(junk, Some(&signature(TEST_WEBHOOK_SECRET, now, junk)))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("invalid_payload"))
    );
}

#[tokio::test]
async fn an_event_type_we_do_not_act_on_is_ignored() {
    let app = TestApp::spawn().await;
    let e = event(
        "evt_bb_plan",
        "plan.created",
        T0,
        billing_testing::fixture("plan"),
    );
    assert_eq!(app.deliver(&e).await.body, json!({ "status": "ignored" }));
}

#[tokio::test]
async fn a_subscription_created_then_deleted_then_a_stale_update_ends_free() {
    let app = TestApp::spawn().await;
    let sub =
        |status: &str| subscription("sub_bb_1", "frank", "pro_monthly", status, T0 + 2_592_000);
    app.deliver(&event(
        "evt_bb_s1",
        "customer.subscription.created",
        T0,
        sub("active"),
    ))
    .await;
    app.eventually("tier becomes paid", || async {
        app.account("frank").await["tier"] == "paid"
    })
    .await;
    app.deliver(&event(
        "evt_bb_s2",
        "customer.subscription.deleted",
        T0 + 200,
        sub("canceled"),
    ))
    .await;
    app.eventually("tier falls back", || async {
        app.account("frank").await["tier"] == "free"
    })
    .await;
    app.deliver(&event(
        "evt_bb_s3",
        "customer.subscription.updated",
        T0 + 100,
        sub("active"),
    ))
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let account = app.account("frank").await;
    assert_eq!(
        (
            account["tier"].as_str(),
            account["subscription"]["status"].as_str()
        ),
        (Some("free"), Some("canceled"))
    );
}

#[tokio::test]
async fn a_redelivered_queue_message_changes_nothing() {
    let app = TestApp::spawn().await;
    let e = credits_completed("evt_bb_6", "cs_test_bb_6", "gina");
    app.deliver(&e).await;
    app.eventually("credits land", || async {
        balance(&app, "gina").await == 1000
    })
    .await;
    // SQS delivers at least once: the same event reaches the worker again.
    let again = billing_core::queue::OutgoingMessage {
        group: "cus_gina".into(),
        dedup_id: "redelivery-of-evt_bb_6".into(),
        body: e.to_string(),
    };
    app.stack.services.queue.send(&again).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    assert_eq!(balance(&app, "gina").await, 1000);
}

#[tokio::test]
async fn the_account_needs_a_valid_token() {
    let app = TestApp::spawn().await;
    let none = app.get("/api/billing/account", None).await;
    assert_eq!(
        (none.status, none.body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let forged = local_stack::auth::token("not-the-secret", "alice", None, "openid", 60);
    assert_eq!(
        app.get("/api/billing/account", Some(&forged)).await.status,
        401
    );
}

#[tokio::test]
async fn a_new_user_is_a_free_account_with_the_free_uses() {
    let app = TestApp::spawn_with(&[("FREE_USES", "4")]).await;
    let r = app
        .get("/api/billing/account", Some(&app.token("newbie")))
        .await;
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.body["user_id"], "newbie");
    assert_eq!(r.body["tier"], "free");
    assert_eq!(
        r.body["credits"],
        json!({ "balance": 0, "free_uses_remaining": 4 })
    );
}

#[tokio::test]
async fn checkout_status_answers_only_the_id_and_state() {
    let app = TestApp::spawn().await;
    let unknown = app
        .get(
            "/api/billing/checkout-status?session_id=cs_test_never",
            None,
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.body.clone()),
        (
            200,
            json!({ "session_id": "cs_test_never", "state": "unknown" })
        )
    );
    assert_eq!(unknown.headers["cache-control"], "no-store");
    for bad in [
        "",
        "?session_id=",
        "?session_id=pi_123",
        "?session_id=cs_%3Cscript%3E",
    ] {
        let r = app
            .get(&format!("/api/billing/checkout-status{bad}"), None)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_session_id")),
            "{bad}"
        );
    }
    app.deliver(&credits_completed("evt_bb_7", "cs_test_bb_7", "hank"))
        .await;
    app.eventually("fulfilled", || async {
        app.checkout_state("cs_test_bb_7").await == "fulfilled"
    })
    .await;
    let r = app
        .get("/api/billing/checkout-status?session_id=cs_test_bb_7", None)
        .await;
    assert_eq!(
        r.body.as_object().unwrap().len(),
        2,
        "no personal data: {}",
        r.body
    );
}

#[tokio::test]
async fn the_public_status_shows_plans_but_no_ids_or_secrets() {
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_hidden_key"),
        ("STRIPE_PRICE_CREDITS_STARTER", "price_hidden_123"),
        ("STRIPE_LINK_USES_20", "https://buy.stripe.com/hidden"),
    ])
    .await;
    let r = app.get("/api/billing/status", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "no-store");
    let text = r.body.to_string();
    for secret in [
        "sk_test_hidden_key",
        "price_hidden_123",
        "buy.stripe.com",
        TEST_WEBHOOK_SECRET,
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(r.body["stripe_configured"], true);
    assert_eq!(
        r.body["plans"]["credits_starter"]["via"],
        "checkout_session"
    );
    assert_eq!(r.body["plans"]["credits_starter"]["available"], true);
    assert_eq!(r.body["plans"]["uses_20"]["via"], "payment_link");
    assert_eq!(r.body["plans"]["deposit_500"]["via"], "manual");
    assert_eq!(r.body["plans"]["pro_annual"]["interval"], "year");
}

#[tokio::test]
async fn the_sample_event_in_events_lands_credits_for_the_demo_user() {
    let app = TestApp::spawn().await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/stripe/checkout.session.completed.credits_starter.json"
    );
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(app.deliver(&sample).await.body["status"], "queued");
    app.eventually("demo credits", || async {
        balance(&app, "user_demo").await == 1000
    })
    .await;
    assert_eq!(
        app.checkout_state("cs_test_demo_credits_starter").await,
        "fulfilled"
    );
}

#[tokio::test]
async fn the_sample_subscription_events_walk_the_demo_user_through_its_lifecycle() {
    // Without a Stripe key the worker applies each event's own object (behind the
    // ordering guard), so the samples in events/stripe tell the whole story.
    let app = TestApp::spawn().await;
    let steps = [
        ("created", "active", "paid"),
        ("updated", "past_due", "paid"),
        ("paused", "paused", "free"),
        ("resumed", "active", "paid"),
        ("deleted", "canceled", "free"),
    ];
    for (kind, status, tier) in steps {
        let path = format!(
            "{}/../events/stripe/customer.subscription.{kind}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(
            app.deliver(&sample).await.body["status"],
            "queued",
            "{kind}"
        );
        app.eventually(&format!("{kind}: {status}, {tier}"), || async {
            let account = app.account("user_demo").await;
            account["subscription"]["status"] == status && account["tier"] == tier
        })
        .await;
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_contract_errors() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/api/nope", None).await.status, 404);
    assert_eq!(app.get("/api/stripe/webhook", None).await.status, 405);
}
