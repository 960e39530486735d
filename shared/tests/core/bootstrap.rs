//! The Stripe catalog bootstrap against the in-memory Stripe.

use billing_core::domain::catalog::{Catalog, DEFAULT_CATALOG};
use billing_core::stripe::api::{STRIPE_VERSION, StripeApi};
use billing_core::stripe::event_types::HANDLED;
use billing_core::usecases::catalog_bootstrap::{self, BootstrapError, EndpointStep, Step};
use billing_testing::memory_stripe::{MemoryStripe, Method};
use billing_testing::object;
use serde_json::json;

fn catalog() -> Catalog {
    Catalog::parse(DEFAULT_CATALOG, |_| None).unwrap()
}

/// A Stripe account where credits_starter's price exists already; nothing else does.
fn fake() -> MemoryStripe {
    let stripe = MemoryStripe::new();
    stripe.put_price(&object(
        "price",
        json!({ "id": "price_existing", "lookup_key": "billing_credits_starter", "active": true }),
    ));
    stripe
}

#[tokio::test]
async fn a_dry_run_creates_nothing() {
    let client = fake();
    let steps = catalog_bootstrap::run(&client, &catalog(), false, false, false)
        .await
        .unwrap();
    assert!(client.updates().is_empty(), "{:?}", client.updates());
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
    let client = fake();
    let steps = catalog_bootstrap::run(&client, &catalog(), false, true, false)
        .await
        .unwrap();
    let line = catalog_bootstrap::prices_line(&steps);
    let annual_id = client
        .find_price_by_lookup_key("billing_pro_annual")
        .await
        .unwrap()
        .expect("the annual price was created");
    assert!(
        line.starts_with("STRIPE_PRICES=")
            && line.contains("credits_starter=price_existing")
            && line.contains(&format!("pro_annual={annual_id}")),
        "{line}"
    );
    let posts: Vec<serde_json::Value> = client
        .calls_of(Method::CreatePrice)
        .into_iter()
        .map(|c| c.args)
        .collect();
    assert_eq!(
        posts.len(),
        catalog().plans().count() - 1,
        "every plan but the one that exists"
    );
    let annual = posts
        .iter()
        .find(|p| p["lookup_key"] == "billing_pro_annual")
        .unwrap();
    assert_eq!(
        (&annual["interval"], &annual["amount"]),
        (&json!("year"), &json!(29000))
    );
    let held = client.retrieve_price(&annual_id).await.unwrap();
    assert_eq!(
        held.recurring.and_then(|r| r.interval).as_deref(),
        Some("year")
    );
    assert!(!line.contains("sk_test"));
}

#[tokio::test]
async fn a_live_key_is_refused_without_allow_live() {
    let client = fake();
    assert!(matches!(
        catalog_bootstrap::run(&client, &catalog(), true, true, false).await,
        Err(BootstrapError::LiveKeyRefused)
    ));
    assert!(client.calls().is_empty());
    assert!(
        catalog_bootstrap::run(&client, &catalog(), true, false, true)
            .await
            .is_ok()
    );
}

const HOOK_URL: &str = "https://hooks.example.com/api/stripe/webhook";

/// A Stripe account with `existing` webhook endpoints.
fn endpoints(existing: serde_json::Value) -> MemoryStripe {
    let stripe = MemoryStripe::new();
    for e in existing.as_array().unwrap() {
        stripe.put_webhook_endpoint(&object("webhook_endpoint", e.clone()));
    }
    stripe
}

/// The calls that created something.
fn posts(stripe: &MemoryStripe) -> Vec<billing_testing::memory_stripe::Call> {
    stripe.updates()
}

#[tokio::test]
async fn a_dry_run_shows_the_webhook_endpoint_it_would_create_pinned_to_the_handled_types() {
    let client = endpoints(json!([]));
    let step = catalog_bootstrap::webhook_endpoint(&client, HOOK_URL, false)
        .await
        .unwrap();
    assert!(posts(&client).is_empty(), "a dry run creates nothing");
    let EndpointStep::WouldCreate { endpoint } = step else {
        panic!("{step:?}")
    };
    assert_eq!(endpoint.url, HOOK_URL);
    assert_eq!(endpoint.api_version, STRIPE_VERSION);
    assert_eq!(endpoint.enabled_events, HANDLED.to_vec());
}

#[tokio::test]
async fn applied_it_creates_the_endpoint_once_and_never_hands_out_the_secret() {
    let client = endpoints(json!([]));
    let step = catalog_bootstrap::webhook_endpoint(&client, HOOK_URL, true)
        .await
        .unwrap();
    let made = client.list_webhook_endpoints().await.unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(
        (made[0].url.as_str(), made[0].api_version.as_deref()),
        (HOOK_URL, Some(STRIPE_VERSION))
    );
    assert_eq!(
        step,
        EndpointStep::Created {
            id: made[0].id.clone()
        }
    );
    assert!(!format!("{step:?}").contains("whsec_"));
    assert!(catalog_bootstrap::SECRET_HINT.contains("STRIPE_WEBHOOK_SECRET"));
    assert_eq!(posts(&client).len(), 1);
}

#[tokio::test]
async fn an_existing_endpoint_for_the_url_is_shown_not_duplicated() {
    let mut handled: Vec<&str> = HANDLED.to_vec();
    handled.reverse();
    let client = endpoints(json!([
        { "id": "we_other", "url": "https://elsewhere.example.com/hook", "api_version": null, "enabled_events": ["*"] },
        { "id": "we_ours", "url": HOOK_URL, "api_version": STRIPE_VERSION, "enabled_events": handled },
    ]));
    let step = catalog_bootstrap::webhook_endpoint(&client, HOOK_URL, true)
        .await
        .unwrap();
    assert!(posts(&client).is_empty());
    let EndpointStep::Exists { id, pinned, .. } = step else {
        panic!("{step:?}")
    };
    assert_eq!((id.as_str(), pinned), ("we_ours", true));
}

#[tokio::test]
async fn an_existing_endpoint_on_another_version_is_shown_as_not_pinned() {
    let client = endpoints(json!([
        { "id": "we_old", "url": HOOK_URL, "api_version": "2024-06-20", "enabled_events": ["*"] },
    ]));
    let step = catalog_bootstrap::webhook_endpoint(&client, HOOK_URL, false)
        .await
        .unwrap();
    assert!(
        matches!(step, EndpointStep::Exists { pinned: false, ref api_version, .. } if api_version.as_deref() == Some("2024-06-20")),
        "{step:?}"
    );
}
