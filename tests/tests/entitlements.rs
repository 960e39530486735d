//! Renewals and refunds, black-box: signed events through intake, SQS and the worker.

use billing_core::testing::{checkout_session, event, object};
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
        json!({ "id": "in_bb_1", "customer": "cus_kai", "status": "paid" }),
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
