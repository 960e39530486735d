//! Money rules against bad faith, end to end through the local stack (intake, SQS, the
//! worker on moto): a Payment Link sale for a user id Payment Links would otherwise
//! drop, a refund then a dispute of one charge, an inquiry, and a won dispute.

use billing_core::domain::ids::UserId;
use billing_testing::{checkout_session, event, fake_stripe, object};
use black_box_tests::TestApp;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

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

#[tokio::test]
async fn a_payment_link_sale_reaches_a_user_whose_id_payment_links_would_drop() {
    let stripe = fake_stripe("cs_test_unused").await;
    let items = json!({ "object": "list", "has_more": false, "data": [
        object("item", json!({ "price": { "id": "price_link_starter" }, "quantity": 1 }))
    ]});
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_bf_link/line_items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(items))
        .mount(&stripe)
        .await;
    let base = stripe.uri();
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_link"),
        ("STRIPE_API_BASE", &base),
        ("STRIPE_PRICES", "credits_starter=price_link_starter"),
    ])
    .await;
    let user = "auth0|bf-link";
    // What our checkout route puts in the link's URL (proven in the core's checkout tests),
    // and what Stripe keeps of it: the session comes back with it and no metadata of ours.
    let reference = UserId::parse(user).unwrap().to_reference();
    let mut session =
        checkout_session("cs_test_bf_link", "unused", "credits_starter", "paid", 1000);
    session["metadata"] = json!({});
    session["client_reference_id"] = reference.clone().into();
    session["customer"] = "cus_bf_link".into();
    app.deliver(&event(
        "evt_bf_link",
        "checkout.session.completed",
        T0,
        session,
    ))
    .await;
    app.eventually("sold", || async { balance(&app, user).await == 1000 })
        .await;
}
