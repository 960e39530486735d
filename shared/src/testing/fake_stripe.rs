//! A fake Stripe API for tests, answering with Stripe's official fixture objects.

use super::{fixture, object};
use serde_json::json;

/// A fake Stripe API on a free loopback port, answering with the official fixtures: a new
/// Checkout Session `session_id` (open, with its hosted URL), a Billing Portal session, an
/// empty page of events, and PaymentIntents and refunds made from the form posted (their
/// ids derived from the `Idempotency-Key`, so a retried request gets the same object, as
/// from Stripe). Tests point `STRIPE_API_BASE` at its `uri()` and may mount more.
pub async fn fake_stripe(session_id: &str) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let session = object(
        "checkout.session",
        json!({
            "id": session_id,
            "url": format!("https://checkout.stripe.com/c/pay/{session_id}"),
            "status": "open",
        }),
    );
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(session))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("billing_portal.session")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(|req: &wiremock::Request| {
            ResponseTemplate::new(200).set_body_json(payment_intent_for(req))
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(|req: &wiremock::Request| {
            ResponseTemplate::new(200).set_body_json(refund_for(req))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "object": "list", "data": [], "has_more": false, "url": "/v1/events" }),
        ))
        .mount(&server)
        .await;
    server
}

/// The posted form as name → value.
fn form_of(req: &wiremock::Request) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(&req.body).into_owned().collect()
}

/// An id of `prefix` derived from the request's `Idempotency-Key`.
fn id_for(prefix: &str, req: &wiremock::Request) -> String {
    use sha2::Digest;
    let key = req
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("{prefix}_test_{}", hex::encode(&digest[..12]))
}

/// The official PaymentIntent fixture, as Stripe would create it from the posted form.
pub fn payment_intent_for(req: &wiremock::Request) -> serde_json::Value {
    let form = form_of(req);
    let id = id_for("pi", req);
    let metadata: serde_json::Map<String, serde_json::Value> = form
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name.to_owned(), v.clone().into()))
        })
        .collect();
    let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut pi = object(
        "payment_intent",
        json!({
            "id": id,
            "amount": amount,
            "amount_received": 0,
            "currency": form.get("currency").cloned().unwrap_or_else(|| "usd".into()),
            "customer": form.get("customer").cloned(),
            "client_secret": format!("{id}_secret_fake"),
            "status": "requires_payment_method",
            "last_payment_error": serde_json::Value::Null,
        }),
    );
    pi["metadata"] = metadata.into();
    pi
}

/// The official refund fixture, as Stripe would create it from the posted form.
pub fn refund_for(req: &wiremock::Request) -> serde_json::Value {
    let form = form_of(req);
    let amount: i64 = form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0);
    object(
        "refund",
        json!({
            "id": id_for("re", req),
            "amount": amount,
            "payment_intent": form.get("payment_intent").cloned(),
            "status": "succeeded",
        }),
    )
}
