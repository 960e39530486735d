//! Overage to Stripe Meters, black-box: units of a `stripe_meter` feature beyond the
//! allowance are allowed and reported to Stripe (`POST /v1/billing/meter_events`) after the
//! track commits, through the table's stream, the queue and the worker; once per usage key;
//! retried while Stripe refuses, and listed `failed` once the message leaves the queue. A
//! subscription checkout of the metered plan carries its metered price.
//!
//! The default catalog's `api_monthly` grants `calls` (10,000 a period, then the
//! `api_calls` meter).

use billing_core::domain::features::FeatureId;
use billing_core::domain::ids::UserId;
use billing_core::store::records::meter_report;
use billing_testing::{FakeSubscriptions, event, fake_stripe, fixture, subscription};
use black_box_tests::{JWT_SECRET, TestApp};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const T0: i64 = 1_795_000_000;
const PRICE: &str = "price_api_monthly";
const METERED: &str = "price_api_calls_metered";
const METER_EVENTS: &str = "/v1/billing/meter_events";

async fn spawn(stripe: &MockServer) -> TestApp {
    TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_meters"),
        ("STRIPE_API_BASE", &stripe.uri()),
        ("STRIPE_PRICE_API_MONTHLY", PRICE),
        ("STRIPE_PRICE_API_MONTHLY_METERED", METERED),
    ])
    .await
}

/// Stripe takes every meter event (its fixture's answer).
async fn meter_accepts(stripe: &MockServer) {
    Mock::given(method("POST"))
        .and(path(METER_EVENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("billing.meter_event")))
        .mount(stripe)
        .await;
}

/// `user` (customer `cus_<user>`) holds an active `api_monthly` subscription, applied.
async fn subscribe(app: &TestApp, held: &FakeSubscriptions, user: &str) {
    let sub_id = format!("sub_meter_{user}");
    let mut sub = subscription(&sub_id, user, "api_monthly", "active", T0 + 2_592_000);
    sub["items"]["data"][0]["price"]["id"] = PRICE.into();
    held.put(&sub);
    app.deliver(&event(
        &format!("evt_{sub_id}"),
        "customer.subscription.created",
        T0,
        sub,
    ))
    .await;
    app.eventually("subscribed", || async {
        app.account(user).await["subscription"]["id"] == sub_id.as_str()
    })
    .await;
}

async fn track(app: &TestApp, user: &str, units: i64, key: &str) -> (u16, Value) {
    let r = app
        .post_json(
            "/api/billing/features/calls/usage",
            Some(&app.token(user)),
            &json!({ "units": units, "idempotency_key": key }),
        )
        .await;
    (r.status, r.body)
}

/// The meter events Stripe received (and its checker let through), as their forms.
async fn meter_events(stripe: &MockServer) -> Vec<HashMap<String, String>> {
    stripe
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == METER_EVENTS)
        .map(|r| form_urlencoded::parse(&r.body).into_owned().collect())
        .collect()
}

/// The identifier of `user`'s track under `key`, committed at the `timestamp` its meter
/// event names.
fn identifier(user: &str, key: &str, sent: &HashMap<String, String>) -> String {
    meter_report::identifier(
        &UserId::parse(user).unwrap(),
        &FeatureId::parse("calls").unwrap(),
        key,
        sent["timestamp"].parse().expect("a timestamp in seconds"),
    )
}

fn operator() -> String {
    local_stack::auth::token(JWT_SECRET, "ops", None, "openid billing:admin", 600)
}

/// The report's record as the admin list shows it (any state), if listed.
async fn listed(app: &TestApp, id: &str) -> Option<Value> {
    let r = app
        .get("/api/billing/admin/events?limit=200", Some(&operator()))
        .await;
    r.body["events"]
        .as_array()?
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
}

/// Polls `probe` for up to `secs` (reports wait for the stream, the queue and retries).
async fn within<F, Fut>(secs: u64, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !probe().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn overage_units_are_reported_once_with_the_identifier_from_the_usage_key_and_units_inside_the_allowance_send_nothing()
 {
    let stripe = fake_stripe("cs_test_meter_unused").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    meter_accepts(&stripe).await;
    let app = spawn(&stripe).await;
    subscribe(&app, &held, "mia").await;

    // The whole allowance: nothing for Stripe.
    let (status, body) = track(&app, "mia", 10_000, "batch-inside").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["feature"]["remaining"], 0);
    assert_eq!(body["feature"]["overage"], "stripe_meter");

    // Beyond it: allowed, and owed to Stripe.
    let (status, first) = track(&app, "mia", 7, "batch-over").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["allowed"], true);
    // The same key again tracks once and answers the first answer.
    let (status, again) = track(&app, "mia", 7, "batch-over").await;
    assert_eq!((status, &again), (200, &first));

    within(30, "the report reaches Stripe", || async {
        !meter_events(&stripe).await.is_empty()
    })
    .await;
    let report = format!(
        "meter_{}",
        identifier("mia", "batch-over", &meter_events(&stripe).await[0])
    );
    within(30, "the report is processed", || async {
        listed(&app, &report)
            .await
            .is_some_and(|e| e["state"] == "processed")
    })
    .await;
    let sent = meter_events(&stripe).await;
    assert_eq!(sent.len(), 1, "one meter event in all: {sent:?}");
    let expected: HashMap<String, String> = [
        ("event_name", "api_calls".to_owned()),
        ("payload[stripe_customer_id]", "cus_mia".to_owned()),
        ("payload[value]", "7".to_owned()),
        ("identifier", identifier("mia", "batch-over", &sent[0])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (name, value) in &expected {
        assert_eq!(sent[0].get(name), Some(value), "{name} in {:?}", sent[0]);
    }
    let listed = listed(&app, &report).await.unwrap();
    assert_eq!(listed["type"], meter_report::KIND);
}

#[tokio::test]
async fn a_report_stripe_refuses_stays_queued_and_retried_and_after_the_last_receive_is_listed_failed()
 {
    let stripe = fake_stripe("cs_test_meter_unused_2").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    Mock::given(method("POST"))
        .and(path(METER_EVENTS))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({ "error": {
            "type": "api_error", "message": "Stripe is unavailable" } })))
        .mount(&stripe)
        .await;
    let app = spawn(&stripe).await;
    subscribe(&app, &held, "noa").await;
    let (status, body) = track(&app, "noa", 10_003, "big-batch").await;
    assert_eq!(status, 200, "{body}");

    within(20, "a second delivery of the report", || async {
        meter_events(&stripe).await.len() >= 6
    })
    .await;
    let report = format!(
        "meter_{}",
        identifier("noa", "big-batch", &meter_events(&stripe).await[0])
    );
    let pending = listed(&app, &report).await.expect("listed");
    assert!(
        pending["state"] == "queued" || pending["state"] == "failed",
        "{pending}"
    );
    within(
        60,
        "the report listed failed after its last receive",
        || async {
            listed(&app, &report).await.is_some_and(|e| {
                e["state"] == "failed" && e["error"].as_str().unwrap_or("").contains("Stripe")
            }) && app.queue_depth("FulfilmentQueue", true).await == 0
        },
    )
    .await;
    assert_eq!(app.queue_depth("FulfilmentDeadLetterQueue", false).await, 1);
    let tries = meter_events(&stripe).await;
    assert!(
        tries.len() >= 5,
        "retried on every receive: {}",
        tries.len()
    );
    assert!(
        tries
            .iter()
            .all(|f| f.get("payload[value]").map(String::as_str) == Some("3")),
        "each try is the same report: {tries:?}"
    );
    assert!(
        tries
            .iter()
            .all(|f| f["identifier"] == tries[0]["identifier"]),
        "each try carries the same identifier: {tries:?}"
    );
}

#[tokio::test]
async fn a_subscription_checkout_for_the_metered_plan_sends_its_metered_price_as_a_second_line() {
    let stripe = fake_stripe("cs_test_meter_checkout").await;
    let app = spawn(&stripe).await;
    let r = app
        .post_json(
            "/api/billing/checkout",
            Some(&app.token("oli")),
            &json!({ "plan_id": "api_monthly" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sessions: Vec<HashMap<String, String>> = stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/checkout/sessions")
        .map(|r| form_urlencoded::parse(&r.body).into_owned().collect())
        .collect();
    assert_eq!(sessions.len(), 1);
    let form = &sessions[0];
    assert_eq!(form["line_items[0][price]"], PRICE);
    assert_eq!(form["line_items[0][quantity]"], "1");
    assert_eq!(form["line_items[1][price]"], METERED);
    assert!(
        !form.contains_key("line_items[1][quantity]"),
        "Stripe takes no quantity for a metered price: {form:?}"
    );
}

/// The Idempotency-Key of each meter event Stripe received, in order.
async fn meter_event_keys(stripe: &MockServer) -> Vec<String> {
    stripe
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == METER_EVENTS)
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_report_whose_answer_was_lost_then_refused_is_sent_again_with_the_same_identifier_until_stripe_takes_it_and_never_after()
 {
    let stripe = fake_stripe("cs_test_meter_unused_3").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    // Stripe takes the first request but its answer never arrives in time (the worker's
    // client gives up after 2.5 s: a crash between Stripe's commit and ours), then refuses
    // one, then takes them.
    Mock::given(method("POST"))
        .and(path(METER_EVENTS))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture("billing.meter_event"))
                .set_delay(Duration::from_secs(4)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path(METER_EVENTS))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({ "error": {
            "type": "api_error", "message": "Stripe is unavailable" } })))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&stripe)
        .await;
    meter_accepts(&stripe).await;
    let app = spawn(&stripe).await;
    subscribe(&app, &held, "lou").await;
    let (status, body) = track(&app, "lou", 10_007, "lost-answer").await;
    assert_eq!(status, 200, "{body}");

    within(40, "a third try reaches Stripe", || async {
        meter_events(&stripe).await.len() >= 3
    })
    .await;
    let sent = meter_events(&stripe).await;
    let id = identifier("lou", "lost-answer", &sent[0]);
    let report = format!("meter_{id}");
    within(30, "the report is processed", || async {
        listed(&app, &report)
            .await
            .is_some_and(|e| e["state"] == "processed")
    })
    .await;
    // Past the queue's visibility timeout: nothing is sent again once Stripe took it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sent = meter_events(&stripe).await;
    assert_eq!(sent.len(), 3, "lost, refused, taken: {sent:?}");
    for form in &sent {
        assert_eq!(
            (
                form.get("identifier"),
                form.get("payload[value]").map(String::as_str)
            ),
            (Some(&id), Some("7")),
            "every try is the same report, which Stripe counts once: {form:?}"
        );
    }
    assert_eq!(
        meter_event_keys(&stripe).await,
        vec![id.clone(); 3],
        "every try under the identifier as its Idempotency-Key"
    );
}

#[tokio::test]
async fn a_processed_report_replayed_by_an_operator_or_delivered_again_by_the_queue_sends_nothing_more()
 {
    let stripe = fake_stripe("cs_test_meter_unused_4").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    meter_accepts(&stripe).await;
    let app = spawn(&stripe).await;
    subscribe(&app, &held, "pam").await;
    let (status, body) = track(&app, "pam", 10_005, "once-only").await;
    assert_eq!(status, 200, "{body}");
    within(30, "the report reaches Stripe", || async {
        !meter_events(&stripe).await.is_empty()
    })
    .await;
    let first = meter_events(&stripe).await.remove(0);
    let id = identifier("pam", "once-only", &first);
    let report = format!("meter_{id}");
    within(30, "the report is processed", || async {
        listed(&app, &report)
            .await
            .is_some_and(|e| e["state"] == "processed")
    })
    .await;

    // An operator replays it: already applied, nothing sent.
    let replayed = app
        .post_json(
            "/api/billing/admin/replay",
            Some(&operator()),
            &json!({ "event_id": report }),
        )
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert_eq!(replayed.body["outcome"], "already_applied");

    // The same message arrives again (a stream record redelivered after the queue's
    // deduplication window): the worker takes it and sends nothing.
    let message = json!({
        "id": report, "object": "event", "type": meter_report::KIND,
        "created": first["timestamp"].parse::<i64>().unwrap(), "livemode": false,
        "data": { "object": meter_report::MeterReport {
            user_id: "pam".into(), feature: "calls".into(), customer: "cus_pam".into(),
            event_name: "api_calls".into(), units: 5, identifier: id.clone(),
            at: first["timestamp"].parse().unwrap(),
        } },
    });
    let sdk =
        local_stack::stack::moto_sdk_config(&local_stack::moto::shared_endpoint().expect("moto"))
            .await;
    aws_sdk_sqs::Client::new(&sdk)
        .send_message()
        .queue_url(
            app.stack.resources.queues["FulfilmentQueue"]
                .url
                .clone()
                .unwrap(),
        )
        .message_body(message.to_string())
        .message_group_id(&report)
        .message_deduplication_id(format!("{report}-again"))
        .send()
        .await
        .expect("sent");
    within(30, "the worker took the message again", || async {
        app.queue_depth("FulfilmentQueue", true).await == 0
    })
    .await;
    assert_eq!(app.queue_depth("FulfilmentDeadLetterQueue", false).await, 0);
    let sent = meter_events(&stripe).await;
    assert_eq!(sent.len(), 1, "one meter event in all: {sent:?}");
    assert_eq!(sent[0].get("payload[value]").map(String::as_str), Some("5"));
}

#[tokio::test]
async fn callers_that_give_up_waiting_and_retry_with_the_same_key_get_one_report_per_key() {
    let stripe = fake_stripe("cs_test_meter_unused_5").await;
    let held = FakeSubscriptions::mount(&stripe).await;
    meter_accepts(&stripe).await;
    let app = spawn(&stripe).await;
    subscribe(&app, &held, "gus").await;
    let (status, body) = track(&app, "gus", 10_000, "inside").await;
    assert_eq!(status, 200, "{body}");
    // Each first call is abandoned after a few milliseconds, before, during or after its
    // commit (the caller never hears); the retry with the same key must answer, and each
    // key's unit must reach Stripe once.
    let keys: Vec<String> = (0..8).map(|i| format!("impatient-{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(1 + 4 * i as u64))
            .build()
            .unwrap();
        let _ = impatient
            .post(app.url("/api/billing/features/calls/usage"))
            .bearer_auth(app.token("gus"))
            .json(&json!({ "units": 1, "idempotency_key": key }))
            .send()
            .await;
        let (status, body) = track(&app, "gus", 1, key).await;
        assert_eq!(
            (status, &body["allowed"]),
            (200, &json!(true)),
            "{key}: {body}"
        );
    }
    let processed = || async {
        let r = app
            .get("/api/billing/admin/events?limit=200", Some(&operator()))
            .await;
        r.body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == meter_report::KIND && e["state"] == "processed")
            .count()
    };
    within(60, "every key's report processed", || async {
        processed().await >= keys.len()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(processed().await, keys.len());
    let sent = meter_events(&stripe).await;
    let mut reported: Vec<&str> = sent
        .iter()
        .map(|form| {
            assert_eq!(form.get("payload[value]").map(String::as_str), Some("1"));
            keys.iter()
                .find(|k| identifier("gus", k, form) == form["identifier"])
                .unwrap_or_else(|| panic!("a report of no key: {form:?}"))
                .as_str()
        })
        .collect();
    reported.sort_unstable();
    assert_eq!(reported, keys, "one report per key: {sent:?}");
}
