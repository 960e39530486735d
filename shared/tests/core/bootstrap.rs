//! The Stripe catalog bootstrap against a fake Stripe (wiremock).

use billing_core::domain::catalog::{Catalog, DEFAULT_CATALOG};
use billing_core::stripe::api::{HttpStripe, RetryPolicy};
use billing_core::usecases::catalog_bootstrap::{self, BootstrapError, Step};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn catalog() -> Catalog {
    Catalog::parse(DEFAULT_CATALOG, |_| None).unwrap()
}

async fn fake() -> (MockServer, HttpStripe) {
    let server = MockServer::start().await;
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
