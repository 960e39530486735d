//! Money rules against bad faith, round two (issue 23), end to end through the local stack:
//! each test is named after the attack it closes. Referral rewards only for money paid on a
//! subscription, taken back with that charge; Payment Link references only the stack can
//! make; credit packs without promotion codes and never granted for $0.

use billing_testing::{
    checkout_session, event, fake_stripe, object, subscription, subscription_invoice,
};
use black_box_tests::{JWT_SECRET, TestApp};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const T0: i64 = 1_795_000_000;

fn operator() -> String {
    local_stack::auth::token(JWT_SECRET, "ops", None, "openid billing:admin", 600)
}

/// The state the admin list shows for `id`, if listed.
async fn listed_state(app: &TestApp, id: &str) -> Option<String> {
    let r = app
        .get("/api/billing/admin/events?limit=100", Some(&operator()))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["events"]
        .as_array()?
        .iter()
        .find(|e| e["id"] == id)
        .and_then(|e| e["state"].as_str())
        .map(str::to_owned)
}

/// Waits until every event in `ids` is settled (processed, or unclaimed).
async fn settled(app: &TestApp, ids: &[&str]) {
    for id in ids {
        app.eventually(&format!("{id} settled"), || async {
            matches!(
                listed_state(app, id).await.as_deref(),
                Some("processed" | "unclaimed")
            )
        })
        .await;
    }
}

/// `buyer` claims `referrer`'s referral code.
async fn referred(app: &TestApp, referrer: &str, buyer: &str) {
    let code = app.account(referrer).await["referral"]["code"]
        .as_str()
        .expect("every account has a code")
        .to_owned();
    let r = app
        .post_json(
            "/api/billing/referral",
            Some(&app.token(buyer)),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Whether `user` holds referral days now: `credit_until` in the future.
async fn rewarded(app: &TestApp, user: &str) -> bool {
    let until = app.account(user).await["credit_until"].clone();
    until
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t > chrono::Utc::now())
}

async fn deliver(app: &TestApp, id: &str, kind: &str, at: i64, object: Value) {
    let r = app.deliver(&event(id, kind, at, object)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

fn paid_by(invoice: &mut Value, id: &str, pi: &str) {
    invoice["payments"] = json!({ "object": "list", "data": [{ "object": "invoice_payment",
        "invoice": id, "status": "paid",
        "payment": { "type": "payment_intent", "payment_intent": pi } }] });
}

fn full_refund(pi: &str, amount: i64) -> Value {
    object(
        "charge",
        json!({ "id": format!("ch_{pi}"), "payment_intent": pi, "amount": amount,
                "amount_refunded": amount }),
    )
}

/// A subscription checkout as Stripe completes it: no PaymentIntent on the session.
fn subscription_checkout(sid: &str, user: &str, plan: &str, status: &str, amount: i64) -> Value {
    let mut s = checkout_session(sid, user, plan, status, amount);
    s["payment_intent"] = Value::Null;
    s["subscription"] = format!("sub_{user}").into();
    s
}

#[tokio::test]
async fn a_100_percent_off_first_month_earns_no_referral_reward() {
    let app = TestApp::spawn().await;
    referred(&app, "r2_free_ref", "r2_free").await;
    let sub = "sub_r2_free";
    let session = subscription_checkout(
        "cs_test_r2_free",
        "r2_free",
        "pro_monthly",
        "no_payment_required",
        0,
    );
    deliver(
        &app,
        "evt_r2f_cs",
        "checkout.session.completed",
        T0,
        session,
    )
    .await;
    let active = subscription(sub, "r2_free", "pro_monthly", "active", T0 + 2_600_000);
    deliver(
        &app,
        "evt_r2f_sub",
        "customer.subscription.created",
        T0 + 1,
        active,
    )
    .await;
    let invoice = subscription_invoice(
        "in_r2_free",
        sub,
        "r2_free",
        "price_r2",
        "subscription_create",
        0,
    );
    deliver(&app, "evt_r2f_inv", "invoice.paid", T0 + 2, invoice).await;
    settled(&app, &["evt_r2f_cs", "evt_r2f_sub", "evt_r2f_inv"]).await;
    assert_eq!(
        app.account("r2_free").await["subscription"]["status"],
        "active"
    );
    assert!(!rewarded(&app, "r2_free").await, "no money was paid");
    assert!(!rewarded(&app, "r2_free_ref").await, "no money was paid");
}

#[tokio::test]
async fn a_trial_plans_reward_goes_when_its_first_real_charge_is_refunded() {
    let app = TestApp::spawn().await;
    referred(&app, "r2_trial_ref", "r2_trial").await;
    let sub = "sub_r2_trial";
    let trialing = subscription(sub, "r2_trial", "pro_annual", "trialing", T0 + 1_209_600);
    deliver(
        &app,
        "evt_r2t_sub",
        "customer.subscription.created",
        T0,
        trialing,
    )
    .await;
    let trial_invoice = subscription_invoice(
        "in_r2_t1",
        sub,
        "r2_trial",
        "price_r2",
        "subscription_create",
        0,
    );
    deliver(&app, "evt_r2t_inv1", "invoice.paid", T0 + 1, trial_invoice).await;
    settled(&app, &["evt_r2t_sub", "evt_r2t_inv1"]).await;
    assert!(
        !rewarded(&app, "r2_trial").await,
        "a $0 trial invoice earns nothing"
    );

    let active = subscription(sub, "r2_trial", "pro_annual", "active", T0 + 33_000_000);
    deliver(
        &app,
        "evt_r2t_act",
        "customer.subscription.updated",
        T0 + 1_209_600,
        active,
    )
    .await;
    let mut cycle = subscription_invoice(
        "in_r2_t2",
        sub,
        "r2_trial",
        "price_r2",
        "subscription_cycle",
        29000,
    );
    paid_by(&mut cycle, "in_r2_t2", "pi_r2_t2");
    deliver(&app, "evt_r2t_inv2", "invoice.paid", T0 + 1_209_601, cycle).await;
    app.eventually("the first money paid earns the reward", || async {
        rewarded(&app, "r2_trial").await && rewarded(&app, "r2_trial_ref").await
    })
    .await;

    let refund = full_refund("pi_r2_t2", 29000);
    deliver(
        &app,
        "evt_r2t_ref",
        "charge.refunded",
        T0 + 1_300_000,
        refund,
    )
    .await;
    settled(&app, &["evt_r2t_ref"]).await;
    assert!(!rewarded(&app, "r2_trial").await, "refunded: taken back");
    assert!(
        !rewarded(&app, "r2_trial_ref").await,
        "refunded: taken back"
    );
}

#[tokio::test]
async fn a_subscription_checkout_alone_earns_no_referral_reward_and_its_refunded_first_charge_takes_it_back()
 {
    let app = TestApp::spawn().await;
    referred(&app, "r2_cs_ref", "r2_cs").await;
    let session = subscription_checkout("cs_test_r2_cs", "r2_cs", "pro_monthly", "paid", 2900);
    deliver(
        &app,
        "evt_r2c_cs",
        "checkout.session.completed",
        T0,
        session,
    )
    .await;
    settled(&app, &["evt_r2c_cs"]).await;
    assert!(
        !rewarded(&app, "r2_cs").await,
        "a completed session is no payment the reward can be linked to"
    );
    let mut first = subscription_invoice(
        "in_r2_c1",
        "sub_r2_cs",
        "r2_cs",
        "price_r2",
        "subscription_create",
        2900,
    );
    paid_by(&mut first, "in_r2_c1", "pi_r2_c1");
    deliver(&app, "evt_r2c_inv", "invoice.paid", T0 + 1, first).await;
    app.eventually("the first invoice's money earns it", || async {
        rewarded(&app, "r2_cs").await && rewarded(&app, "r2_cs_ref").await
    })
    .await;
    let dispute = object(
        "dispute",
        json!({ "id": "dp_r2_c1", "amount": 2900, "status": "needs_response",
                "payment_intent": "pi_r2_c1" }),
    );
    deliver(
        &app,
        "evt_r2c_dp",
        "charge.dispute.created",
        T0 + 50,
        dispute,
    )
    .await;
    settled(&app, &["evt_r2c_dp"]).await;
    assert!(
        !rewarded(&app, "r2_cs").await,
        "disputed in full: taken back"
    );
    assert!(
        !rewarded(&app, "r2_cs_ref").await,
        "disputed in full: taken back"
    );
}

#[tokio::test]
async fn referral_farming_with_the_cheapest_pack_rewards_no_one() {
    let app = TestApp::spawn().await;
    referred(&app, "r2_farm_ref", "r2_farm").await;
    let pack = checkout_session("cs_test_r2_farm", "r2_farm", "uses_20", "paid", 500);
    deliver(&app, "evt_r2_farm", "checkout.session.completed", T0, pack).await;
    app.eventually("the pack is granted", || async {
        app.account("r2_farm").await["credits"]["balance"] == 20
    })
    .await;
    settled(&app, &["evt_r2_farm"]).await;
    assert!(
        !rewarded(&app, "r2_farm").await,
        "a credit pack earns no reward"
    );
    assert!(
        !rewarded(&app, "r2_farm_ref").await,
        "a credit pack earns no reward"
    );
    assert_eq!(app.account("r2_farm_ref").await["tier"], "free");
}

/// A stack whose `credits_starter` sells through a Payment Link (and whose fake Stripe
/// answers the line items of `session`).
async fn payment_link_stack(session: &str) -> (wiremock::MockServer, TestApp) {
    let stripe = fake_stripe("cs_test_unused").await;
    let items = json!({ "object": "list", "has_more": false, "data": [
        object("item", json!({ "price": { "id": "price_link_starter" }, "quantity": 1 }))
    ]});
    Mock::given(method("GET"))
        .and(path(format!("/v1/checkout/sessions/{session}/line_items")))
        .respond_with(ResponseTemplate::new(200).set_body_json(items))
        .mount(&stripe)
        .await;
    let base = stripe.uri();
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_link"),
        ("STRIPE_API_BASE", &base),
        ("STRIPE_PRICES", "credits_starter=price_link_starter"),
        // `uses_20` sells only through a Payment Link: the checkout route hands out its
        // link with the caller's reference (a reference names an account, not a plan).
        ("STRIPE_LINK_USES_20", "https://buy.stripe.com/test_uses"),
    ])
    .await;
    (stripe, app)
}

/// A session completed through a Payment Link: no metadata of ours, the reference the
/// buyer's URL carried, the buyer's own customer.
fn link_session(sid: &str, reference: &str, customer: &str) -> Value {
    let mut session = checkout_session(sid, "unused", "credits_starter", "paid", 1000);
    session["metadata"] = json!({});
    session["client_reference_id"] = reference.into();
    session["customer"] = customer.into();
    session["payment_link"] = "plink_test_starter".into();
    session
}

#[tokio::test]
async fn a_forged_payment_link_reference_takes_over_no_account() {
    let (_stripe, app) = payment_link_stack("cs_test_r2_forged").await;
    let victim = "auth0|r2-victim";
    // What an attacker can write into a Payment Link's URL: the victim's id, encoded the
    // way references were before they were signed.
    let forged = billing_core::domain::ids::UserId::parse(victim)
        .unwrap()
        .to_reference();
    let session = link_session("cs_test_r2_forged", &forged, "cus_attacker");
    deliver(
        &app,
        "evt_r2_forged",
        "checkout.session.completed",
        T0,
        session,
    )
    .await;
    settled(&app, &["evt_r2_forged"]).await;
    assert_eq!(
        app.account(victim).await["credits"]["balance"],
        0,
        "nothing is granted to the account a forged reference names"
    );
    let portal = app
        .post_json("/api/billing/portal", Some(&app.token(victim)), &json!({}))
        .await;
    assert_eq!(
        (portal.status, portal.body["error"]["code"].as_str()),
        (404, Some("no_customer")),
        "the victim's account is not linked to the attacker's customer"
    );
    assert_eq!(
        listed_state(&app, "evt_r2_forged").await.as_deref(),
        Some("unclaimed"),
        "an operator settles it: grant or refund"
    );
}

#[tokio::test]
async fn a_payment_link_reference_the_stack_handed_out_reaches_its_account() {
    let (_stripe, app) = payment_link_stack("cs_test_r2_signed").await;
    let user = "auth0|r2-buyer";
    let started = app
        .post_json(
            "/api/billing/checkout",
            Some(&app.token(user)),
            &json!({ "plan_id": "uses_20" }),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.body["via"], "payment_link");
    let url = reqwest::Url::parse(started.body["url"].as_str().unwrap()).unwrap();
    let reference = url
        .query_pairs()
        .find(|(k, _)| k == "client_reference_id")
        .map(|(_, v)| v.into_owned())
        .expect("the link carries a reference");
    assert!(
        reference.len() <= 200
            && reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{reference}"
    );
    let session = link_session("cs_test_r2_signed", &reference, "cus_r2_buyer");
    deliver(
        &app,
        "evt_r2_signed",
        "checkout.session.completed",
        T0,
        session,
    )
    .await;
    app.eventually("sold to the account the stack named", || async {
        app.account(user).await["credits"]["balance"] == 1000
    })
    .await;
}

#[tokio::test]
async fn a_100_percent_off_code_on_a_credit_pack_grants_nothing() {
    let app = TestApp::spawn().await;
    let free = checkout_session(
        "cs_test_r2_zero",
        "r2_zero",
        "credits_starter",
        "no_payment_required",
        0,
    );
    deliver(&app, "evt_r2_zero", "checkout.session.completed", T0, free).await;
    settled(&app, &["evt_r2_zero"]).await;
    let account = app.account("r2_zero").await;
    assert_eq!(account["credits"]["balance"], 0, "no money, no credits");
    assert_eq!(account["purchases"], json!([]));
    assert_eq!(
        listed_state(&app, "evt_r2_zero").await.as_deref(),
        Some("unclaimed"),
        "listed for an operator, who may grant it"
    );
}

#[tokio::test]
async fn credit_pack_checkouts_offer_no_promotion_codes() {
    let stripe = fake_stripe("cs_test_r2_codes").await;
    let base = stripe.uri();
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_codes"),
        ("STRIPE_API_BASE", &base),
        ("STRIPE_PRICE_USES_20", "price_r2_uses"),
        ("STRIPE_PRICE_PRO_MONTHLY", "price_r2_pro"),
    ])
    .await;
    for plan in ["uses_20", "pro_monthly"] {
        let r = app
            .post_json(
                "/api/billing/checkout",
                Some(&app.token(&format!("r2_codes_{plan}"))),
                &json!({ "plan_id": plan }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let forms: Vec<String> = stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/checkout/sessions" && r.method.as_str() == "POST")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    let pack = forms.iter().find(|f| f.contains("price_r2_uses")).unwrap();
    let sub = forms.iter().find(|f| f.contains("price_r2_pro")).unwrap();
    assert!(!pack.contains("allow_promotion_codes=true"), "{pack}");
    assert!(sub.contains("allow_promotion_codes=true"), "{sub}");
}
