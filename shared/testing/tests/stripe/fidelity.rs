//! The fake Stripe holds requests to Stripe's own parameter definitions (the `stripe`
//! package's `stripe.params`, walked by infra/stripe_params.py): what Stripe would refuse,
//! the fake refuses first, with Stripe's error, whatever a test mounted.

use billing_core::stripe::api::Form;
use billing_testing::fake_stripe;
use billing_testing::stripe_definitions::definitions;

/// Raw requests to the fake Stripe, spelt as a test chooses (right or wrong): the port's
/// adapter can only send what it was built to send.
struct RawStripe {
    _server: wiremock::MockServer,
    base: String,
    http: reqwest::Client,
}

/// Stripe's status, code and message for a refused request.
type Refusal = (u16, Option<String>, String);

impl RawStripe {
    async fn start() -> Self {
        let server = fake_stripe("cs_test_fidelity").await;
        Self {
            base: server.uri(),
            _server: server,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, form: &Form, key: &str) -> Result<serde_json::Value, Refusal> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.encode());
        answer(request).await
    }

    async fn get(&self, path: &str, query: &Form) -> Result<serde_json::Value, Refusal> {
        let request = self
            .http
            .get(format!("{}{path}?{}", self.base, query.encode()));
        answer(request).await
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Result<serde_json::Value, Refusal> {
    let response = request
        .bearer_auth("sk_test_fidelity")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let error = &body["error"];
    Err((
        status,
        error["code"].as_str().map(str::to_owned),
        error["message"].as_str().unwrap_or_default().to_owned(),
    ))
}

fn form(pairs: &[(&str, &str)]) -> Form {
    let mut f = Form::new();
    for (k, v) in pairs {
        f.push(*k, v);
    }
    f
}

fn refusal(result: Result<serde_json::Value, Refusal>) -> Refusal {
    match result {
        Err(refused) => refused,
        Ok(answer) => panic!("expected Stripe to refuse, got {answer}"),
    }
}

const SESSION: &[(&str, &str)] = &[
    ("mode", "payment"),
    ("line_items[0][price]", "price_1"),
    ("line_items[0][quantity]", "1"),
    ("success_url", "https://app.example.com/ok"),
    ("metadata[user_id]", "u_1"),
];

const SESSIONS: &str = "/v1/checkout/sessions";

#[tokio::test]
async fn a_misspelt_parameter_is_refused_with_parameter_unknown_as_stripe_answers() {
    let stripe = RawStripe::start().await;
    let mut pairs = SESSION.to_vec();
    pairs.push(("line_items[0][pricee]", "price_1"));
    let (status, code, message) = refusal(
        stripe
            .post(SESSIONS, &form(&pairs), "fidelity-misspelt")
            .await,
    );
    assert_eq!((status, code.as_deref()), (400, Some("parameter_unknown")));
    assert_eq!(message, "Received unknown parameter: line_items[0][pricee]");
    // The same form spelt right is taken: the refusal was the misspelling, nothing else.
    let created = stripe
        .post(SESSIONS, &form(SESSION), "fidelity-right")
        .await
        .unwrap();
    assert_eq!(created["id"], "cs_test_fidelity");
}

#[tokio::test]
async fn a_top_level_parameter_stripe_does_not_define_is_refused_on_every_endpoint_kind() {
    let stripe = RawStripe::start().await;
    let posted = stripe
        .post(
            "/v1/refunds",
            &form(&[
                ("payment_intent", "pi_1"),
                ("reasn", "requested_by_customer"),
            ]),
            "fidelity-refund",
        )
        .await;
    let (status, code, message) = refusal(posted);
    assert_eq!((status, code.as_deref()), (400, Some("parameter_unknown")));
    assert!(message.ends_with("reasn"), "{message}");
    // A GET's query is held to the same definitions.
    let listed = stripe
        .get("/v1/events", &form(&[("limit", "10"), ("type[]", "x")]))
        .await;
    assert_eq!(refusal(listed).1.as_deref(), Some("parameter_unknown"));
}

#[tokio::test]
async fn a_value_outside_stripes_enum_or_type_and_a_missing_required_one_are_refused() {
    let stripe = RawStripe::start().await;
    let mut bad_mode = SESSION.to_vec();
    bad_mode[0] = ("mode", "paymnt");
    let (_, code, message) = refusal(
        stripe
            .post(SESSIONS, &form(&bad_mode), "fidelity-enum")
            .await,
    );
    assert_eq!(code.as_deref(), Some("parameter_invalid_enum"), "{message}");
    let mut bad_quantity = SESSION.to_vec();
    bad_quantity[2] = ("line_items[0][quantity]", "one");
    let (_, code, _) = refusal(
        stripe
            .post(SESSIONS, &form(&bad_quantity), "fidelity-int")
            .await,
    );
    assert_eq!(code.as_deref(), Some("parameter_invalid_integer"));
    let (_, code, message) = refusal(
        stripe
            .post(
                "/v1/prices",
                &form(&[("unit_amount", "500")]),
                "fidelity-req",
            )
            .await,
    );
    assert_eq!(code.as_deref(), Some("parameter_missing"));
    assert_eq!(message, "Missing required param: currency.");
}

#[tokio::test]
async fn an_endpoint_stripe_does_not_have_is_refused_as_an_unrecognized_url() {
    let stripe = RawStripe::start().await;
    let (status, _, message) = refusal(
        stripe
            .post("/v1/checkout/session", &form(SESSION), "fidelity-url")
            .await,
    );
    assert_eq!(status, 404);
    assert!(message.starts_with("Unrecognized request URL"), "{message}");
}

#[test]
fn the_definitions_come_from_the_stripe_package_and_name_every_endpoint_with_its_own_parameters() {
    let d = definitions();
    assert!(d.source.contains("stripe package"), "{}", d.source);
    assert_eq!(
        d.route("GET", "/v1/checkout/sessions/cs_1/line_items"),
        Some("/v1/checkout/sessions/{session}/line_items")
    );
    // metadata is free-form; a subscription's metadata is not a session's parameter.
    let sub_only = form(&[
        ("mode", "subscription"),
        ("subscription_data[metadata][plan_id]", "pro"),
        ("subscription_data[trial_period_days]", "14"),
    ]);
    assert!(
        d.check(
            "POST",
            "/v1/checkout/sessions",
            "",
            sub_only.encode().as_bytes()
        )
        .is_ok()
    );
    let wrong_place = form(&[
        ("subscription_data[metadata][plan_id]", "pro"),
        ("trial_period_days", "14"),
    ]);
    let refused = d
        .check(
            "POST",
            "/v1/checkout/sessions",
            "",
            wrong_place.encode().as_bytes(),
        )
        .unwrap_err();
    assert_eq!(refused.code(), Some("parameter_unknown"));
    assert_eq!(refused.body["error"]["param"], "trial_period_days");
}

#[tokio::test]
async fn a_replay_of_an_event_too_large_to_keep_fetches_it_from_stripe_through_the_checker() {
    use billing_core::domain::ids::{EventId, UserId};
    use billing_core::usecases::account::account;
    use billing_core::usecases::admin::{ReplayRequest, replay};
    use billing_core::usecases::intake::{self, VerifiedEvent};
    use billing_testing::{checkout_session, event, memory_services};

    let server = fake_stripe("cs_test_unused").await;
    let base = server.uri();
    let services = memory_services(&[
        ("STRIPE_SECRET_KEY", "sk_test_large"),
        ("STRIPE_API_BASE", base.as_str()),
    ]);
    let mut session = checkout_session("cs_test_large", "lara", "credits_starter", "paid", 1000);
    // Stripe's own event, padded past what the store keeps of a payload (64 KiB).
    session["metadata"]["note"] = "x".repeat(70 * 1024).into();
    let large = event(
        "evt_large_1",
        "checkout.session.completed",
        1_795_000_000,
        session,
    );
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/v1/events/evt_large_1"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(large.clone()))
        .mount(&server)
        .await;
    let raw = large.to_string();
    intake::record(
        &services,
        VerifiedEvent {
            id: EventId::parse("evt_large_1").unwrap(),
            event: serde_json::from_str(&raw).unwrap(),
            raw,
        },
    )
    .await
    .unwrap();

    let replayed = replay(
        &services,
        ReplayRequest {
            event: billing_core::domain::ids::EventId::parse("evt_large_1").unwrap(),
        },
    )
    .await
    .unwrap();
    assert_eq!(replayed.state, "processed", "{replayed:?}");
    let lara = UserId::parse("lara").unwrap();
    assert_eq!(
        account(&services, &lara).await.unwrap().credits.balance,
        1000
    );
    let fetched = server.received_requests().await.unwrap();
    assert!(
        fetched
            .iter()
            .any(|r| r.url.path() == "/v1/events/evt_large_1")
    );
}
