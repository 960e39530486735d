//! Stripe Tax, black-box: with `AUTOMATIC_TAX` on, checkout sessions compute tax and
//! collect the address, and a credit pack bought with Stripe Elements needs the buyer's
//! address, is charged Stripe Tax's total and names the calculation so that Stripe records
//! the tax transaction when the payment succeeds; with it off, nothing of that is sent.

use billing_testing::{
    FakeSubscriptions, event, fake_stripe, object, payment_intent, subscription,
};
use black_box_tests::TestApp;
use serde_json::{Value, json};
use std::collections::HashMap;

const T0: i64 = 1_795_000_000;

/// Stripe Tax at 19 % for any address, as `POST /v1/tax/calculations` answers.
fn tax_calculation(request: &wiremock::Request) -> wiremock::ResponseTemplate {
    let form: HashMap<String, String> =
        form_urlencoded::parse(&request.body).into_owned().collect();
    let amount: i64 = form["line_items[0][amount]"].parse().unwrap();
    let tax = amount * 19 / 100;
    wiremock::ResponseTemplate::new(200).set_body_json(object(
        "tax.calculation",
        json!({ "id": "taxcalc_test_19", "amount_total": amount + tax,
                "tax_amount_exclusive": tax, "tax_amount_inclusive": 0,
                "currency": form["currency"] }),
    ))
}

async fn stack(tax: bool) -> (wiremock::MockServer, TestApp) {
    let stripe = fake_stripe("cs_test_tax").await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/tax/calculations"))
        .respond_with(tax_calculation)
        .mount(&stripe)
        .await;
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_tax"),
        ("STRIPE_API_BASE", &stripe.uri()),
        ("STRIPE_PRICE_CREDITS_STARTER", "price_tax_starter"),
        ("STRIPE_PRICE_PRO_MONTHLY", "price_tax_monthly"),
        ("AUTOMATIC_TAX", if tax { "true" } else { "false" }),
    ])
    .await;
    (stripe, app)
}

async fn forms(stripe: &wiremock::MockServer, path: &str) -> Vec<HashMap<String, String>> {
    stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == path)
        .map(|r| form_urlencoded::parse(&r.body).into_owned().collect())
        .collect()
}

/// Links `user` to the customer `cus_<user>` (a subscription of theirs, applied).
async fn with_customer(stripe: &wiremock::MockServer, app: &TestApp, user: &str) {
    let sub = subscription(
        &format!("sub_tax_{user}"),
        user,
        "pro_monthly",
        "canceled",
        T0,
    );
    FakeSubscriptions::mount(stripe).await.put(&sub);
    app.deliver(&event(
        &format!("evt_tax_{user}"),
        "customer.subscription.deleted",
        T0,
        sub,
    ))
    .await;
    app.eventually("the customer is linked", || async {
        app.account(user).await["subscription"]["status"] == "canceled"
    })
    .await;
}

#[tokio::test]
async fn with_tax_on_a_checkout_session_computes_tax_and_updates_the_reused_customers_address() {
    let (stripe, app) = stack(true).await;
    with_customer(&stripe, &app, "tia").await;
    for (user, plan) in [("tia", "credits_starter"), ("ulf", "pro_monthly")] {
        let r = app
            .post_json(
                "/api/billing/checkout",
                Some(&app.token(user)),
                &json!({ "plan_id": plan }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let sessions = forms(&stripe, "/v1/checkout/sessions").await;
    for form in &sessions {
        assert_eq!(
            form.get("automatic_tax[enabled]").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            form.get("billing_address_collection").map(String::as_str),
            Some("required")
        );
        assert_eq!(
            form.get("tax_id_collection[enabled]").map(String::as_str),
            Some("true")
        );
    }
    // The known customer's address and name follow what they enter; a new buyer has none.
    assert_eq!(sessions[0]["customer"], "cus_tia");
    assert_eq!(sessions[0]["customer_update[address]"], "auto");
    assert_eq!(sessions[0]["customer_update[name]"], "auto");
    assert!(!sessions[1].contains_key("customer_update[address]"));
}

#[tokio::test]
async fn with_tax_off_no_tax_parameter_reaches_stripe() {
    let (stripe, app) = stack(false).await;
    let r = app
        .post_json(
            "/api/billing/checkout",
            Some(&app.token("vic")),
            &json!({ "plan_id": "credits_starter" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let bought = app
        .post_json(
            "/api/billing/purchases",
            Some(&app.token("vic")),
            &json!({ "plan_id": "uses_20" }),
        )
        .await;
    assert_eq!(
        (bought.status, bought.body["amount"].as_i64()),
        (200, Some(500)),
        "{}",
        bought.body
    );
    let session = &forms(&stripe, "/v1/checkout/sessions").await[0];
    assert!(
        session
            .keys()
            .all(|k| !k.starts_with("automatic_tax") && !k.starts_with("tax_id")),
        "{session:?}"
    );
    let intent = &forms(&stripe, "/v1/payment_intents").await[0];
    assert!(intent.keys().all(|k| !k.starts_with("hooks")), "{intent:?}");
    assert!(forms(&stripe, "/v1/tax/calculations").await.is_empty());
}

#[tokio::test]
async fn with_tax_on_a_purchase_without_an_address_is_400_address_required_and_reaches_no_stripe() {
    let (stripe, app) = stack(true).await;
    let wes = app.token("wes");
    for body in [
        json!({ "plan_id": "uses_20" }),
        json!({ "plan_id": "uses_20", "address": { "country": "DE" } }),
        json!({ "plan_id": "uses_20", "address": { "postal_code": "10115" } }),
        json!({ "plan_id": "uses_20", "address": { "country": " ", "postal_code": "" } }),
    ] {
        let r = app
            .post_json("/api/billing/purchases", Some(&wes), &body)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("address_required")),
            "{body}"
        );
    }
    let r = app
        .post_json(
            "/api/billing/purchases",
            Some(&wes),
            &json!({ "plan_id": "uses_20", "address": { "country": "Germany", "postal_code": "10115" } }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let asked = stripe.received_requests().await.unwrap();
    assert!(
        asked.iter().all(|r| r.method.as_str() != "POST"),
        "nothing reached Stripe"
    );
    assert!(
        app.account("wes").await["purchases"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn with_tax_on_a_purchase_is_charged_stripe_taxs_total_and_names_the_calculation() {
    let (stripe, app) = stack(true).await;
    let xan = app.token("xan");
    let body = json!({ "plan_id": "uses_20", "quantity": 2,
                       "address": { "country": "de", "postal_code": "10115" } });
    let r = app
        .post_json("/api/billing/purchases", Some(&xan), &body)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["amount"].as_i64(), r.body["credits"].as_i64()),
        (Some(1190), Some(40))
    );
    let calc = &forms(&stripe, "/v1/tax/calculations").await[0];
    assert_eq!(calc["currency"], "usd");
    assert_eq!(calc["line_items[0][amount]"], "1000");
    assert_eq!(calc["line_items[0][reference]"], "uses_20");
    assert_eq!(calc["customer_details[address][country]"], "DE");
    assert_eq!(calc["customer_details[address][postal_code]"], "10115");
    let intent = &forms(&stripe, "/v1/payment_intents").await[0];
    assert_eq!(intent["amount"], "1190");
    assert_eq!(intent["hooks[inputs][tax][calculation]"], "taxcalc_test_19");

    // The payment succeeds (Stripe records the tax transaction with it): the pack is
    // granted once, at the taxed amount.
    let pi = r.body["payment_intent_id"].as_str().unwrap();
    let mut paid: Value = payment_intent(pi, "xan", "uses_20", 2, 1190, "succeeded");
    paid["metadata"]["tax_calculation"] = "taxcalc_test_19".into();
    app.deliver(&event("evt_tax_paid", "payment_intent.succeeded", T0, paid))
        .await;
    app.eventually("credits granted", || async {
        app.account("xan").await["credits"]["balance"] == 40
    })
    .await;
    let purchases = app.account("xan").await["purchases"].clone();
    assert_eq!(purchases[0]["amount"], 1190, "{purchases}");
}
