//! The Stripe catalog bootstrap against a fake Stripe (wiremock).

use billing_core::domain::catalog::{Catalog, DEFAULT_CATALOG};
use billing_core::stripe::api::{HttpStripe, RetryPolicy, STRIPE_VERSION};
use billing_core::stripe::event_types::HANDLED;
use billing_core::usecases::catalog_bootstrap::{self, BootstrapError, EndpointStep, Step};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn catalog() -> Catalog {
    Catalog::parse(DEFAULT_CATALOG, |_| None).unwrap()
}

async fn fake() -> (MockServer, HttpStripe) {
    let server = billing_testing::strict_stripe().await;
    // credits_starter exists already; nothing else does.
    Mock::given(method("GET"))
        .and(path("/v1/prices"))
        .and(query_param("lookup_keys[]", "billing_credits_starter"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "object": "list", "data": [{ "id": "price_existing" }], "has_more": false }),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/prices"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "object": "list", "data": [], "has_more": false })),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/products"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "prod_new" })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/prices"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "price_new" })))
        .mount(&server)
        .await;
    let client = HttpStripe::new(
        &server.uri(),
        "sk_test_boot".to_owned().into(),
        RetryPolicy::default(),
    );
    (server, client)
}

#[tokio::test]
async fn a_dry_run_creates_nothing() {
    let (server, client) = fake().await;
    let steps = catalog_bootstrap::run(&client, &catalog(), false, false, false)
        .await
        .unwrap();
    assert!(
        server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .all(|r| r.method.as_str() == "GET")
    );
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::Exists { plan, .. } if plan == "credits_starter"))
    );
    assert_eq!(
        steps
            .iter()
            .filter(|s| matches!(s, Step::WouldCreate { .. }))
            .count(),
        catalog().plans().count() - 1
    );
}

#[tokio::test]
async fn apply_creates_the_missing_prices_with_recurring_intervals_and_reuses_existing_ones() {
    let (server, client) = fake().await;
    let steps = catalog_bootstrap::run(&client, &catalog(), false, true, false)
        .await
        .unwrap();
    let line = catalog_bootstrap::prices_line(&steps);
    assert!(
        line.starts_with("STRIPE_PRICES=")
            && line.contains("credits_starter=price_existing")
            && line.contains("pro_annual=price_new")
    );
    let posts: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/prices" && r.method.as_str() == "POST")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(
        posts.len(),
        catalog().plans().count() - 1,
        "every plan but the one that exists"
    );
    let annual = posts
        .iter()
        .find(|b| b.contains("billing_pro_annual"))
        .unwrap();
    assert!(
        annual.contains("recurring%5Binterval%5D=year") && annual.contains("unit_amount=29000"),
        "{annual}"
    );
    assert!(!line.contains("sk_test"));
}

#[tokio::test]
async fn a_live_key_is_refused_without_allow_live() {
    let (server, client) = fake().await;
    assert!(matches!(
        catalog_bootstrap::run(&client, &catalog(), true, true, false).await,
        Err(BootstrapError::LiveKeyRefused)
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(
        catalog_bootstrap::run(&client, &catalog(), true, false, true)
            .await
            .is_ok()
    );
}

const HOOK_URL: &str = "https://hooks.example.com/api/stripe/webhook";

/// A fake Stripe with `existing` webhook endpoints; creating one answers its secret once.
async fn endpoints(existing: serde_json::Value) -> (MockServer, HttpStripe) {
    let server = billing_testing::strict_stripe().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhook_endpoints"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "object": "list", "data": existing, "has_more": false })),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/webhook_endpoints"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "id": "we_new", "secret": "whsec_shown_once", "url": HOOK_URL }),
        ))
        .mount(&server)
        .await;
    let client = HttpStripe::new(
        &server.uri(),
        "sk_test_boot".to_owned().into(),
        RetryPolicy::default(),
    );
    (server, client)
}

async fn posts(server: &MockServer) -> Vec<wiremock::Request> {
    let all = server.received_requests().await.unwrap_or_default();
    all.into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect()
}

#[tokio::test]
async fn a_dry_run_shows_the_webhook_endpoint_it_would_create_pinned_to_the_handled_types() {
    let (server, client) = endpoints(json!([])).await;
    let step = catalog_bootstrap::webhook_endpoint(&client, HOOK_URL, false)
        .await
        .unwrap();
    assert!(posts(&server).await.is_empty(), "a dry run creates nothing");
    let EndpointStep::WouldCreate { endpoint } = step else {
        panic!("{step:?}")
    };
    assert_eq!(endpoint.url, HOOK_URL);
    assert_eq!(endpoint.api_version, STRIPE_VERSION);
    assert_eq!(endpoint.enabled_events, HANDLED.to_vec());
}

#[tokio::test]
async fn applied_it_creates_the_endpoint_once_and_never_hands_out_the_secret() {
    let (server, client) = endpoints(json!([])).await;
    let step = catalog_bootstrap::webhook_endpoint(&client, HOOK_URL, true)
        .await
        .unwrap();
    assert_eq!(
        step,
        EndpointStep::Created {
            id: "we_new".into()
        }
    );
    assert!(!format!("{step:?}").contains("whsec_"));
    assert!(catalog_bootstrap::SECRET_HINT.contains("STRIPE_WEBHOOK_SECRET"));
    assert_eq!(posts(&server).await.len(), 1);
}

#[tokio::test]
async fn an_existing_endpoint_for_the_url_is_shown_not_duplicated() {
    let mut handled: Vec<&str> = HANDLED.to_vec();
    handled.reverse();
    let (server, client) = endpoints(json!([
        { "id": "we_other", "url": "https://elsewhere.example.com/hook", "api_version": null, "enabled_events": ["*"] },
        { "id": "we_ours", "url": HOOK_URL, "api_version": STRIPE_VERSION, "enabled_events": handled },
    ]))
    .await;
    let step = catalog_bootstrap::webhook_endpoint(&client, HOOK_URL, true)
        .await
        .unwrap();
    assert!(posts(&server).await.is_empty());
    let EndpointStep::Exists { id, pinned, .. } = step else {
        panic!("{step:?}")
    };
    assert_eq!((id.as_str(), pinned), ("we_ours", true));
}

#[tokio::test]
async fn an_existing_endpoint_on_another_version_is_shown_as_not_pinned() {
    let (_server, client) = endpoints(json!([
        { "id": "we_old", "url": HOOK_URL, "api_version": "2024-06-20", "enabled_events": ["*"] },
    ]))
    .await;
    let step = catalog_bootstrap::webhook_endpoint(&client, HOOK_URL, false)
        .await
        .unwrap();
    assert!(
        matches!(step, EndpointStep::Exists { pinned: false, ref api_version, .. } if api_version.as_deref() == Some("2024-06-20")),
        "{step:?}"
    );
}
