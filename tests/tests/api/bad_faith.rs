//! Money rules against bad faith, end to end through the local stack (intake, SQS, the
//! worker on moto): a refund then a dispute of one charge, an inquiry, and a won dispute.
//! (A Payment Link sale for a user id Payment Links would otherwise drop is in
//! `bad_faith_round_two`, now with the reference the stack signs.)

use billing_testing::{checkout_session, event, object};
use black_box_tests::TestApp;
use serde_json::{Value, json};

const T0: i64 = 1_795_000_000;

async fn balance(app: &TestApp, user: &str) -> i64 {
    app.account(user).await["credits"]["balance"]
        .as_i64()
        .unwrap()
}

async fn bought(app: &TestApp, user: &str) {
    let session = checkout_session(
        &format!("cs_test_{user}"),
        user,
        "credits_starter",
        "paid",
        1000,
    );
    app.deliver(&event(
        &format!("evt_{user}_buy"),
        "checkout.session.completed",
        T0,
        session,
    ))
    .await;
    app.eventually("credits", || async { balance(app, user).await == 1000 })
        .await;
}

fn dispute(user: &str, status: &str, amount: i64) -> Value {
    object(
        "dispute",
        json!({ "id": format!("dp_{user}"), "amount": amount, "status": status,
                "payment_intent": format!("pi_cs_test_{user}") }),
    )
}

#[tokio::test]
async fn a_refund_then_a_dispute_of_the_rest_take_back_everything() {
    let app = TestApp::spawn().await;
    bought(&app, "bf_rd").await;
    let charge = object(
        "charge",
        json!({ "id": "ch_bf_rd", "payment_intent": "pi_cs_test_bf_rd", "amount": 1000, "amount_refunded": 500 }),
    );
    app.deliver(&event("evt_bf_rd_ref", "charge.refunded", T0 + 10, charge))
        .await;
    app.eventually("half", || async { balance(&app, "bf_rd").await == 500 })
        .await;
    let d = dispute("bf_rd", "needs_response", 500);
    app.deliver(&event("evt_bf_rd_dp", "charge.dispute.created", T0 + 20, d))
        .await;
    app.eventually("all", || async { balance(&app, "bf_rd").await == 0 })
        .await;
}

#[tokio::test]
async fn an_inquiry_takes_nothing_and_a_won_dispute_gives_back_what_it_took() {
    let app = TestApp::spawn().await;
    bought(&app, "bf_inq").await;
    bought(&app, "bf_won").await;
    let inquiry = dispute("bf_inq", "warning_needs_response", 1000);
    let r = app
        .deliver(&event(
            "evt_bf_inq",
            "charge.dispute.created",
            T0 + 5,
            inquiry,
        ))
        .await;
    assert_eq!(r.body["status"], "queued");
    let created = dispute("bf_won", "needs_response", 1000);
    app.deliver(&event(
        "evt_bf_won_c",
        "charge.dispute.created",
        T0 + 5,
        created,
    ))
    .await;
    app.eventually("taken", || async { balance(&app, "bf_won").await == 0 })
        .await;
    let won = dispute("bf_won", "won", 1000);
    let r = app
        .deliver(&event(
            "evt_bf_won_w",
            "charge.dispute.closed",
            T0 + 50,
            won,
        ))
        .await;
    assert_eq!(r.body["status"], "queued", "a handled type");
    app.eventually("given back", || async {
        balance(&app, "bf_won").await == 1000
    })
    .await;
    // The inquiry was queued before the dispute; by now it has been applied, taking nothing.
    assert_eq!(balance(&app, "bf_inq").await, 1000);
    assert_eq!(
        app.account("bf_inq").await["purchases"][0]["status"],
        "paid"
    );
}
