//! No secret and no card data ever reaches the logs: run the paths that log (intake,
//! fulfilment failures, Stripe errors through the HTTP adapter, at TRACE level so the HTTP
//! client's own traces are scanned too) with secrets configured and scan what was written.

use billing_core::domain::ids::PlanId;
use billing_core::inbound::http::ApiError;
use billing_core::usecases::checkout::{self, StartCheckout};
use billing_core::usecases::intake;
use billing_testing::{TEST_WEBHOOK_SECRET, checkout_session, event, memory_services, signature};
use std::io::Write;
use std::sync::{Arc, Mutex};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_carry_no_secret_and_no_card_data() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stripe = billing_testing::strict_stripe().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(402).set_body_json(serde_json::json!({ "error": {
            "type": "card_error", "message": "Your card was declined.", "code": "card_declined" } })))
        .mount(&stripe)
        .await;
    let base = stripe.uri();
    let s = memory_services(&[
        ("STRIPE_SECRET_KEY", "sk_test_LOGSCAN_key_123"),
        ("STRIPE_API_BASE", &base),
        ("STRIPE_PRICE_CREDITS_STARTER", "price_logscan"),
    ]);

    // Intake: good, bad signature, and an event carrying a pasted secret and a card number.
    let mut session = checkout_session("cs_test_scan", "sue", "credits_starter", "paid", 1000);
    session["metadata"]["note"] = serde_json::json!("card 4242424242424242 key sk_live_PASTED999");
    let body = event(
        "evt_scan",
        "checkout.session.completed",
        1_795_000_000,
        session,
    )
    .to_string();
    let header = signature(TEST_WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
    intake::receive(&s, Some(&header), body.as_bytes())
        .await
        .unwrap();
    let forged = signature("whsec_forged", chrono::Utc::now().timestamp(), &body);
    let _ = intake::receive(&s, Some(&forged), body.as_bytes())
        .await
        .map_err(ApiError::from);
    // Fulfilment failure (unknown plan) and a Stripe card error.
    let bad = event(
        "evt_scan2",
        "checkout.session.completed",
        1,
        checkout_session("cs_test_scan2", "sue", "nope", "paid", 1),
    );
    let _ = billing_core::usecases::fulfil::process(&s, &bad.to_string()).await;
    let caller = billing_testing::caller("sue", Some("sue@example.com"));
    let req = StartCheckout {
        plan: PlanId::parse("credits_starter").unwrap(),
        quantity: None,
        success_path: None,
        cancel_path: None,
    };
    let err = checkout::start_checkout(&s, &caller, req, None)
        .await
        .unwrap_err();
    let _ = ApiError::from(err);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.lines().count() >= 3, "the paths above log: {logs}");
    let about_event: Vec<&str> = logs.lines().filter(|l| l.contains("evt_scan\"")).collect();
    assert!(
        !about_event.is_empty(),
        "lines about an event carry its id: {logs}"
    );
    assert!(
        about_event
            .iter()
            .all(|l| l.contains("\"user\":\"sue\"") && l.contains("cs_test_scan")),
        "{logs}"
    );
    for secret in [
        "sk_test_LOGSCAN_key_123",
        TEST_WEBHOOK_SECRET,
        "whsec_forged",
        "sk_live_PASTED999",
        "4242424242424242",
    ] {
        assert!(!logs.contains(secret), "{secret} reached the logs:\n{logs}");
    }
}
