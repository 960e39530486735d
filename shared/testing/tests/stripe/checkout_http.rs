//! Checkout through the HTTP adapter against the strict fake Stripe (wiremock), answering
//! with Stripe's official fixture objects: the exact form Stripe receives for a checkout,
//! the headers of every POST, and how the adapter treats Stripe's failures (what it retries,
//! with which key, what it shows). The core's own checkout rules are tested on the in-memory
//! Stripe (shared/tests/core/checkout.rs).

use billing_core::app::Services;
use billing_core::domain::ids::{PlanId, UserId};
use billing_core::inbound::http::ApiError;
use billing_core::stripe::api::{
    CreatedSession, HttpStripe, NewCheckout, RetryPolicy, STRIPE_VERSION, StripeApi, StripeError,
};
use billing_core::usecases::checkout::{self, StartCheckout};
use billing_testing::caller;
use billing_testing::{fake_stripe, memory_services};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sk_test_fake_key_123";

fn services(server: &MockServer, extra: &[(&str, &str)]) -> Services {
    let base = server.uri();
    let mut vars = vec![
        ("STRIPE_SECRET_KEY", KEY),
        ("STRIPE_API_BASE", base.as_str()),
        ("PUBLIC_BASE_URL", "https://app.example.com"),
        ("STRIPE_PRICE_CREDITS_STARTER", "price_starter"),
        ("STRIPE_PRICE_RETAINER", "price_retainer"),
        ("STRIPE_PRICE_PRO_ANNUAL", "price_annual"),
        ("STRIPE_PRICE_HOURLY_1H", "price_hourly"),
    ];
    vars.extend_from_slice(extra);
    memory_services(&vars)
}

fn request(plan: &str) -> StartCheckout {
    StartCheckout {
        plan: PlanId::parse(plan).unwrap(),
        quantity: None,
        success_path: None,
        cancel_path: None,
    }
}

async fn sent(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

fn form_of(req: &Request) -> BTreeMap<String, String> {
    form_urlencoded::parse(&req.body).into_owned().collect()
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_credit_pack_checkout_sends_exactly_these_parameters() {
    let server = fake_stripe("cs_test_fake_1").await;
    let s = services(&server, &[]);
    let mut req = request("credits_starter");
    req.quantity = Some(2);
    req.success_path = Some("/done?tab=credits".into());
    let out = checkout::start_checkout(&s, &caller("alice", Some("alice@example.com")), req, None)
        .await
        .unwrap();
    assert_eq!(
        (out.session_id.as_deref(), out.via),
        (Some("cs_test_fake_1"), "checkout_session")
    );
    let reqs = sent(&server).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        form_of(&reqs[0]),
        expect(&[
            ("mode", "payment"),
            ("line_items[0][price]", "price_starter"),
            ("line_items[0][quantity]", "2"),
            (
                "success_url",
                "https://app.example.com/done?tab=credits&session_id={CHECKOUT_SESSION_ID}"
            ),
            ("cancel_url", "https://app.example.com/billing/cancel"),
            ("client_reference_id", "u64_YWxpY2U"),
            ("metadata[user_id]", "alice"),
            ("metadata[plan_id]", "credits_starter"),
            ("metadata[quantity]", "2"),
            ("payment_intent_data[metadata][user_id]", "alice"),
            ("payment_intent_data[metadata][plan_id]", "credits_starter"),
            ("payment_intent_data[metadata][quantity]", "2"),
            ("customer_creation", "always"),
            ("customer_email", "alice@example.com"),
        ])
    );
}

#[tokio::test]
async fn a_subscription_checkout_puts_our_metadata_on_the_subscription_too() {
    let server = fake_stripe("cs_test_fake_1").await;
    let s = services(&server, &[]);
    checkout::start_checkout(&s, &caller("bob", None), request("retainer"), None)
        .await
        .unwrap();
    assert_eq!(
        form_of(&sent(&server).await[0]),
        expect(&[
            ("mode", "subscription"),
            ("line_items[0][price]", "price_retainer"),
            ("line_items[0][quantity]", "1"),
            (
                "success_url",
                "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}"
            ),
            ("cancel_url", "https://app.example.com/billing/cancel"),
            ("client_reference_id", "u64_Ym9i"),
            ("allow_promotion_codes", "true"),
            ("metadata[user_id]", "bob"),
            ("metadata[plan_id]", "retainer"),
            ("metadata[quantity]", "1"),
            ("subscription_data[metadata][user_id]", "bob"),
            ("subscription_data[metadata][plan_id]", "retainer"),
        ])
    );
}

#[tokio::test]
async fn a_known_customers_checkout_names_the_customer_and_neither_the_email_nor_a_new_customer() {
    let server = fake_stripe("cs_test_fake_1").await;
    let s = services(&server, &[]);
    let user = UserId::parse("dave").unwrap();
    s.table
        .update(
            &billing_core::store::records::profile::key(&user),
            vec![billing_core::store::Op::set("customer_id", "cus_dave")],
            None,
        )
        .await
        .unwrap();
    let who = caller("dave", Some("dave@example.com"));
    checkout::start_checkout(&s, &who, request("hourly_1h"), None)
        .await
        .unwrap();
    let form = form_of(&sent(&server).await[0]);
    assert_eq!(form.get("customer").map(String::as_str), Some("cus_dave"));
    assert!(
        !form.contains_key("customer_email") && !form.contains_key("customer_creation"),
        "{form:?}"
    );
}

#[tokio::test]
async fn every_post_carries_the_key_the_pinned_version_and_an_idempotency_key() {
    let server = fake_stripe("cs_test_fake_1").await;
    let s = services(&server, &[]);
    let who = caller("erin", None);
    checkout::start_checkout(&s, &who, request("credits_starter"), Some("client-key-1"))
        .await
        .unwrap();
    checkout::start_checkout(&s, &who, request("credits_starter"), Some("client-key-1"))
        .await
        .unwrap();
    checkout::start_checkout(&s, &who, request("credits_starter"), None)
        .await
        .unwrap();
    let reqs = sent(&server).await;
    let header = |r: &Request, n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    for r in &reqs {
        assert_eq!(header(r, "authorization"), Some(format!("Bearer {KEY}")));
        assert_eq!(header(r, "stripe-version").as_deref(), Some(STRIPE_VERSION));
        assert_eq!(
            header(r, "content-type").as_deref(),
            Some("application/x-www-form-urlencoded")
        );
    }
    let keys: Vec<String> = reqs
        .iter()
        .map(|r| header(r, "idempotency-key").unwrap())
        .collect();
    assert_eq!(
        keys[0], keys[1],
        "the caller's own key makes the same Stripe key"
    );
    assert_ne!(keys[0], keys[2]);
}

async fn failing_stripe(
    status: u16,
    body: serde_json::Value,
    extra: Option<(&str, &str)>,
) -> (MockServer, HttpStripe) {
    let server = billing_testing::strict_stripe().await;
    let mut resp = ResponseTemplate::new(status).set_body_json(body);
    if let Some((k, v)) = extra {
        resp = resp.insert_header(k, v);
    }
    Mock::given(method("POST"))
        .respond_with(resp)
        .mount(&server)
        .await;
    let policy = RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(10),
        request_timeout: Duration::from_millis(300),
    };
    let client = HttpStripe::new(&server.uri(), KEY.to_owned().into(), policy);
    (server, client)
}

/// One Checkout Session of a credit pack, created through `client` under `key`.
async fn one_checkout(client: &HttpStripe, key: &str) -> Result<CreatedSession, StripeError> {
    let config = billing_testing::config(&[("STRIPE_PRICE_CREDITS_STARTER", "price_starter")]);
    let plan = config
        .catalog
        .get(&billing_core::domain::ids::PlanId::parse("credits_starter").unwrap())
        .unwrap();
    let user = UserId::parse("u_retry").unwrap();
    let checkout = NewCheckout {
        plan,
        price_id: "price_starter",
        quantity: 1,
        user: &user,
        email: None,
        customer: None,
        success_url: "https://app.example.com/billing/success".into(),
        cancel_url: "https://app.example.com/billing/cancel".into(),
        trial_days: None,
        automatic_tax: false,
    };
    client.create_checkout(&checkout, key).await
}

fn stripe_error(kind: &str, message: &str) -> serde_json::Value {
    json!({ "error": { "type": kind, "code": "resource_missing", "message": message } })
}

#[tokio::test]
async fn a_stripe_400_is_not_retried_and_its_internal_message_is_not_shown() {
    let (server, client) = failing_stripe(
        400,
        stripe_error("invalid_request_error", "No such price: 'price_secret_123'"),
        None,
    )
    .await;
    let err = one_checkout(&client, "k").await.unwrap_err();
    assert_eq!(sent(&server).await.len(), 1);
    let api = ApiError::from(err);
    assert_eq!((api.status, api.code), (502, "stripe_error"));
    assert!(!api.message.contains("price_secret_123"), "{}", api.message);
}

#[tokio::test]
async fn a_card_error_passes_stripes_user_facing_message() {
    let (_server, client) = failing_stripe(
        402,
        stripe_error("card_error", "Your card was declined."),
        None,
    )
    .await;
    let api = ApiError::from(one_checkout(&client, "k").await.unwrap_err());
    assert_eq!(
        (api.status, api.message.as_str()),
        (502, "Your card was declined.")
    );
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_with_the_same_idempotency_key() {
    for status in [429, 500, 409] {
        let (server, client) =
            failing_stripe(status, stripe_error("api_error", "try later"), None).await;
        assert!(one_checkout(&client, "same-key").await.is_err());
        let reqs = sent(&server).await;
        assert_eq!(reqs.len(), 3, "{status}: one try and two retries");
        assert!(
            reqs.iter()
                .all(|r| r.headers.get("idempotency-key").unwrap() == "same-key")
        );
    }
}

#[tokio::test]
async fn stripe_should_retry_false_stops_retries() {
    let (server, client) = failing_stripe(
        500,
        stripe_error("api_error", "x"),
        Some(("Stripe-Should-Retry", "false")),
    )
    .await;
    assert!(one_checkout(&client, "k").await.is_err());
    assert_eq!(sent(&server).await.len(), 1);
}

#[tokio::test]
async fn a_retry_that_succeeds_returns_the_session() {
    let server = billing_testing::strict_stripe().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_json(stripe_error("api_error", "x")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cs_test_r", "url": "https://x"})),
        )
        .mount(&server)
        .await;
    let policy = RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(10),
        request_timeout: Duration::from_secs(2),
    };
    let client = HttpStripe::new(&server.uri(), KEY.to_owned().into(), policy);
    assert_eq!(one_checkout(&client, "k").await.unwrap().id, "cs_test_r");
}

#[tokio::test]
async fn a_timeout_and_a_malformed_body_are_typed_errors() {
    let server = billing_testing::strict_stripe().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cs_test_slow"}))
                .set_delay(Duration::from_millis(800)),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>not json</html>"))
        .mount(&server)
        .await;
    let policy = RetryPolicy {
        max_retries: 1,
        base_delay: Duration::from_millis(10),
        request_timeout: Duration::from_millis(200),
    };
    let client = HttpStripe::new(&server.uri(), KEY.to_owned().into(), policy);
    assert_eq!(
        one_checkout(&client, "k").await.unwrap_err(),
        StripeError::Timeout
    );
    assert!(matches!(
        client
            .create_portal_session("cus_1", "https://app.example.com/billing", "k")
            .await,
        Err(StripeError::Decode(_))
    ));
}
