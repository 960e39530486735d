//! Buying without Checkout, black-box over the local stack (moto, a fake Stripe answering
//! with the official fixtures): a PaymentIntent purchase fulfilled once across duplicate and
//! out-of-order deliveries, a failed payment, the usage check against the consume call, an
//! operator's refund, and the refusals that store nothing.

use billing_testing::{checkout_session, event, fake_stripe, object, payment_intent};
use black_box_tests::{JWT_SECRET, TestApp};
use serde_json::{Value, json};
use wiremock::MockServer;

const T0: i64 = 1_795_000_000;

async fn stack(stripe: &MockServer) -> TestApp {
    let base = stripe.uri();
    TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_purchases"),
        ("STRIPE_API_BASE", &base),
        ("STRIPE_PRICE_CREDITS_STARTER", "price_bb_starter"),
    ])
    .await
}

fn operator() -> String {
    local_stack::auth::token(JWT_SECRET, "ops", None, "openid billing:admin", 600)
}

async fn buy(app: &TestApp, user: &str, plan: &str, quantity: i64) -> Value {
    let r = app
        .http
        .post(app.url("/api/billing/purchases"))
        .bearer_auth(app.token(user))
        .header("idempotency-key", format!("click-{user}"))
        .json(&json!({ "plan_id": plan, "quantity": quantity }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

async fn balance(app: &TestApp, user: &str) -> i64 {
    app.account(user).await["credits"]["balance"]
        .as_i64()
        .unwrap_or(-1)
}

async fn stripe_calls(stripe: &MockServer, path: &str) -> usize {
    let all = stripe.received_requests().await.unwrap_or_default();
    all.iter().filter(|r| r.url.path() == path).count()
}

#[tokio::test]
async fn a_payment_intent_purchase_is_fulfilled_once_across_duplicate_and_out_of_order_deliveries()
{
    let stripe = fake_stripe("cs_test_bb_shared").await;
    let app = stack(&stripe).await;

    // Stripe Elements: the PaymentIntent's own event, delivered three times at once.
    let made = buy(&app, "pam", "uses_20", 2).await;
    assert_eq!(
        (made["amount"].as_i64(), made["credits"].as_i64()),
        (Some(1000), Some(40))
    );
    let pi = made["payment_intent_id"].as_str().unwrap().to_owned();
    assert!(made["client_secret"].as_str().unwrap().starts_with(&pi));
    let succeeded = event(
        "evt_bb_pi_ok",
        "payment_intent.succeeded",
        T0,
        payment_intent(&pi, "pam", "uses_20", 2, 1000, "succeeded"),
    );
    let deliveries = (0..3).map(|_| app.deliver(&succeeded));
    for r in futures::future::join_all(deliveries).await {
        assert_eq!(r.status, 200, "{}", r.body);
    }

    // A Checkout Session's PaymentIntent: its event first, the session's completion after,
    // each twice, interleaved.
    let started = app
        .post_json(
            "/api/billing/checkout",
            Some(&app.token("sam")),
            &json!({ "plan_id": "credits_starter" }),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let mut session = checkout_session("cs_test_bb_shared", "sam", "credits_starter", "paid", 1000);
    session["payment_intent"] = json!("pi_bb_of_checkout");
    let completed = event("evt_bb_cs", "checkout.session.completed", T0, session);
    let pi_of_checkout = event(
        "evt_bb_cs_pi",
        "payment_intent.succeeded",
        T0,
        payment_intent(
            "pi_bb_of_checkout",
            "sam",
            "credits_starter",
            1,
            1000,
            "succeeded",
        ),
    );
    for e in [&pi_of_checkout, &completed, &pi_of_checkout, &completed] {
        assert_eq!(app.deliver(e).await.status, 200);
    }

    app.eventually("both purchases fulfilled", || async {
        balance(&app, "pam").await == 40
            && app.checkout_state("cs_test_bb_shared").await == "fulfilled"
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let pam = app.account("pam").await;
    assert_eq!(pam["credits"]["balance"], 40);
    assert_eq!(pam["purchases"].as_array().unwrap().len(), 1);
    assert_eq!(pam["purchases"][0]["payment_intent_id"], pi.as_str());
    assert_eq!(pam["purchases"][0]["status"], "paid");
    let sam = app.account("sam").await;
    assert_eq!(sam["credits"]["balance"], 1000, "granted once in all");
    assert_eq!(sam["purchases"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_payment_shows_failed_on_the_purchase_and_grants_nothing() {
    let stripe = fake_stripe("cs_test_bb_unused").await;
    let app = stack(&stripe).await;
    let made = buy(&app, "fay", "credits_starter", 1).await;
    let pi = made["payment_intent_id"].as_str().unwrap();
    let failed = event(
        "evt_bb_pi_fail",
        "payment_intent.payment_failed",
        T0,
        payment_intent(
            pi,
            "fay",
            "credits_starter",
            1,
            1000,
            "requires_payment_method",
        ),
    );
    assert_eq!(app.deliver(&failed).await.status, 200);
    app.eventually("the failure recorded", || async {
        app.account("fay").await["purchases"][0]["status"] == "failed"
    })
    .await;
    let account = app.account("fay").await;
    assert_eq!(account["credits"]["balance"], 0);
    assert_eq!(account["tier"], "free");
}

#[tokio::test]
async fn the_usage_check_agrees_with_the_consume_call_on_200_random_states() {
    let app = TestApp::spawn_with(&[("FREE_USES", "3")]).await;
    let ops = operator();
    let mut seed: u64 = 0xb1_11_1e;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let states: Vec<(String, i64, i64, i64)> = (0..200)
        .map(|i| {
            (
                format!("us{i}"),
                next(30) as i64,
                next(5) as i64,
                1 + next(40) as i64,
            )
        })
        .collect();
    for chunk in states.chunks(20) {
        let runs = chunk.iter().map(|(user, credits, used, units)| {
            let app = &app;
            let ops = ops.clone();
            async move {
                let token = app.token(user);
                if *credits > 0 {
                    let grant = json!({ "user_id": user, "credits": credits, "reason": "state" });
                    let g = app
                        .post_json("/api/billing/admin/grant", Some(&ops), &grant)
                        .await;
                    assert_eq!(g.status, 200, "{}", g.body);
                }
                if *used > 0 {
                    let spend = json!({ "units": used, "idempotency_key": "setup" });
                    app.post_json("/api/billing/usage", Some(&token), &spend)
                        .await;
                }
                let path = format!("/api/billing/usage?units={units}");
                let checked = app.get(&path, Some(&token)).await;
                assert_eq!(checked.status, 200, "{}", checked.body);
                let again = app.get(&path, Some(&token)).await;
                assert_eq!(checked.body, again.body, "a check consumes nothing");
                let body = json!({ "units": units, "idempotency_key": "compare" });
                let consumed = app
                    .post_json("/api/billing/usage", Some(&token), &body)
                    .await;
                let c = &checked.body;
                match consumed.status {
                    200 => {
                        assert_eq!(c["allowed"], true, "{user}: {c}");
                        assert_eq!(c["balance"], consumed.body["balance"], "{user}");
                        assert_eq!(
                            c["free_uses_remaining"], consumed.body["free_uses_remaining"],
                            "{user}"
                        );
                        assert_eq!(c["purchase"], Value::Null);
                    }
                    402 => {
                        assert_eq!(c["allowed"], false, "{user}: {c}");
                        assert_eq!(
                            c["purchase"]["plan_id"], consumed.body["purchase"]["plan_id"],
                            "{user}"
                        );
                        assert!(
                            c["purchase"]["amount"].is_i64() && c["purchase"]["credits"].is_i64()
                        );
                    }
                    other => panic!("{user}: {other} {}", consumed.body),
                }
            }
        });
        futures::future::join_all(runs).await;
    }
}

#[tokio::test]
async fn an_operator_refund_goes_through_stripe_and_charge_refunded_takes_the_credits_back() {
    let stripe = fake_stripe("cs_test_bb_unused").await;
    let app = stack(&stripe).await;
    let made = buy(&app, "rex", "credits_starter", 1).await;
    let pi = made["payment_intent_id"].as_str().unwrap().to_owned();
    let ok = event(
        "evt_bb_rf_buy",
        "payment_intent.succeeded",
        T0,
        payment_intent(&pi, "rex", "credits_starter", 1, 1000, "succeeded"),
    );
    app.deliver(&ok).await;
    app.eventually("the pack granted", || async {
        balance(&app, "rex").await == 1000
    })
    .await;

    let ops = operator();
    let body = json!({ "payment_intent_id": pi, "reason": "duplicate order" });
    let refunded = app
        .post_json("/api/billing/admin/refund", Some(&ops), &body)
        .await;
    assert_eq!(refunded.status, 200, "{}", refunded.body);
    assert_eq!(refunded.body["amount"], 1000);
    assert!(
        refunded.body["refund_id"]
            .as_str()
            .unwrap()
            .starts_with("re_")
    );
    assert_eq!(stripe_calls(&stripe, "/v1/refunds").await, 1);
    assert_eq!(
        balance(&app, "rex").await,
        1000,
        "taken back by charge.refunded only"
    );

    let charge = object(
        "charge",
        json!({ "id": "ch_bb_rex", "payment_intent": pi, "amount": 1000, "amount_refunded": 1000, "refunded": true }),
    );
    app.deliver(&event("evt_bb_rf", "charge.refunded", T0 + 60, charge))
        .await;
    app.eventually("the credits taken back", || async {
        balance(&app, "rex").await == 0
    })
    .await;
    assert_eq!(
        app.account("rex").await["purchases"][0]["status"],
        "refunded"
    );

    let again = app
        .post_json("/api/billing/admin/refund", Some(&ops), &body)
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.body["error"]["code"], "already_refunded");
}

#[tokio::test]
async fn a_plain_user_is_refused_and_bad_bodies_are_400_with_nothing_stored() {
    let stripe = fake_stripe("cs_test_bb_unused").await;
    let app = stack(&stripe).await;
    let made = buy(&app, "val", "uses_20", 1).await;
    let pi = made["payment_intent_id"].as_str().unwrap().to_owned();
    app.deliver(&event(
        "evt_bb_val",
        "payment_intent.succeeded",
        T0,
        payment_intent(&pi, "val", "uses_20", 1, 500, "succeeded"),
    ))
    .await;
    app.eventually("granted", || async { balance(&app, "val").await == 20 })
        .await;

    let user = app.token("val");
    let body = json!({ "payment_intent_id": pi, "reason": "mine" });
    let r = app
        .post_json("/api/billing/admin/refund", Some(&user), &body)
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );

    let ops = operator();
    for (bad, code) in [
        (json!({}), "invalid_request"),
        (json!({ "reason": "x" }), "invalid_request"),
        (
            json!({ "payment_intent_id": pi, "reason": "" }),
            "invalid_request",
        ),
        (
            json!({ "payment_intent_id": pi, "amount": 0, "reason": "x" }),
            "invalid_request",
        ),
        (
            json!({ "payment_intent_id": pi, "amount": 501, "reason": "x" }),
            "invalid_amount",
        ),
        (
            json!({ "payment_intent_id": "nope", "reason": "x" }),
            "invalid_request",
        ),
        (
            json!({ "payment_intent_id": pi, "session_id": "cs_test_x", "reason": "x" }),
            "invalid_request",
        ),
        (
            json!({ "payment_intent_id": pi, "reason": "x", "extra": 1 }),
            "invalid_request",
        ),
    ] {
        let r = app
            .post_json("/api/billing/admin/refund", Some(&ops), &bad)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{bad}"
        );
    }
    let unknown = json!({ "payment_intent_id": "pi_never_sold", "reason": "x" });
    let r = app
        .post_json("/api/billing/admin/refund", Some(&ops), &unknown)
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("unknown_purchase"))
    );
    assert_eq!(
        stripe_calls(&stripe, "/v1/refunds").await,
        0,
        "no refund reached Stripe"
    );
    let audit = app
        .stack
        .services
        .table
        .query("USER#val", "REFUND#")
        .await
        .unwrap();
    assert!(audit.is_empty(), "no audit item for a refusal");

    for (bad, code) in [
        (json!({ "plan_id": "pro_monthly" }), "unsupported_plan"),
        (json!({ "plan_id": "no_such_plan" }), "unknown_plan"),
        (
            json!({ "plan_id": "uses_20", "quantity": 0 }),
            "invalid_request",
        ),
        (
            json!({ "plan_id": "uses_20", "quantity": 101 }),
            "invalid_request",
        ),
        (json!({ "plan": "uses_20" }), "invalid_request"),
    ] {
        let r = app
            .post_json("/api/billing/purchases", Some(&user), &bad)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{bad}"
        );
    }
    assert_eq!(
        stripe_calls(&stripe, "/v1/payment_intents").await,
        1,
        "only the first buy"
    );

    for units in [
        "",
        "units=0",
        "units=-1",
        "units=abc",
        "units=1000001",
        "units=1.5",
    ] {
        let r = app
            .get(&format!("/api/billing/usage?{units}"), Some(&user))
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{units}"
        );
    }
    let unauthenticated = app.get("/api/billing/usage?units=1", None).await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(balance(&app, "val").await, 20);
    assert_eq!(
        app.account("val").await["purchases"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
