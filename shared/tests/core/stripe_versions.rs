//! Stripe as it is (docs/api.md, "Fulfilment semantics" and "Stripe API versions"): events of API
//! versions before and after 2025-03-31 alike, the subscription applied as Stripe holds it
//! now, the plan of its current price, and `invoice.paid` granting only a period paid for.
//! The older shape is built from the fixtures by `billing_testing::before_basil`, which cites the
//! changelog entries of 2025-03-31.basil that moved each field.

use billing_core::app::Services;
use billing_core::domain::ids::UserId;
use billing_core::stripe::api::StripeError;
use billing_core::stripe::event_types::EventType;
use billing_core::usecases::account::{AccountView, account};
use billing_core::usecases::fulfil::{self, FulfilError};
use billing_testing::memory_stripe::{MemoryStripe, Method};
use billing_testing::{
    event, memory_services, memory_services_with_stripe, old_event, subscription_invoice,
    subscription_on,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;

// Stripe's names of the types these tests send.
const SUB_CREATED: &str = EventType::SubscriptionCreated.as_str();
const SUB_UPDATED: &str = EventType::SubscriptionUpdated.as_str();
const SUB_PAUSED: &str = EventType::SubscriptionPaused.as_str();
const SUB_RESUMED: &str = EventType::SubscriptionResumed.as_str();
const SUB_DELETED: &str = EventType::SubscriptionDeleted.as_str();
const INVOICE_PAID: &str = EventType::InvoicePaid.as_str();
const INVOICE_FAILED: &str = EventType::InvoicePaymentFailed.as_str();
const INVOICE_ACTION_REQUIRED: &str = EventType::InvoiceActionRequired.as_str();

const T0: i64 = 1_795_000_000;
const END: i64 = T0 + 2_600_000;
const PRICES: [(&str, &str); 2] = [
    ("STRIPE_PRICE_PRO_MONTHLY", "price_pro"),
    ("STRIPE_PRICE_PRO_CREDITS_MONTHLY", "price_credits"),
];

/// Unix seconds as the account shows them.
fn at(secs: i64) -> String {
    billing_core::domain::clock::rfc3339(chrono::DateTime::from_timestamp(secs, 0).unwrap())
}

async fn account_of(s: &Services, u: &str) -> AccountView {
    account(s, &UserId::parse(u).unwrap()).await.unwrap()
}

/// Delivers `e` as the current API renders it, or as an endpoint before 2025-03-31 does.
fn in_shape(old: bool, id: &str, kind: &str, created: i64, object: &Value) -> Value {
    match old {
        true => old_event(id, kind, created, object),
        false => event(id, kind, created, object.clone()),
    }
}

/// With a Stripe key: the in-memory Stripe holding the subscriptions, and the catalog's
/// prices.
async fn with_stripe() -> (Arc<MemoryStripe>, Services) {
    let held = Arc::new(MemoryStripe::new());
    let mut env = vec![("STRIPE_SECRET_KEY", "sk_test_versions")];
    env.extend(PRICES);
    let s = memory_services_with_stripe(&held, &env);
    (held, s)
}

#[tokio::test]
async fn every_subscription_event_type_applies_in_both_api_shapes() {
    for old in [false, true] {
        for (i, (kind, status)) in [
            (SUB_CREATED, "trialing"),
            (SUB_UPDATED, "past_due"),
            (SUB_PAUSED, "paused"),
            (SUB_RESUMED, "active"),
            (SUB_DELETED, "canceled"),
        ]
        .into_iter()
        .enumerate()
        {
            let user = format!("shape{i}{old}");
            let s = memory_services(&PRICES);
            let mut sub =
                subscription_on(&format!("sub_{user}"), &user, "price_credits", status, END);
            sub["cancel_at"] = (END + 5).into();
            let e = in_shape(old, &format!("evt_{user}"), kind, T0, &sub);
            fulfil::process(&s, &e.to_string()).await.unwrap();
            let view = account_of(&s, &user).await.subscription.unwrap();
            let what = format!("{kind}, before 2025-03-31: {old}");
            assert_eq!(view.status, status, "{what}");
            assert_eq!(
                view.plan_id.as_deref(),
                Some("pro_credits_monthly"),
                "{what}"
            );
            assert_eq!(
                view.current_period_end.as_deref(),
                Some(at(END).as_str()),
                "{what}"
            );
            assert_eq!(
                view.cancel_at.as_deref(),
                Some(at(END + 5).as_str()),
                "{what}"
            );
        }
    }
}

#[tokio::test]
async fn every_invoice_event_type_applies_in_both_api_shapes() {
    for old in [false, true] {
        let user = format!("inv{old}");
        let s = memory_services(&PRICES);
        // No customer link and no plan in metadata: the user comes from the subscription's
        // metadata snapshot, the plan from the line's price, wherever the version puts them.
        let mut inv = subscription_invoice(
            &format!("in_{user}"),
            &format!("sub_{user}"),
            &user,
            "price_credits",
            "subscription_cycle",
            4900,
        );
        inv["customer"] = Value::Null;
        let failed = in_shape(old, &format!("evt_f_{user}"), INVOICE_FAILED, T0, &inv);
        fulfil::process(&s, &failed.to_string()).await.unwrap();
        assert!(
            account_of(&s, &user).await.payment_problem.is_some(),
            "old: {old}"
        );
        let paid = in_shape(old, &format!("evt_p_{user}"), INVOICE_PAID, T0 + 1, &inv);
        fulfil::process(&s, &paid.to_string()).await.unwrap();
        let a = account_of(&s, &user).await;
        assert_eq!(a.credits.balance, 2000, "old: {old}");
        assert!(a.payment_problem.is_none(), "old: {old}");
    }
}

#[tokio::test]
async fn a_renewal_that_needs_the_customer_shows_where_to_confirm_until_its_invoice_is_paid() {
    for old in [false, true] {
        let user = format!("sca{old}");
        let s = memory_services(&PRICES);
        let mut inv = subscription_invoice(
            &format!("in_{user}"),
            &format!("sub_{user}"),
            &user,
            "price_credits",
            "subscription_cycle",
            0,
        );
        inv["status"] = "open".into();
        inv["hosted_invoice_url"] = format!("https://invoice.stripe.com/i/{user}").into();
        let action = in_shape(
            old,
            &format!("evt_a_{user}"),
            INVOICE_ACTION_REQUIRED,
            T0,
            &inv,
        );
        fulfil::process(&s, &action.to_string()).await.unwrap();
        let problem = account_of(&s, &user).await.payment_problem;
        let problem = problem.unwrap_or_else(|| panic!("a problem shows (old: {old})"));
        assert_eq!(problem.kind, "action_required", "old: {old}");
        assert_eq!(problem.invoice_id, format!("in_{user}"));
        assert_eq!(
            problem.invoice_url.as_deref(),
            Some(format!("https://invoice.stripe.com/i/{user}").as_str())
        );
        // The customer confirms: the invoice is paid and the problem is gone.
        inv["status"] = "paid".into();
        inv["amount_paid"] = 4900.into();
        inv["total"] = 4900.into();
        let paid = in_shape(old, &format!("evt_p_{user}"), INVOICE_PAID, T0 + 1, &inv);
        fulfil::process(&s, &paid.to_string()).await.unwrap();
        let a = account_of(&s, &user).await;
        assert!(a.payment_problem.is_none(), "old: {old}");
        assert_eq!(a.credits.balance, 2000, "old: {old}");
        // A late copy of the action-required event after the payment changes nothing.
        fulfil::process(&s, &action.to_string()).await.unwrap();
        assert!(account_of(&s, &user).await.payment_problem.is_none());
    }
}

#[tokio::test]
async fn a_failed_payment_shows_its_kind_and_the_hosted_invoice_page() {
    let s = memory_services(&PRICES);
    let mut inv = subscription_invoice(
        "in_pf",
        "sub_pf",
        "pf",
        "price_credits",
        "subscription_cycle",
        0,
    );
    inv["hosted_invoice_url"] = "https://invoice.stripe.com/i/pf".into();
    let failed = event("evt_pf", INVOICE_FAILED, T0, inv);
    fulfil::process(&s, &failed.to_string()).await.unwrap();
    let problem = account_of(&s, "pf").await.payment_problem.unwrap();
    assert_eq!(problem.kind, "payment_failed");
    assert_eq!(
        problem.invoice_url.as_deref(),
        Some("https://invoice.stripe.com/i/pf")
    );
}

#[tokio::test]
async fn a_proration_invoice_and_a_zero_trial_invoice_grant_no_credits() {
    let s = memory_services(&PRICES);
    for (i, (reason, paid)) in [
        ("subscription_update", 2000),
        ("subscription_create", 0),
        ("manual", 4900),
    ]
    .into_iter()
    .enumerate()
    {
        let inv = subscription_invoice(
            &format!("in_pr{i}"),
            "sub_pr",
            "pror",
            "price_credits",
            reason,
            paid,
        );
        let e = event(&format!("evt_pr{i}"), INVOICE_PAID, T0 + i as i64, inv);
        fulfil::process(&s, &e.to_string()).await.unwrap();
    }
    assert_eq!(account_of(&s, "pror").await.credits.balance, 0);
    let renewal = subscription_invoice(
        "in_pr_cycle",
        "sub_pr",
        "pror",
        "price_credits",
        "subscription_cycle",
        4900,
    );
    let e = event("evt_pr_cycle", INVOICE_PAID, T0 + 10, renewal);
    fulfil::process(&s, &e.to_string()).await.unwrap();
    assert_eq!(account_of(&s, "pror").await.credits.balance, 2000);
}

#[tokio::test]
async fn the_event_applies_the_subscription_stripe_holds_now_not_its_own_copy() {
    let (held, s) = with_stripe().await;
    // The event says active on the old price; Stripe now holds it switched and scheduled
    // to end (flexible billing: `cancel_at` set, `cancel_at_period_end` false).
    let sent = subscription_on("sub_now", "nowu", "price_pro", "active", END);
    let mut now = subscription_on("sub_now", "nowu", "price_credits", "active", END);
    now["cancel_at"] = END.into();
    held.put_subscription(&now);
    let e = event("evt_now", SUB_UPDATED, T0, sent);
    fulfil::process(&s, &e.to_string()).await.unwrap();
    let view = account_of(&s, "nowu").await.subscription.unwrap();
    assert_eq!(view.plan_id.as_deref(), Some("pro_credits_monthly"));
    assert_eq!(view.cancel_at.as_deref(), Some(at(END).as_str()));
    assert!(!view.cancel_at_period_end);
}

#[tokio::test]
async fn stripe_unreachable_fails_the_event_and_applies_no_older_state() {
    // Stripe holds the subscription but cannot be reached, however often it is asked.
    let stripe = Arc::new(MemoryStripe::new());
    let s = memory_services_with_stripe(&stripe, &[("STRIPE_SECRET_KEY", "sk_test_down")]);
    let sub = subscription_on("sub_down", "down", "price_pro", "active", END);
    stripe.put_subscription(&sub);
    let refused = StripeError::Network("connection refused".into());
    stripe.fail_next(Method::RetrieveSubscription, 100, refused);
    let e = event("evt_down", SUB_UPDATED, T0, sub);
    let r = fulfil::process(&s, &e.to_string()).await;
    assert!(matches!(r, Err(FulfilError::Stripe(_))), "{r:?}");
    assert!(account_of(&s, "down").await.subscription.is_none());
}

/// One subscription's lifecycle as Stripe sends it: created, paid, switched, scheduled to
/// end, ended; several in the same second.
fn lifecycle() -> Vec<Value> {
    let at = |status: &str, price: &str| subscription_on("sub_life", "life", price, status, END);
    let mut scheduled = at("active", "price_credits");
    scheduled["cancel_at"] = END.into();
    let inv = subscription_invoice(
        "in_life",
        "sub_life",
        "life",
        "price_pro",
        "subscription_create",
        2900,
    );
    vec![
        event("evt_l1", SUB_CREATED, T0, at("incomplete", "price_pro")),
        event("evt_l2", INVOICE_PAID, T0, inv),
        event("evt_l3", SUB_UPDATED, T0, at("active", "price_pro")),
        event("evt_l4", SUB_UPDATED, T0 + 5, at("active", "price_credits")),
        event("evt_l5", SUB_UPDATED, T0 + 5, scheduled),
        event("evt_l6", SUB_PAUSED, T0 + 6, at("paused", "price_credits")),
        event("evt_l7", SUB_RESUMED, T0 + 6, at("active", "price_credits")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_delivery_order_of_a_lifecycle_ends_in_the_state_stripe_holds(
        order in Just(lifecycle()).prop_shuffle(),
        cut in 0usize..7,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let view = rt.block_on(async {
            let (held, s) = with_stripe().await;
            // Stripe's state moves on while some events are still in flight.
            let mut now = subscription_on("sub_life", "life", "price_pro", "active", END);
            held.put_subscription(&now);
            for (i, e) in order.iter().enumerate() {
                if i == cut {
                    now = subscription_on("sub_life", "life", "price_credits", "active", END + 60);
                    now["cancel_at"] = (END + 60).into();
                    held.put_subscription(&now);
                }
                fulfil::process(&s, &e.to_string()).await.unwrap();
            }
            account_of(&s, "life").await.subscription.unwrap()
        });
        prop_assert_eq!(view.status, "active");
        prop_assert_eq!(view.plan_id.as_deref(), Some("pro_credits_monthly"));
        let ends = at(END + 60);
        prop_assert_eq!(view.cancel_at.as_deref(), Some(ends.as_str()));
        prop_assert_eq!(view.current_period_end.as_deref(), Some(ends.as_str()));
    }
}

#[tokio::test]
async fn a_switch_to_a_price_outside_the_catalog_grants_no_plan_whatever_the_metadata_says() {
    let (held, s) = with_stripe().await;
    // Checkout wrote pro_credits_monthly into the metadata; the Portal then moved the
    // subscription to a price the catalog does not sell. The stale metadata must not keep
    // granting the old plan's renewal credits.
    let mut now = subscription_on("sub_off", "offc", "price_not_ours", "active", END);
    now["metadata"]["plan_id"] = "pro_credits_monthly".into();
    held.put_subscription(&now);
    let e = event("evt_off", SUB_UPDATED, T0, now.clone());
    fulfil::process(&s, &e.to_string()).await.unwrap();
    let mut renewal = subscription_invoice(
        "in_off",
        "sub_off",
        "offc",
        "price_not_ours",
        "subscription_cycle",
        4900,
    );
    renewal["parent"]["subscription_details"]["metadata"]["plan_id"] = "pro_credits_monthly".into();
    let e = event("evt_off_paid", INVOICE_PAID, T0 + 1, renewal);
    fulfil::process(&s, &e.to_string()).await.unwrap();
    let a = account_of(&s, "offc").await;
    assert_eq!(
        a.credits.balance, 0,
        "no renewal credits for a price we do not sell"
    );
    let sub = a.subscription.unwrap();
    assert_eq!((sub.status.as_str(), sub.plan_id), ("active", None));
    assert_eq!(a.tier, "paid", "the tier still follows the status");
}

#[tokio::test]
async fn an_event_that_finds_the_account_showing_stripes_state_changes_nothing_and_publishes_nothing()
 {
    use billing_core::store::records::entitlements;
    let (held, s) = with_stripe().await;
    let version = |s: &Services| {
        let table = s.table.clone();
        async move {
            entitlements::load(table.as_ref(), &UserId::parse("same").unwrap())
                .await
                .unwrap()
                .map_or(0, |v| v.version)
        }
    };
    let sub = subscription_on("sub_same", "same", "price_pro", "past_due", END);
    held.put_subscription(&sub);
    let first = event("evt_same_1", SUB_UPDATED, T0, sub.clone());
    assert_eq!(
        fulfil::process(&s, &first.to_string()).await.unwrap(),
        fulfil::Outcome::Applied
    );
    assert_eq!(version(&s).await, 1);
    // Stripe sends a second event of the same change, the first comes back (a timed-out
    // batch), an operator replays it, and an invoice event refreshes the subscription: the
    // account already shows what Stripe holds, so no version is raised, nothing published.
    let second = event("evt_same_2", SUB_UPDATED, T0 + 1, sub.clone());
    for e in [&second, &first] {
        assert_eq!(
            fulfil::process(&s, &e.to_string()).await.unwrap(),
            fulfil::Outcome::AlreadyApplied
        );
    }
    let failed = subscription_invoice(
        "in_same",
        "sub_same",
        "same",
        "price_pro",
        "subscription_cycle",
        0,
    );
    let e = event("evt_same_inv", INVOICE_FAILED, T0 + 2, failed);
    fulfil::process(&s, &e.to_string()).await.unwrap();
    assert_eq!(version(&s).await, 1);
    // A real change still lands and raises it once.
    let mut ended = sub;
    ended["cancel_at"] = END.into();
    held.put_subscription(&ended);
    let third = event("evt_same_3", SUB_UPDATED, T0 + 3, ended);
    fulfil::process(&s, &third.to_string()).await.unwrap();
    assert_eq!(version(&s).await, 2);
}

#[tokio::test]
async fn a_renewal_after_a_switch_grants_the_plan_of_its_period_not_of_its_proration_line() {
    for old in [false, true] {
        let s = memory_services(&PRICES);
        let user = format!("prorated{}", old as u8);
        // Switched from pro_credits_monthly to pro_monthly: the renewal's first line credits
        // the unused time of the old price, the second bills the new price's period.
        let mut renewal = subscription_invoice(
            "in_after_switch",
            "sub_after_switch",
            &user,
            "price_pro",
            "subscription_cycle",
            2900,
        );
        let period = renewal["lines"]["data"][0].clone();
        let mut unused = period.clone();
        unused["pricing"]["price_details"]["price"] = "price_credits".into();
        unused["parent"] = json!({ "type": "subscription_item_details",
            "subscription_item_details": { "proration": true, "subscription": "sub_after_switch" } });
        let mut period = period;
        period["parent"] = json!({ "type": "subscription_item_details",
            "subscription_item_details": { "proration": false, "subscription": "sub_after_switch" } });
        renewal["lines"]["data"] = json!([unused, period]);
        let e = in_shape(old, "evt_after_switch", INVOICE_PAID, T0, &renewal);
        fulfil::process(&s, &e.to_string()).await.unwrap();
        assert_eq!(
            account_of(&s, &user).await.credits.balance,
            0,
            "pro_monthly grants no credits (old shape: {old})"
        );
    }
}

#[tokio::test]
async fn a_renewal_paid_from_the_customers_balance_grants_its_period() {
    let s = memory_services(&PRICES);
    // A downgrade left a credit on the customer's balance; it pays the next cycle in full,
    // so no card is charged (`amount_paid` 0) but the period is paid (`total` 4900).
    let mut renewal = subscription_invoice(
        "in_balance",
        "sub_balance",
        "balanced",
        "price_credits",
        "subscription_cycle",
        0,
    );
    renewal["total"] = 4900.into();
    let e = event("evt_balance", INVOICE_PAID, T0, renewal);
    fulfil::process(&s, &e.to_string()).await.unwrap();
    assert_eq!(account_of(&s, "balanced").await.credits.balance, 2000);
}
