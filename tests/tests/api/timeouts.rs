//! Timeouts as Lambda enforces them (API.md, "What runs locally is what runs deployed"): an
//! invocation past its function's `Timeout` in template.yaml is stopped there and changes
//! nothing after that point, and the worker keeps a time budget so that a slow Stripe never
//! leaves an event `queued` once its message has left the queue.

use billing_testing::{checkout_session, event, object, strict_stripe};
use black_box_tests::TestApp;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, ResponseTemplate};

/// template.yaml with `Timeout: seconds` given to the function `logical` (which has none).
fn with_timeout(logical: &str, seconds: u64) -> String {
    let template = local_stack::provision::TEMPLATE;
    let at = template
        .find(&format!("\n  {logical}:\n"))
        .expect("the function is in the template");
    let props =
        at + template[at..].find("\n    Properties:\n").unwrap() + "\n    Properties:\n".len();
    assert!(
        !template[props..props + 400].contains("\n      Timeout:"),
        "{logical} sets its own Timeout already"
    );
    format!(
        "{}      Timeout: {seconds}\n{}",
        &template[..props],
        &template[props..]
    )
}

async fn slow_checkout_stripe(delay: Duration) -> wiremock::MockServer {
    let stripe = strict_stripe().await;
    let session = object(
        "checkout.session",
        json!({ "id": "cs_test_slow", "status": "open", "url": "https://checkout.stripe.com/c/pay/cs_test_slow" }),
    );
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(session)
                .set_delay(delay),
        )
        .mount(&stripe)
        .await;
    stripe
}

const CHECKOUT_ENV: [(&str, &str); 2] = [
    ("STRIPE_SECRET_KEY", "sk_test_slow"),
    ("STRIPE_PRICE_CREDITS_STARTER", "price_slow_starter"),
];

#[tokio::test]
async fn a_checkout_past_its_timeout_answers_503_at_the_deadline_and_records_nothing_after_it() {
    let stripe = slow_checkout_stripe(Duration::from_secs(2)).await;
    let base = stripe.uri();
    let mut env = CHECKOUT_ENV.to_vec();
    env.push(("STRIPE_API_BASE", &base));
    // The checkout function given 1 s; Stripe takes 2 s to create the session.
    let app = TestApp::spawn_from(&env, Some(with_timeout("CheckoutFunction", 1))).await;
    let body = json!({ "plan_id": "credits_starter" });

    let started = Instant::now();
    let r = app
        .post_json("/api/billing/checkout", Some(&app.token("tia")), &body)
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (503, json!({ "message": "Service Unavailable" })),
        "API Gateway's answer for a function that timed out"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "stopped at 1 s, not when Stripe answered"
    );
    // Stripe's answer arrives after the deadline: the stopped invocation records nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.checkout_state("cs_test_slow").await, "unknown");
    assert_eq!(stripe.received_requests().await.unwrap().len(), 1);

    // The same checkout within the template's own Timeout (10 s) records the session: the
    // check above can fail.
    let app = TestApp::spawn_with(&env).await;
    let r = app
        .post_json("/api/billing/checkout", Some(&app.token("tia")), &body)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.checkout_state("cs_test_slow").await, "processing");
}

/// A refund of a payment the project never sold: the worker asks Stripe for its invoice
/// payment and then its PaymentIntent (two calls), finds it is not ours, and records it.
fn refund_of_a_payment_not_ours(n: usize, customer: &str) -> Value {
    let pi = format!("pi_slow_{n}");
    let charge = object(
        "charge",
        json!({ "id": format!("ch_slow_{n}"), "payment_intent": pi, "customer": customer,
                "invoice": null, "amount": 1000, "amount_refunded": 1000, "refunded": true }),
    );
    event(
        &format!("evt_slow_{n}"),
        "charge.refunded",
        1_795_000_000 + n as i64,
        charge,
    )
}

async fn states(app: &TestApp, ops: &str) -> Vec<(String, String)> {
    let r = app
        .get("/api/billing/admin/events?limit=200", Some(ops))
        .await;
    r.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["id"].as_str().is_some_and(|i| i.starts_with("evt_slow_")))
        .map(|e| {
            (
                e["id"].as_str().unwrap_or_default().to_owned(),
                e["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn messages_left(app: &TestApp) -> i64 {
    app.queue_depth("FulfilmentQueue", true).await
}

#[tokio::test]
async fn a_full_batch_of_one_customers_events_against_a_slow_stripe_ends_each_processed_or_failed()
{
    // Two seconds a call, two calls an event: ten events take 40 s, past the worker's 30 s.
    let stripe = strict_stripe().await;
    let delay = Duration::from_secs(2);
    Mock::given(method("GET"))
        .and(path("/v1/invoice_payments"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "object": "list", "data": [], "has_more": false, "url": "/v1/invoice_payments" }))
                .set_delay(delay),
        )
        .mount(&stripe)
        .await;
    let mut intent = object("payment_intent", json!({ "id": "pi_slow" }));
    intent["metadata"] = json!({});
    Mock::given(method("GET"))
        .and(path_regex("^/v1/payment_intents/[^/]+$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(intent)
                .set_delay(delay),
        )
        .mount(&stripe)
        .await;
    let base = stripe.uri();
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", "sk_test_slow"),
        ("STRIPE_API_BASE", &base),
    ])
    .await;
    let ops = local_stack::auth::token(
        black_box_tests::JWT_SECRET,
        "ops",
        None,
        "openid billing:admin",
        600,
    );
    // One customer: one FIFO group, delivered while the worker is busy, so one batch of ten.
    app.stack.pause_worker(true);
    for n in 0..10 {
        let r = app
            .deliver(&refund_of_a_payment_not_ours(n, "cus_slow"))
            .await;
        assert_eq!(r.body["status"], "queued", "{}", r.body);
    }
    // A sale of another customer rides along and still applies.
    let sale = event(
        "evt_sale_slow",
        "checkout.session.completed",
        1_795_000_100,
        checkout_session("cs_test_slow_sale", "sol", "credits_starter", "paid", 1000),
    );
    assert_eq!(app.deliver(&sale).await.body["status"], "queued");
    app.stack.pause_worker(false);

    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        // The queue first: a record is settled in the transaction before its message is
        // deleted, so states read after an empty queue are final (read the other way round,
        // an event settling between the two reads shows up in two states).
        let left = messages_left(&app).await;
        let seen = states(&app, &ops).await;
        let settled = seen
            .iter()
            .filter(|(_, s)| s == "processed" || s == "failed")
            .count();
        if left == 0 {
            // Every message has left the queue (applied, or to the dead-letter queue): none
            // of their events may still say queued.
            assert_eq!(seen.len(), 10, "{seen:?}");
            assert_eq!(
                settled, 10,
                "an event stayed queued after its message left: {seen:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {left} messages after 240 s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // With the budget, nothing was stopped half-way: each event asked Stripe once per call.
    let asked = stripe.received_requests().await.unwrap();
    let intents = asked
        .iter()
        .filter(|r| r.url.path().starts_with("/v1/payment_intents/"))
        .count();
    assert_eq!(intents, 10, "one PaymentIntent look-up per event");
    assert_eq!(app.account("sol").await["credits"]["balance"], 1000);
}
