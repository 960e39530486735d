//! Our Stripe types read Stripe's official example objects as they are.

use billing_core::stripe::{CheckoutSession, Event, Subscription};
use billing_testing::{FIXTURES, fixture};

/// The SHA-256 of `fixtures3.json` as taken from Stripe's repository (recorded in
/// shared/testdata/stripe/README.md): an edit to the vendored copy fails here, in CI too.
const FIXTURES_SHA256: &str = "41486e14a5b930447f53ecc4e71e34e3184462ba3d18212a39d4a40f70eaba44";

#[test]
fn the_vendored_fixtures_are_stripes_file_byte_for_byte() {
    use sha2::{Digest, Sha256};
    assert_eq!(
        hex::encode(Sha256::digest(FIXTURES.as_bytes())),
        FIXTURES_SHA256,
        "testdata/stripe/fixtures3.json is not the file taken from Stripe: restore it, or record \
         the new upstream commit and digest in shared/testdata/stripe/README.md"
    );
}

#[test]
fn the_vendored_fixtures_match_the_shared_copy_when_present() {
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/stripe/fixtures3.json");
    if let Ok(text) = std::fs::read_to_string(&shared) {
        assert_eq!(
            text,
            FIXTURES,
            "testdata/stripe/fixtures3.json drifted from {}",
            shared.display()
        );
    }
}

#[test]
fn the_official_event_envelope_parses() {
    let e: Event = serde_json::from_str(&fixture("event").to_string()).unwrap();
    assert_eq!(e.id, "evt_1Pgc76B7WZ01zgkWwyRHS12y");
    assert_eq!(e.kind, "plan.created");
    assert!(!e.livemode);
}

#[test]
fn the_official_checkout_session_parses_with_its_nulls() {
    let s: CheckoutSession = serde_json::from_value(fixture("checkout.session")).unwrap();
    assert!(s.id.starts_with("cs_test_"));
    assert_eq!(
        s.customer_details.and_then(|d| d.email).as_deref(),
        Some("example@example.com")
    );
    assert_eq!(s.client_reference_id, None);
    assert_eq!(s.amount_total, None);
}

#[test]
fn the_official_subscription_parses_with_the_period_on_its_items() {
    let s: Subscription = serde_json::from_value(fixture("subscription")).unwrap();
    assert_eq!(s.customer.id(), "cus_QXg1o8vcGmoR32");
    assert!(
        s.period_end().is_some(),
        "current API versions carry the period on the items"
    );
    assert_eq!(s.price_ids().next(), Some("price_1PgafmB7WZ01zgkW6dKueIc5"));
}

#[test]
fn an_expanded_customer_reads_as_its_id() {
    let mut raw = fixture("subscription");
    raw["customer"] = fixture("customer");
    let s: Subscription = serde_json::from_value(raw).unwrap();
    assert_eq!(s.customer.id(), "cus_QXg1o8vcGmoR32");
}
