//! Renewals and refunds, black-box: signed events through intake, SQS and the worker.

use billing_testing::{checkout_session, event, object};
use black_box_tests::TestApp;
use serde_json::json;

const T0: i64 = 1_795_000_000;

async fn balance(app: &TestApp, user: &str) -> i64 {
    app.account(user).await["credits"]["balance"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_renewal_grants_once_and_a_partial_then_full_refund_takes_back_in_proportion() {
    let app = TestApp::spawn().await;
    let mut invoice = object(
        "invoice",
        json!({ "id": "in_bb_1", "customer": "cus_kai", "status": "paid",
                "billing_reason": "subscription_cycle", "amount_paid": 4900 }),
    );
    invoice["parent"] = json!({ "type": "subscription_details", "subscription_details": {
        "subscription": "sub_kai", "metadata": { "user_id": "kai", "plan_id": "pro_credits_monthly" } } });
    let paid = event("evt_bb_inv", "invoice.paid", T0, invoice);
    app.deliver(&paid).await;
    app.eventually("period credits", || async {
        balance(&app, "kai").await == 2000
    })
    .await;
    // A replayed delivery of the same invoice (new event id, same invoice) grants nothing.
    let mut again = paid.clone();
    again["id"] = json!("evt_bb_inv_again");
    app.deliver(&again).await;

    let session = checkout_session("cs_test_bb_kai", "kai", "credits_starter", "paid", 1000);
    app.deliver(&event(
        "evt_bb_buy",
        "checkout.session.completed",
        T0,
        session,
    ))
    .await;
    app.eventually("pack credits", || async {
        balance(&app, "kai").await == 3000
    })
    .await;
    let charge = |refunded: i64| {
        object(
            "charge",
            json!({ "id": "ch_bb", "payment_intent": "pi_cs_test_bb_kai", "amount": 1000, "amount_refunded": refunded }),
        )
    };
    app.deliver(&event(
        "evt_bb_ref1",
        "charge.refunded",
        T0 + 10,
        charge(500),
    ))
    .await;
    app.eventually("half taken back", || async {
        balance(&app, "kai").await == 2500
    })
    .await;
    app.deliver(&event(
        "evt_bb_ref2",
        "charge.refunded",
        T0 + 20,
        charge(1000),
    ))
    .await;
    app.eventually("all taken back", || async {
        balance(&app, "kai").await == 2000
    })
    .await;
    let account = app.account("kai").await;
    let purchase = account["purchases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["session_id"] == "cs_test_bb_kai")
        .cloned()
        .unwrap();
    assert_eq!(purchase["status"], "refunded");
}

#[tokio::test]
async fn a_referral_claimed_then_a_first_payment_extends_both_accounts_once() {
    let app = TestApp::spawn().await;
    let code = app.account("host_bb").await["referral"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let guest = app.token("guest_bb");
    let claimed = app
        .post_json(
            "/api/billing/referral",
            Some(&guest),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(
        (claimed.status, claimed.body.clone()),
        (200, json!({ "referred_by": code }))
    );
    let again = app
        .post_json(
            "/api/billing/referral",
            Some(&guest),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (400, Some("already_referred"))
    );
    let own = app
        .post_json(
            "/api/billing/referral",
            Some(&app.token("host_bb")),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(own.body["error"]["code"], "self_referral");
    let unknown = app
        .post_json(
            "/api/billing/referral",
            Some(&app.token("x_bb")),
            &json!({ "code": "ZZZZZZZZZZ" }),
        )
        .await;
    assert_eq!(unknown.body["error"]["code"], "unknown_code");

    // The first subscription invoice with money paid is what earns the reward.
    let invoice = billing_testing::subscription_invoice(
        "in_guest_bb",
        "sub_guest_bb",
        "guest_bb",
        "price_bb",
        "subscription_create",
        2900,
    );
    let paid = event("evt_bb_guest_pay", "invoice.paid", T0, invoice);
    app.deliver(&paid).await;
    app.eventually("host rewarded", || async {
        app.account("host_bb").await["referral"]["conversions"] == 1
    })
    .await;
    assert_eq!(app.account("guest_bb").await["tier"], "paid");
    let until = app.account("host_bb").await["credit_until"].clone();
    // A replay of the triggering event extends nothing again.
    let ops = local_stack::auth::token(
        black_box_tests::JWT_SECRET,
        "ops",
        None,
        "openid billing:admin",
        600,
    );
    let replay = app
        .post_json(
            "/api/billing/admin/replay",
            Some(&ops),
            &json!({ "event_id": "evt_bb_guest_pay" }),
        )
        .await;
    assert_eq!(replay.body["outcome"], "already_applied");
    assert_eq!(app.account("host_bb").await["credit_until"], until);
    let late = app
        .post_json(
            "/api/billing/referral",
            Some(&app.token("guest_bb")),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(late.body["error"]["code"], "already_referred");
}

#[tokio::test]
async fn a_failed_invoice_shows_a_dispute_takes_back_and_replays_of_both_change_nothing() {
    let app = TestApp::spawn().await;
    let ops = local_stack::auth::token(
        black_box_tests::JWT_SECRET,
        "ops",
        None,
        "openid billing:admin",
        600,
    );
    let mut invoice = object(
        "invoice",
        json!({ "id": "in_bb_fail", "customer": "cus_lou" }),
    );
    invoice["parent"] = json!({ "subscription_details": { "subscription": "sub_lou", "metadata": { "user_id": "lou", "plan_id": "pro_monthly" } } });
    app.deliver(&event("evt_bb_fail", "invoice.payment_failed", T0, invoice))
        .await;
    app.eventually("problem shown", || async {
        app.account("lou").await["payment_problem"]["invoice_id"] == "in_bb_fail"
    })
    .await;

    let session = checkout_session("cs_test_bb_lou", "lou", "credits_starter", "paid", 1000);
    app.deliver(&event(
        "evt_bb_lou_buy",
        "checkout.session.completed",
        T0,
        session,
    ))
    .await;
    app.eventually("credits", || async { balance(&app, "lou").await == 1000 })
        .await;
    let dispute = object(
        "dispute",
        json!({ "id": "dp_bb", "amount": 1000, "status": "needs_response", "payment_intent": "pi_cs_test_bb_lou" }),
    );
    app.deliver(&event(
        "evt_bb_dispute",
        "charge.dispute.created",
        T0 + 5,
        dispute,
    ))
    .await;
    app.eventually("taken back", || async { balance(&app, "lou").await == 0 })
        .await;

    for id in ["evt_bb_fail", "evt_bb_lou_buy", "evt_bb_dispute"] {
        let r = app
            .post_json(
                "/api/billing/admin/replay",
                Some(&ops),
                &json!({ "event_id": id }),
            )
            .await;
        // A failure re-applies the same fields (the invoice is still unpaid); the others are
        // held back by their guards. Either way the account below is unchanged.
        assert_eq!(
            (r.status, r.body["state"].as_str()),
            (200, Some("processed")),
            "{id}: {}",
            r.body
        );
    }
    let account = app.account("lou").await;
    assert_eq!(account["credits"]["balance"], 0);
    assert_eq!(account["payment_problem"]["invoice_id"], "in_bb_fail");
}
