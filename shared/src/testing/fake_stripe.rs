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

/// Stripe's `/v1/events` over a fixed set of events, as Stripe pages it: newest first (by
/// `created`, then id), filtered by `created[gte]`, `created[lte]` and `types[]`, 100 (or
/// `limit`) a page after `starting_after`. Mount it with `respond_with`.
pub struct EventsApi(pub Vec<serde_json::Value>);

impl wiremock::Respond for EventsApi {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let pairs: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
        let one = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let number = |name: &str| one(name).and_then(|v| v.parse::<i64>().ok());
        let types: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "types[]")
            .map(|(_, v)| v.as_str())
            .collect();
        let created = |e: &serde_json::Value| e["created"].as_i64().unwrap_or(0);
        let mut listed: Vec<&serde_json::Value> = self
            .0
            .iter()
            .filter(|e| number("created[gte]").is_none_or(|t| created(e) >= t))
            .filter(|e| number("created[lte]").is_none_or(|t| created(e) <= t))
            .filter(|e| types.is_empty() || types.contains(&e["type"].as_str().unwrap_or("")))
            .collect();
        listed.sort_by(|a, b| (created(b), b["id"].as_str()).cmp(&(created(a), a["id"].as_str())));
        if let Some(after) = one("starting_after") {
            let at = listed.iter().position(|e| e["id"] == after.as_str());
            listed = listed.split_off(at.map_or(listed.len(), |i| i + 1));
        }
        let limit = number("limit").unwrap_or(10).clamp(1, 100) as usize;
        let has_more = listed.len() > limit;
        listed.truncate(limit);
        wiremock::ResponseTemplate::new(200).set_body_json(
            json!({ "object": "list", "url": "/v1/events", "has_more": has_more, "data": listed }),
        )
    }
}
