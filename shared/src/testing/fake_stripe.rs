//! A fake Stripe API for tests, answering with Stripe's official fixture objects.

use super::{fixture, object};
use serde_json::json;

/// A fake Stripe API on a free loopback port, answering with the official fixtures: a new
/// Checkout Session `session_id` (open, with its hosted URL), a Billing Portal session, and
/// an empty page of events. Tests point `STRIPE_API_BASE` at its `uri()` and may mount more.
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
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "object": "list", "data": [], "has_more": false, "url": "/v1/events" }),
        ))
        .mount(&server)
        .await;
    server
}
