//! Checkout and portal on the in-memory Stripe: what the use case asks Stripe for (the plan,
//! price, quantity, buyer, trial and return URLs of a checkout; the customer of a portal),
//! what it refuses before Stripe, and what it makes of Stripe's answers. The form Stripe
//! receives for these calls and the HTTP adapter's retries are tested over HTTP
//! (shared/testing/tests/stripe/checkout_http.rs).

use billing_core::app::Services;
use billing_core::domain::checkout_state::CheckoutState;
use billing_core::domain::ids::{PlanId, SessionId, UserId};
use billing_core::inbound::http::ApiError;
use billing_core::store::Op;
use billing_core::store::{records, schema};
use billing_core::usecases::checkout::{self, CheckoutError, PortalRequest, StartCheckout};
use billing_core::usecases::checkout_status::checkout_status;
use billing_testing::caller;
use billing_testing::memory_stripe::{MemoryStripe, Method};
use billing_testing::{memory_services, memory_services_with_stripe};
use serde_json::{Value, json};
use std::sync::Arc;

const KEY: &str = "sk_test_fake_key_123";

fn services(stripe: &Arc<MemoryStripe>, extra: &[(&str, &str)]) -> Services {
    let mut vars = vec![
        ("STRIPE_SECRET_KEY", KEY),
        ("PUBLIC_BASE_URL", "https://app.example.com"),
        ("STRIPE_PRICE_CREDITS_STARTER", "price_starter"),
        ("STRIPE_PRICE_RETAINER", "price_retainer"),
        ("STRIPE_PRICE_PRO_ANNUAL", "price_annual"),
        ("STRIPE_PRICE_HOURLY_1H", "price_hourly"),
    ];
    vars.extend_from_slice(extra);
    memory_services_with_stripe(stripe, &vars)
}

fn stripe() -> Arc<MemoryStripe> {
    Arc::new(MemoryStripe::new())
}

fn request(plan: &str) -> StartCheckout {
    StartCheckout {
        plan: PlanId::parse(plan).unwrap(),
        quantity: None,
        success_path: None,
        cancel_path: None,
    }
}

/// What the first checkout Stripe received asked for.
fn first_checkout(stripe: &MemoryStripe) -> Value {
    stripe.calls_of(Method::CreateCheckout)[0].args.clone()
}

#[tokio::test]
async fn the_annual_plan_gets_its_fourteen_day_trial() {
    let server = stripe();
    let s = services(&server, &[]);
    checkout::start_checkout(&s, &caller("carol", None), request("pro_annual"), None)
        .await
        .unwrap();
    let asked = first_checkout(&server);
    assert_eq!(asked["trial_days"], 14);
    assert_eq!(asked["price"], "price_annual");
}

#[tokio::test]
async fn a_known_customer_is_reused_instead_of_the_email() {
    let server = stripe();
    let s = services(&server, &[]);
    let user = UserId::parse("dave").unwrap();
    s.table
        .update(
            &records::profile::key(&user),
            vec![Op::set("customer_id", "cus_dave")],
            None,
        )
        .await
        .unwrap();
    checkout::start_checkout(
        &s,
        &caller("dave", Some("dave@example.com")),
        request("hourly_1h"),
        None,
    )
    .await
    .unwrap();
    let asked = first_checkout(&server);
    assert_eq!(asked["customer"], "cus_dave");
    // The session Stripe made is the known customer's, not one for the email.
    let out = server.calls_of(Method::CreateCheckout);
    assert_eq!(out.len(), 1);
    let made = server.sessions_of_customer("cus_dave");
    assert_eq!(made.len(), 1);
    assert!(made[0]["customer_email"].is_null(), "{}", made[0]);
}

#[tokio::test]
async fn a_new_checkout_reads_as_processing_at_once() {
    let server = stripe();
    let s = services(&server, &[]);
    let out =
        checkout::start_checkout(&s, &caller("frank", None), request("credits_starter"), None)
            .await
            .unwrap();
    let session = out.session_id.unwrap();
    let state = checkout_status(&s, &SessionId::parse(&session).unwrap())
        .await
        .unwrap()
        .state;
    assert_eq!(state, CheckoutState::Processing);
}

#[tokio::test]
async fn only_relative_redirect_paths_are_accepted_and_nothing_reaches_stripe() {
    let server = stripe();
    let s = services(&server, &[]);
    for bad in [
        "https://evil.example",
        "//evil.example/x",
        "evil",
        "/\\evil",
        "/a b",
        "javascript:alert(1)",
        "/x\n",
    ] {
        let mut req = request("credits_starter");
        req.success_path = Some(bad.into());
        let err = checkout::start_checkout(&s, &caller("gina", None), req, None)
            .await
            .unwrap_err();
        assert!(matches!(err, CheckoutError::InvalidRedirect), "{bad}");
        assert_eq!(ApiError::from(err).code, "invalid_redirect");
        let mut req = request("credits_starter");
        req.cancel_path = Some(bad.into());
        assert!(matches!(
            checkout::start_checkout(&s, &caller("gina", None), req, None).await,
            Err(CheckoutError::InvalidRedirect)
        ));
    }
    assert!(server.calls().is_empty());
}

#[tokio::test]
async fn an_unknown_plan_or_a_bad_quantity_is_refused_before_stripe() {
    let server = stripe();
    let s = services(&server, &[]);
    let who = caller("hank", None);
    let err = checkout::start_checkout(&s, &who, request("gold_bars"), None)
        .await
        .unwrap_err();
    assert_eq!(
        ApiError::from(err),
        ApiError::new(400, "unknown_plan", "there is no plan \"gold_bars\"")
    );
    // A subscription plan that is not sold per seat takes no quantity (the contract's
    // `quantity_not_allowed`).
    let mut seats = request("retainer");
    seats.quantity = Some(2);
    let err = checkout::start_checkout(&s, &who, seats, None)
        .await
        .unwrap_err();
    assert_eq!(ApiError::from(err).code, "quantity_not_allowed");
    for (plan, q) in [
        ("credits_starter", 0),
        ("credits_starter", 101),
        ("hourly_1h", 3),
    ] {
        let mut req = request(plan);
        req.quantity = Some(q);
        assert!(
            matches!(
                checkout::start_checkout(&s, &who, req, None).await,
                Err(CheckoutError::InvalidQuantity)
            ),
            "{plan} x{q}"
        );
    }
    assert!(server.calls().is_empty());
}

#[tokio::test]
async fn a_subscription_already_held_active_is_a_conflict() {
    let server = stripe();
    let s = services(&server, &[]);
    let user = UserId::parse("ivy").unwrap();
    let sub = billing_core::store::Key::new(schema::user_pk(&user), "SUB#sub_ivy");
    s.table
        .update(
            &sub,
            vec![Op::set("plan_id", "retainer"), Op::set("status", "active")],
            None,
        )
        .await
        .unwrap();
    let err = checkout::start_checkout(&s, &caller("ivy", None), request("retainer"), None)
        .await
        .unwrap_err();
    assert_eq!(ApiError::from(err).status, 409);
    // A canceled one does not block a new checkout.
    s.table
        .update(&sub, vec![Op::set("status", "canceled")], None)
        .await
        .unwrap();
    assert!(
        checkout::start_checkout(&s, &caller("ivy", None), request("retainer"), None)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn without_a_key_or_a_price_checkout_is_honestly_unavailable() {
    let no_key = memory_services(&[("STRIPE_PRICE_CREDITS_STARTER", "price_starter")]);
    let err = checkout::start_checkout(
        &no_key,
        &caller("jo", None),
        request("credits_starter"),
        None,
    )
    .await
    .unwrap_err();
    let api = ApiError::from(err);
    assert_eq!((api.status, api.code), (503, "billing_unavailable"));
    assert!(api.message.contains("manual invoice"), "{}", api.message);
    let server = stripe();
    let no_price = services(&server, &[]);
    let err =
        checkout::start_checkout(&no_price, &caller("jo", None), request("deposit_500"), None)
            .await
            .unwrap_err();
    assert_eq!(ApiError::from(err).status, 503);
    assert!(server.calls().is_empty());
}

#[tokio::test]
async fn a_plan_with_only_a_payment_link_checks_out_through_the_link_carrying_the_user() {
    let s = memory_services(&[
        ("STRIPE_LINK_DEPOSIT_500", "https://buy.stripe.com/test_abc"),
        ("CLIENT_REFERENCE_SECRET", "core-reference-secret"),
    ]);
    let out = checkout::start_checkout(
        &s,
        &caller("kim", Some("k+m@example.com")),
        request("deposit_500"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(out.via, "payment_link");
    assert_eq!(out.session_id, None);
    let kim = UserId::parse("kim").unwrap();
    let signed = billing_core::domain::reference::sign(&kim, &s.config.reference_secrets).unwrap();
    assert_eq!(
        out.url,
        format!(
            "https://buy.stripe.com/test_abc?client_reference_id={signed}&prefilled_email=k%2Bm%40example.com"
        )
    );
}

#[tokio::test]
async fn a_payment_link_carries_any_user_id_in_the_alphabet_payment_links_keep() {
    let s = memory_services(&[
        ("STRIPE_LINK_DEPOSIT_500", "https://buy.stripe.com/test_abc"),
        ("CLIENT_REFERENCE_SECRET", "core-reference-secret"),
    ]);
    let out = checkout::start_checkout(
        &s,
        &caller("auth0|abc.def@x", None),
        request("deposit_500"),
        None,
    )
    .await
    .unwrap();
    let reference = out.url.split("client_reference_id=").nth(1).unwrap();
    assert!(
        reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{reference}"
    );
    assert_eq!(
        billing_core::domain::reference::verify(reference, &s.config.reference_secrets),
        Some(UserId::parse("auth0|abc.def@x").unwrap())
    );
}

#[tokio::test]
async fn without_a_reference_secret_a_payment_link_plan_is_unavailable_not_unsigned() {
    let s = memory_services(&[("STRIPE_LINK_DEPOSIT_500", "https://buy.stripe.com/test_abc")]);
    let out =
        checkout::start_checkout(&s, &caller("kim", None), request("deposit_500"), None).await;
    assert!(matches!(out, Err(CheckoutError::Unavailable(_))), "{out:?}");
    let status = billing_core::usecases::account::billing_status(&s.config);
    assert_eq!(status.plans["deposit_500"].via, "manual");
}

#[tokio::test]
async fn a_second_subscription_after_a_canceled_one_gets_no_second_trial() {
    let server = stripe();
    let s = services(&server, &[]);
    let ended =
        billing_testing::subscription("sub_t1", "trier", "pro_annual", "canceled", 1_796_000_000);
    server.put_subscription(&ended);
    let e = billing_testing::event(
        "evt_t1",
        "customer.subscription.deleted",
        1_795_000_000,
        ended,
    );
    billing_core::usecases::fulfil::process(&s, &e.to_string())
        .await
        .unwrap();
    checkout::start_checkout(&s, &caller("trier", None), request("pro_annual"), None)
        .await
        .unwrap();
    let asked = first_checkout(&server);
    assert_eq!(asked["price"], "price_annual");
    assert!(asked["trial_days"].is_null(), "one trial per account");
}

#[tokio::test]
async fn the_portal_opens_only_for_the_callers_own_customer() {
    let server = stripe();
    let s = services(&server, &[]);
    let owner = UserId::parse("lena").unwrap();
    s.table
        .update(
            &records::profile::key(&owner),
            vec![Op::set("customer_id", "cus_lena")],
            None,
        )
        .await
        .unwrap();
    let out = checkout::open_portal(
        &s,
        &caller("lena", None),
        PortalRequest {
            return_path: Some("/account".into()),
        },
    )
    .await
    .unwrap();
    assert!(out.url.starts_with("https://"));
    assert_eq!(
        server.calls_of(Method::CreatePortalSession)[0].args,
        json!({ "customer": "cus_lena", "return_url": "https://app.example.com/account" })
    );
    let other = checkout::open_portal(&s, &caller("mallory", None), PortalRequest::default())
        .await
        .unwrap_err();
    assert_eq!(ApiError::from(other).code, "no_customer");
    let bad = checkout::open_portal(
        &s,
        &caller("lena", None),
        PortalRequest {
            return_path: Some("//evil".into()),
        },
    )
    .await;
    assert!(matches!(bad, Err(CheckoutError::InvalidRedirect)));
}

#[tokio::test]
async fn a_payment_link_completion_without_our_metadata_is_resolved_from_its_line_items() {
    let server = stripe();
    let s = services(&server, &[]);
    let mut session = billing_testing::checkout_session(
        "cs_test_link_1",
        "nina",
        "credits_starter",
        "paid",
        3000,
    );
    session["metadata"] = json!({});
    session["payment_link"] = "plink_test_starter".into();
    let nina = UserId::parse("nina").unwrap();
    let reference =
        billing_core::domain::reference::sign(&nina, &s.config.reference_secrets).unwrap();
    session["client_reference_id"] = reference.into();
    // Stripe holds the session, which sold 3 of the starter pack's price.
    server.put_session(&session, &[("price_starter", 3)]);
    let e = billing_testing::event(
        "evt_link_1",
        "checkout.session.completed",
        1_795_000_000,
        session,
    );
    billing_core::usecases::fulfil::process(&s, &e.to_string())
        .await
        .unwrap();
    let account = billing_core::usecases::account::account(&s, &UserId::parse("nina").unwrap())
        .await
        .unwrap();
    assert_eq!(account.credits.balance, 3000);
}
