//! The caller's invoices and the preview of a plan or seat change, black-box: both read
//! (fake) Stripe for the caller's own customer and subscription only, and change nothing.

use billing_testing::{FakeSubscriptions, InvoicesApi, event, fake_stripe, object, subscription};
use black_box_tests::TestApp;
use serde_json::{Value, json};

const T0: i64 = 1_795_000_000;
const TEAM: &str = "price_pv_team";
const MONTHLY: &str = "price_pv_monthly";

fn invoice(id: &str, customer: &str, created: i64) -> Value {
    object(
        "invoice",
        json!({ "id": id, "customer": customer, "created": created, "status": "paid",
                "number": format!("N-{id}"), "amount_due": 1200, "amount_paid": 1200,
                "currency": "usd",
                "hosted_invoice_url": format!("https://invoice.stripe.com/i/{id}"),
                "invoice_pdf": format!("https://pay.stripe.com/invoice/{id}/pdf") }),
    )
}

async fn spawn(stripe: &wiremock::MockServer) -> TestApp {
    TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_invoices"),
        ("STRIPE_API_BASE", &stripe.uri()),
        ("STRIPE_PRICE_TEAM_MONTHLY", TEAM),
        ("STRIPE_PRICE_PRO_MONTHLY", MONTHLY),
    ])
    .await
}

/// `user` holds `sub_id` on `price` with `seats` (customer `cus_<user>`), applied.
async fn subscribe(
    app: &TestApp,
    held: &FakeSubscriptions,
    user: &str,
    sub_id: &str,
    plan: &str,
    price: &str,
    seats: i64,
) {
    let mut sub = subscription(sub_id, user, plan, "active", T0 + 2_592_000);
    sub["items"]["data"][0]["price"]["id"] = price.into();
    sub["items"]["data"][0]["id"] = format!("si_{user}").into();
    sub["items"]["data"][0]["quantity"] = seats.into();
    held.put(&sub);
    app.deliver(&event(
        &format!("evt_{sub_id}"),
        "customer.subscription.created",
        T0,
        sub,
    ))
    .await;
    app.eventually("subscribed", || async {
        app.account(user).await["subscription"]["id"] == sub_id
    })
    .await;
}

fn ids(r: &Value) -> Vec<String> {
    r["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_invoice_list_holds_the_callers_own_invoices_newest_first_a_page_at_a_time() {
    let stripe = fake_stripe("cs_test_inv_1").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/v1/invoices"))
        .respond_with(InvoicesApi(vec![
            invoice("in_ivy_1", "cus_ivy", T0),
            invoice("in_ivy_2", "cus_ivy", T0 + 100),
            invoice("in_ivy_3", "cus_ivy", T0 + 200),
            invoice("in_mal_1", "cus_mal", T0 + 50),
        ]))
        .mount(&stripe)
        .await;
    let app = spawn(&stripe).await;
    subscribe(&app, &held, "ivy", "sub_inv_ivy", "pro_monthly", MONTHLY, 1).await;
    subscribe(&app, &held, "mal", "sub_inv_mal", "pro_monthly", MONTHLY, 1).await;
    let ivy = app.token("ivy");

    let first = app.get("/api/billing/invoices?limit=2", Some(&ivy)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(ids(&first.body), ["in_ivy_3", "in_ivy_2"]);
    assert_eq!(first.body["has_more"], true);
    let shown = &first.body["invoices"][0];
    assert_eq!(
        shown["hosted_invoice_url"],
        "https://invoice.stripe.com/i/in_ivy_3"
    );
    assert_eq!(
        shown["invoice_pdf"],
        "https://pay.stripe.com/invoice/in_ivy_3/pdf"
    );
    assert_eq!(
        (shown["amount_due"].as_i64(), shown["amount_paid"].as_i64()),
        (Some(1200), Some(1200))
    );
    assert_eq!(shown["number"], "N-in_ivy_3");
    assert_eq!(shown["created"], "2026-11-18T11:10:00Z");
    let second = app
        .get(
            "/api/billing/invoices?limit=2&starting_after=in_ivy_2",
            Some(&ivy),
        )
        .await;
    assert_eq!(ids(&second.body), ["in_ivy_1"]);
    assert_eq!(second.body["has_more"], false);
    assert_eq!(first.headers["cache-control"], "no-store");

    // Mallory names Ivy's customer, or pages from Ivy's invoice: only her own come back.
    let mal = app.token("mal");
    for path in [
        "/api/billing/invoices?customer=cus_ivy",
        "/api/billing/invoices?starting_after=in_ivy_3",
    ] {
        let r = app.get(path, Some(&mal)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            ids(&r.body).iter().all(|id| id.starts_with("in_mal")),
            "{path}: {}",
            r.body
        );
    }
    let asked: Vec<String> = stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/invoices")
        .map(|r| r.url.query().unwrap_or_default().to_owned())
        .collect();
    assert!(
        asked
            .iter()
            .all(|q| q.contains("customer=cus_ivy") || q.contains("customer=cus_mal")),
        "{asked:?}"
    );
    assert_eq!(
        asked
            .iter()
            .filter(|q| q.contains("customer=cus_mal"))
            .count(),
        2
    );
}

#[tokio::test]
async fn an_account_without_a_customer_has_no_invoices_and_bad_paging_is_400() {
    let stripe = fake_stripe("cs_test_inv_2").await;
    let app = spawn(&stripe).await;
    let new = app.token("newcomer");
    let r = app.get("/api/billing/invoices", Some(&new)).await;
    assert_eq!(
        (r.status, &r.body),
        (200, &json!({ "invoices": [], "has_more": false }))
    );
    for path in [
        "/api/billing/invoices?limit=0",
        "/api/billing/invoices?limit=101",
        "/api/billing/invoices?limit=ten",
        "/api/billing/invoices?starting_after=cus_someone",
    ] {
        let r = app.get(path, Some(&new)).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{path}"
        );
    }
    assert!(
        stripe
            .received_requests()
            .await
            .unwrap()
            .iter()
            .all(|r| r.url.path() != "/v1/invoices")
    );
    assert_eq!(app.get("/api/billing/invoices", None).await.status, 401);
}

/// Stripe's preview of the team plan at $12 a seat: one line for the new seats, one
/// crediting the old ones, as a proration.
fn preview_answer(request: &wiremock::Request) -> wiremock::ResponseTemplate {
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&request.body).into_owned().collect();
    let seats: i64 = form["subscription_details[items][0][quantity]"]
        .parse()
        .unwrap();
    let lines = json!({ "object": "list", "has_more": false, "url": "/v1/invoices/upcoming/lines", "data": [
        { "object": "line_item", "id": "il_new", "amount": seats * 1200, "currency": "usd",
          "description": format!("Remaining time on {seats} × Team after 18 Nov 2026") },
        { "object": "line_item", "id": "il_old", "amount": -3600, "currency": "usd",
          "description": "Unused time on 3 × Team after 18 Nov 2026" } ] });
    let mut invoice = object(
        "invoice",
        json!({ "id": Value::Null, "customer": form["customer"], "status": "draft",
                "amount_due": seats * 1200 - 3600, "currency": "usd",
                "next_payment_attempt": T0 + 2_592_000 }),
    );
    invoice["lines"] = lines;
    wiremock::ResponseTemplate::new(200).set_body_json(invoice)
}

#[tokio::test]
async fn a_preview_of_more_seats_asks_stripe_for_the_callers_subscription_and_changes_nothing() {
    let stripe = fake_stripe("cs_test_pv_1").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/invoices/create_preview"))
        .respond_with(preview_answer)
        .mount(&stripe)
        .await;
    let app = spawn(&stripe).await;
    subscribe(&app, &held, "pia", "sub_pv_pia", "team_monthly", TEAM, 3).await;
    let before = app.account("pia").await;
    let r = app
        .get(
            "/api/billing/subscription/preview?quantity=5",
            Some(&app.token("pia")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["amount_due"], 2400);
    assert_eq!(r.body["currency"], "usd");
    assert_eq!(r.body["next_payment_at"], "2026-12-18T11:06:40Z");
    assert_eq!(r.body["lines"][0]["amount"], 6000);
    assert_eq!(r.body["lines"][1]["amount"], -3600);
    assert!(
        r.body["lines"][0]["description"]
            .as_str()
            .unwrap()
            .contains("5 × Team")
    );
    let requests = stripe.received_requests().await.unwrap();
    let previews: Vec<std::collections::HashMap<String, String>> = requests
        .iter()
        .filter(|r| r.url.path() == "/v1/invoices/create_preview")
        .map(|r| form_urlencoded::parse(&r.body).into_owned().collect())
        .collect();
    assert_eq!(previews.len(), 1);
    assert_eq!(previews[0]["customer"], "cus_pia");
    assert_eq!(previews[0]["subscription"], "sub_pv_pia");
    assert_eq!(previews[0]["subscription_details[items][0][id]"], "si_pia");
    assert_eq!(previews[0]["subscription_details[items][0][price]"], TEAM);
    // Nothing changed: no update reached Stripe, and the account reads the same.
    assert!(
        requests.iter().all(
            |r| !(r.method.as_str() == "POST" && r.url.path().starts_with("/v1/subscriptions"))
        )
    );
    assert_eq!(
        held.get("sub_pv_pia").unwrap()["items"]["data"][0]["quantity"],
        3
    );
    assert_eq!(app.account("pia").await, before);
}

#[tokio::test]
async fn a_preview_follows_the_switch_rules_and_never_reaches_another_users_subscription() {
    let stripe = fake_stripe("cs_test_pv_2").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/invoices/create_preview"))
        .respond_with(preview_answer)
        .mount(&stripe)
        .await;
    let app = spawn(&stripe).await;
    subscribe(
        &app,
        &held,
        "quin",
        "sub_pv_quin",
        "pro_monthly",
        MONTHLY,
        1,
    )
    .await;
    let quin = app.token("quin");
    let cases = [
        (
            app.token("rex"),
            "?plan_id=team_monthly&quantity=2",
            404,
            "no_subscription",
        ),
        // Naming someone else's subscription is not a parameter of the route.
        (
            app.token("rex"),
            "?plan_id=team_monthly&subscription=sub_pv_quin",
            404,
            "no_subscription",
        ),
        (quin.clone(), "?quantity=2", 400, "quantity_not_allowed"),
        (
            quin.clone(),
            "?plan_id=team_monthly&quantity=51",
            400,
            "invalid_quantity",
        ),
        (
            quin.clone(),
            "?plan_id=team_monthly&quantity=two",
            400,
            "invalid_request",
        ),
        (quin.clone(), "?plan_id=nope", 400, "unknown_plan"),
        (quin.clone(), "", 400, "invalid_request"),
    ];
    for (token, query, status, code) in cases {
        let r = app
            .get(
                &format!("/api/billing/subscription/preview{query}"),
                Some(&token),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{query}: {}",
            r.body
        );
    }
    let asked = stripe.received_requests().await.unwrap();
    assert!(
        asked
            .iter()
            .all(|r| r.url.path() != "/v1/invoices/create_preview")
    );
    // A switch to team_monthly previewed by its owner: the owner's customer only.
    let r = app
        .get(
            "/api/billing/subscription/preview?plan_id=team_monthly&quantity=2",
            Some(&quin),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
