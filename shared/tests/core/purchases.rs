//! Buying without Checkout (docs/api.md, "POST /api/billing/purchases"): the PaymentIntent as
//! Stripe receives it, its fulfilment once in all with a Checkout Session that owns it,
//! a failed payment, the usage check, and an operator's refund.

use billing_core::app::Services;
use billing_core::domain::identity::Identity;
use billing_core::domain::ids::{PaymentIntentId, PlanId, SessionId, UserId};
use billing_core::store::records::profile::ProfileChange;
use billing_core::usecases::account::{AccountView, account};
use billing_core::usecases::admin::{NamedPurchase, RefundError, RefundRequest, refund};
use billing_core::usecases::fulfil::{self, Outcome};
use billing_core::usecases::purchases::{PurchaseError, StartPurchase, start_purchase};
use billing_core::usecases::usage::{self, UsageError, UsageRequest};
use billing_testing::memory_stripe::{MemoryStripe, Method};
use billing_testing::{
    checkout_session, event, memory_services, memory_services_with_stripe, object,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// A fixed time for profiles the tests seed.
fn new_year() -> chrono::DateTime<chrono::Utc> {
    chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, 1, 0, 0, 0).unwrap()
}

const T0: i64 = 1_795_000_000;

fn caller(user: &str) -> Identity {
    billing_testing::caller(user, None)
}

fn operator() -> Identity {
    billing_testing::operator("ops")
}

async fn apply(s: &Services, e: &Value) -> Outcome {
    fulfil::process(s, &e.to_string()).await.unwrap()
}

async fn account_of(s: &Services, u: &str) -> AccountView {
    account(s, &UserId::parse(u).unwrap()).await.unwrap()
}

fn intent(pi: &str, user: &str, plan: &str, quantity: i64, amount: i64) -> Value {
    billing_testing::payment_intent(pi, user, plan, quantity, amount, "succeeded")
}

fn request(plan: &str, quantity: Option<i64>) -> StartPurchase {
    StartPurchase {
        plan: PlanId::parse(plan).unwrap(),
        quantity,
        address: None,
    }
}

async fn with_stripe() -> (Arc<MemoryStripe>, Services) {
    let stripe = Arc::new(MemoryStripe::new());
    let s = memory_services_with_stripe(&stripe, &[("STRIPE_SECRET_KEY", "sk_test_pi")]);
    (stripe, s)
}

#[tokio::test]
async fn a_purchase_creates_a_payment_intent_with_our_metadata_and_a_derived_key() {
    let (stripe, s) = with_stripe().await;
    let done = start_purchase(&s, &caller("pia"), request("uses_20", Some(3)), Some("k1"))
        .await
        .unwrap();
    assert_eq!((done.amount, done.credits), (1500, 60));
    assert!(done.payment_intent_id.starts_with("pi_"));
    assert!(done.client_secret.starts_with(&done.payment_intent_id));
    let again = start_purchase(&s, &caller("pia"), request("uses_20", Some(3)), Some("k1"))
        .await
        .unwrap();
    assert_eq!(
        again.payment_intent_id, done.payment_intent_id,
        "a retried click"
    );

    let creates = stripe.calls_of(Method::CreatePaymentIntent);
    assert_eq!(creates.len(), 2);
    let f = &creates[0].args;
    assert_eq!(f["amount"], 1500);
    assert_eq!(f["currency"], "usd");
    assert_eq!(f["user"], "pia");
    assert_eq!(f["plan"], "uses_20");
    assert_eq!(f["quantity"], 3);
    assert!(f["customer"].is_null(), "no customer is created per click");
    // The PaymentIntent Stripe holds carries our metadata.
    let held = stripe.payment_intent(&done.payment_intent_id).unwrap();
    assert_eq!(
        held["metadata"],
        json!({ "user_id": "pia", "plan_id": "uses_20", "quantity": "3" })
    );
    let key = |c: &billing_testing::memory_stripe::Call| c.idempotency_key.clone();
    assert_eq!(key(&creates[0]), key(&creates[1]));
    assert_ne!(key(&creates[0]).unwrap(), "k1");
}

#[tokio::test]
async fn a_known_customer_is_reused_and_only_credit_packs_are_sold() {
    let (stripe, s) = with_stripe().await;
    let user = UserId::parse("pib").unwrap();
    let linked = ProfileChange::new(&user, new_year())
        .link_customer(&billing_core::domain::ids::CustomerId::parse("cus_pib").unwrap());
    s.table.apply(linked.write()).await.unwrap();
    start_purchase(&s, &caller("pib"), request("credits_starter", None), None)
        .await
        .unwrap();
    let posted = stripe.calls();
    assert_eq!(posted[0].args["customer"], "cus_pib");

    let refused = start_purchase(&s, &caller("pib"), request("pro_monthly", None), None).await;
    assert!(matches!(refused, Err(PurchaseError::UnsupportedPlan(_))));
    let refused = start_purchase(&s, &caller("pib"), request("nope", None), None).await;
    assert!(matches!(refused, Err(PurchaseError::UnknownPlan(_))));
    let refused = start_purchase(&s, &caller("pib"), request("uses_20", Some(0)), None).await;
    assert!(matches!(refused, Err(PurchaseError::InvalidQuantity)));
    let offline = memory_services(&[]);
    let refused = start_purchase(&offline, &caller("pib"), request("uses_20", None), None).await;
    assert!(matches!(refused, Err(PurchaseError::Unavailable(_))));
    assert_eq!(stripe.calls().len(), 1);
}

#[tokio::test]
async fn payment_intent_succeeded_grants_once_however_often_it_arrives() {
    let s = memory_services(&[]);
    let pi = intent("pi_once", "pic", "uses_20", 2, 1000);
    let e = event("evt_pi_once", "payment_intent.succeeded", T0, pi.clone());
    assert_eq!(apply(&s, &e).await, Outcome::Applied);
    assert_eq!(apply(&s, &e).await, Outcome::AlreadyApplied);
    let other = event("evt_pi_once_b", "payment_intent.succeeded", T0 + 1, pi);
    assert_eq!(apply(&s, &other).await, Outcome::AlreadyApplied);
    let a = account_of(&s, "pic").await;
    assert_eq!(a.credits.balance, 40);
    assert_eq!(a.purchases.len(), 1);
    assert_eq!(a.purchases[0].payment_intent_id.as_deref(), Some("pi_once"));
    assert_eq!(a.purchases[0].session_id, None);
    assert_eq!(a.purchases[0].status, "paid");
}

/// A Checkout Session whose PaymentIntent is `pi`.
fn session_paid_by(sid: &str, user: &str, pi: &str) -> Value {
    let mut s = checkout_session(sid, user, "credits_starter", "paid", 1000);
    s["payment_intent"] = json!(pi);
    s
}

#[tokio::test]
async fn a_checkout_payment_intent_is_fulfilled_once_in_all_whichever_event_comes_first() {
    for pi_first in [true, false] {
        let s = memory_services(&[]);
        let user = if pi_first { "pid1" } else { "pid2" };
        let sid = format!("cs_test_{user}");
        let pi = format!("pi_{user}");
        let completed = event(
            &format!("evt_cs_{user}"),
            "checkout.session.completed",
            T0,
            session_paid_by(&sid, user, &pi),
        );
        let succeeded = event(
            &format!("evt_pi_{user}"),
            "payment_intent.succeeded",
            T0,
            intent(&pi, user, "credits_starter", 1, 1000),
        );
        let order = if pi_first {
            [&succeeded, &completed, &succeeded, &completed]
        } else {
            [&completed, &succeeded, &completed, &succeeded]
        };
        for e in order {
            apply(&s, e).await;
        }
        let a = account_of(&s, user).await;
        assert_eq!(a.credits.balance, 1000, "pi first: {pi_first}");
        assert_eq!(a.purchases.len(), 1, "one purchase, pi first: {pi_first}");
        let sid_id = billing_core::domain::ids::SessionId::parse(&sid).unwrap();
        let state = billing_core::usecases::checkout_status::checkout_status(&s, &sid_id)
            .await
            .unwrap();
        assert_eq!(serde_json::to_value(state).unwrap()["state"], "fulfilled");
        let profile = billing_core::store::records::profile::load(
            s.table.as_ref(),
            &UserId::parse(user).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            profile.customer_id.as_deref(),
            Some(format!("cus_{user}").as_str()),
            "the customer Checkout created is linked either way"
        );

        // The purchase refunds find is that one: a full refund takes the credits back.
        let ch = object(
            "charge",
            json!({ "id": format!("ch_{user}"), "payment_intent": pi, "amount": 1000, "amount_refunded": 1000, "refunded": true }),
        );
        apply(
            &s,
            &event(&format!("evt_rf_{user}"), "charge.refunded", T0 + 9, ch),
        )
        .await;
        let a = account_of(&s, user).await;
        assert_eq!(a.credits.balance, 0, "pi first: {pi_first}");
        assert_eq!(a.purchases[0].status, "refunded");
    }
}

#[tokio::test]
async fn a_failed_payment_shows_failed_grants_nothing_and_never_hides_a_later_success() {
    let (_stripe, s) = with_stripe().await;
    let made = start_purchase(&s, &caller("pie"), request("uses_20", None), None)
        .await
        .unwrap();
    let pi = made.payment_intent_id;
    let mut failed = intent(&pi, "pie", "uses_20", 1, 500);
    failed["status"] = json!("requires_payment_method");
    failed["amount_received"] = json!(0);
    let fail = event("evt_pie_fail", "payment_intent.payment_failed", T0, failed);
    assert_eq!(apply(&s, &fail).await, Outcome::Applied);
    let a = account_of(&s, "pie").await;
    assert_eq!(a.credits.balance, 0);
    assert_eq!(a.purchases.len(), 1);
    assert_eq!(a.purchases[0].status, "failed");

    let ok = event(
        "evt_pie_ok",
        "payment_intent.succeeded",
        T0 + 5,
        intent(&pi, "pie", "uses_20", 1, 500),
    );
    assert_eq!(apply(&s, &ok).await, Outcome::Applied);
    let late = event("evt_pie_fail2", "payment_intent.payment_failed", T0 + 6, {
        let mut f = intent(&pi, "pie", "uses_20", 1, 500);
        f["status"] = json!("requires_payment_method");
        f
    });
    apply(&s, &late).await;
    let a = account_of(&s, "pie").await;
    assert_eq!(a.credits.balance, 20);
    assert_eq!(a.purchases.len(), 1);
    assert_eq!(a.purchases[0].status, "paid");
}

#[tokio::test]
async fn the_usage_check_answers_what_consuming_would_and_changes_nothing() {
    let s = memory_services(&[("FREE_USES", "3")]);
    let mut seed: u64 = 0x5eed;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for i in 0..200 {
        let user = UserId::parse(&format!("u{i}")).unwrap();
        let credits = next(40) as i64;
        let used = next(5) as i64;
        let mut change = ProfileChange::new(&user, new_year()).add_credits(credits);
        if used > 0 {
            change = change.spend(used.min(3), 0, 3, &Default::default());
        }
        s.table.apply(change.write()).await.unwrap();
        let units = 1 + next(50) as i64;
        let checked = usage::check(&s, &user, units).await.unwrap();
        let again = usage::check(&s, &user, units).await.unwrap();
        assert_eq!(checked, again, "a check changes nothing");
        let consumed = usage::consume(
            &s,
            &user,
            UsageRequest {
                units,
                idempotency_key: format!("k{i}"),
            },
        )
        .await;
        match consumed {
            Ok(ok) => {
                assert!(checked.allowed, "state {i}");
                assert_eq!(
                    (checked.free_uses_remaining, checked.balance),
                    (ok.free_uses_remaining, ok.balance)
                );
                assert_eq!(checked.purchase, None);
            }
            Err(UsageError::PaymentRequired { plan_id, .. }) => {
                assert!(!checked.allowed, "state {i}");
                assert_eq!(checked.purchase.map(|p| p.plan_id), plan_id);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(usage::parse_units(Some("0")).is_err());
    assert!(usage::parse_units(Some("-1")).is_err());
    assert!(usage::parse_units(Some("x")).is_err());
    assert!(usage::parse_units(None).is_err());
    assert!(usage::parse_units(Some("1000001")).is_err());
    assert_eq!(usage::parse_units(Some("7")).unwrap(), 7);
}

#[tokio::test]
async fn an_operator_refund_goes_to_stripe_once_is_audited_and_bounded_by_what_remains() {
    let (stripe, s) = with_stripe().await;
    let paid = intent("pi_rf", "pif", "credits_starter", 1, 1000);
    stripe.put_payment_intent(&paid);
    apply(
        &s,
        &event("evt_rf_buy", "payment_intent.succeeded", T0, paid),
    )
    .await;
    let by_pi = |amount: Option<i64>| RefundRequest {
        purchase: NamedPurchase::PaymentIntent(PaymentIntentId::parse("pi_rf").unwrap()),
        amount,
        reason: "customer asked".into(),
    };
    let too_much = refund(&s, &operator(), by_pi(Some(1001))).await;
    assert!(matches!(
        too_much,
        Err(RefundError::AmountTooLarge { remaining: 1000 })
    ));
    let first = refund(&s, &operator(), by_pi(Some(400))).await.unwrap();
    assert_eq!((first.amount, first.remaining), (400, 600));
    let retried = refund(&s, &operator(), by_pi(Some(400))).await.unwrap();
    assert_eq!(
        retried.refund_id, first.refund_id,
        "a retried click refunds once"
    );
    let rest = refund(&s, &operator(), by_pi(None)).await.unwrap();
    assert_eq!(rest.amount, 600);
    let done = refund(&s, &operator(), by_pi(None)).await;
    assert!(matches!(done, Err(RefundError::AlreadyRefunded(_))));

    let refunds = stripe.calls_of(Method::RefundPurchase);
    assert_eq!(refunds.len(), 3);
    assert_eq!(refunds[0].args["payment_intent"], "pi_rf");
    assert_eq!(refunds[0].args["amount"], 400);
    assert_eq!(refunds[0].idempotency_key, refunds[1].idempotency_key);
    // Stripe refunded 400 once and the 600 left: all that was paid, no more.
    let made: Vec<i64> = stripe
        .refunds()
        .iter()
        .filter_map(|r| r["amount"].as_i64())
        .collect();
    assert_eq!(made, [400, 600]);
    let audit = s.table.query("USER#pif", "REFUND#pi_rf#").await.unwrap();
    assert_eq!(audit.len(), 2);
    assert!(
        audit
            .iter()
            .all(|a| a.get("operator") == Some(&"ops".into()))
    );

    let unknown = RefundRequest {
        purchase: NamedPurchase::Session(SessionId::parse("cs_test_never").unwrap()),
        amount: None,
        reason: "x".into(),
    };
    assert!(matches!(
        refund(&s, &operator(), unknown).await,
        Err(RefundError::UnknownPurchase(_))
    ));
    // The credits stay until Stripe's charge.refunded arrives.
    assert_eq!(account_of(&s, "pif").await.credits.balance, 1000);
}
