//! The worker's fulfilment rules (docs/api.md, Fulfilment), one test per rule, on in-memory
//! adapters; the same code runs against DynamoDB in the black-box suite.

use billing_core::app::Services;
use billing_core::domain::checkout_state::CheckoutState;
use billing_core::domain::entitlement::Tier;
use billing_core::domain::ids::{EventId, SessionId, UserId};
use billing_core::store::ItemExt;
use billing_core::store::records;
use billing_core::usecases::account::{AccountView, account};
use billing_core::usecases::checkout_status::checkout_status;
use billing_core::usecases::fulfil::{self, FulfilError, Outcome};
use billing_testing::{checkout_session, event, memory_services, subscription};
use serde_json::json;

const T0: i64 = 1_795_000_000;

async fn apply(s: &Services, e: &serde_json::Value) -> Result<Outcome, FulfilError> {
    fulfil::process(s, &e.to_string()).await
}

async fn account_of(s: &Services, user: &str) -> AccountView {
    account(s, &UserId::parse(user).unwrap()).await.unwrap()
}

async fn state_of(s: &Services, session: &str) -> CheckoutState {
    checkout_status(s, &SessionId::parse(session).unwrap())
        .await
        .unwrap()
        .state
}

async fn record_status(s: &Services, id: &str) -> String {
    let item = s
        .table
        .get(&records::event::key(&EventId::parse(id).unwrap()))
        .await
        .unwrap()
        .unwrap();
    item.str("status").unwrap().to_owned()
}

fn completed(
    id: &str,
    session: &str,
    user: &str,
    plan: &str,
    payment_status: &str,
    amount: i64,
) -> serde_json::Value {
    event(
        id,
        "checkout.session.completed",
        T0,
        checkout_session(session, user, plan, payment_status, amount),
    )
}

#[tokio::test]
async fn a_paid_credit_pack_grants_its_credits_and_fulfils_the_checkout() {
    let s = memory_services(&[]);
    let e = completed(
        "evt_c1",
        "cs_test_c1",
        "u1",
        "credits_starter",
        "paid",
        1000,
    );
    assert_eq!(apply(&s, &e).await.unwrap(), Outcome::Applied);
    let a = account_of(&s, "u1").await;
    assert_eq!(a.credits.balance, 1000);
    assert_eq!(a.purchases.len(), 1);
    assert_eq!(
        (
            a.purchases[0].plan_id.as_str(),
            a.purchases[0].amount,
            a.purchases[0].status.as_str()
        ),
        ("credits_starter", 1000, "paid")
    );
    assert_eq!(state_of(&s, "cs_test_c1").await, CheckoutState::Fulfilled);
    assert_eq!(record_status(&s, "evt_c1").await, "processed");
}

#[tokio::test]
async fn redelivery_of_the_same_event_grants_nothing_more() {
    let s = memory_services(&[]);
    let e = completed(
        "evt_c2",
        "cs_test_c2",
        "u2",
        "credits_starter",
        "paid",
        1000,
    );
    apply(&s, &e).await.unwrap();
    assert_eq!(apply(&s, &e).await.unwrap(), Outcome::AlreadyApplied);
    assert_eq!(account_of(&s, "u2").await.credits.balance, 1000);
}

#[tokio::test]
async fn completed_and_async_succeeded_for_one_session_grant_once() {
    let s = memory_services(&[]);
    let session = checkout_session("cs_test_c3", "u3", "uses_20", "paid", 500);
    apply(
        &s,
        &event("evt_c3a", "checkout.session.completed", T0, session.clone()),
    )
    .await
    .unwrap();
    let second = apply(
        &s,
        &event(
            "evt_c3b",
            "checkout.session.async_payment_succeeded",
            T0 + 1,
            session,
        ),
    )
    .await;
    assert_eq!(second.unwrap(), Outcome::AlreadyApplied);
    assert_eq!(account_of(&s, "u3").await.credits.balance, 20);
    assert_eq!(record_status(&s, "evt_c3b").await, "processed");
}

#[tokio::test]
async fn an_unpaid_completion_waits_for_the_async_result_then_fulfils() {
    let s = memory_services(&[]);
    apply(
        &s,
        &completed("evt_a1", "cs_test_a1", "u4", "uses_20", "unpaid", 500),
    )
    .await
    .unwrap();
    assert_eq!(state_of(&s, "cs_test_a1").await, CheckoutState::Paid);
    assert_eq!(account_of(&s, "u4").await.credits.balance, 0);
    let ok = checkout_session("cs_test_a1", "u4", "uses_20", "paid", 500);
    apply(
        &s,
        &event(
            "evt_a2",
            "checkout.session.async_payment_succeeded",
            T0 + 60,
            ok,
        ),
    )
    .await
    .unwrap();
    assert_eq!(state_of(&s, "cs_test_a1").await, CheckoutState::Fulfilled);
    assert_eq!(account_of(&s, "u4").await.credits.balance, 20);
}

#[tokio::test]
async fn an_async_failure_grants_nothing_and_marks_the_checkout_failed() {
    let s = memory_services(&[]);
    apply(
        &s,
        &completed("evt_f1", "cs_test_f1", "u5", "uses_20", "unpaid", 500),
    )
    .await
    .unwrap();
    let failed = checkout_session("cs_test_f1", "u5", "uses_20", "unpaid", 500);
    apply(
        &s,
        &event(
            "evt_f2",
            "checkout.session.async_payment_failed",
            T0 + 60,
            failed,
        ),
    )
    .await
    .unwrap();
    assert_eq!(state_of(&s, "cs_test_f1").await, CheckoutState::Failed);
    assert_eq!(account_of(&s, "u5").await.credits.balance, 0);
}

#[tokio::test]
async fn a_late_unpaid_completion_never_moves_a_fulfilled_checkout_back() {
    let s = memory_services(&[]);
    let ok = checkout_session("cs_test_l1", "u6", "uses_20", "paid", 500);
    apply(
        &s,
        &event(
            "evt_l2",
            "checkout.session.async_payment_succeeded",
            T0 + 60,
            ok,
        ),
    )
    .await
    .unwrap();
    let late = apply(
        &s,
        &completed("evt_l1", "cs_test_l1", "u6", "uses_20", "unpaid", 500),
    )
    .await
    .unwrap();
    assert_eq!(late, Outcome::AlreadyApplied);
    assert_eq!(state_of(&s, "cs_test_l1").await, CheckoutState::Fulfilled);
    let failed = checkout_session("cs_test_l1", "u6", "uses_20", "unpaid", 500);
    apply(
        &s,
        &event(
            "evt_l3",
            "checkout.session.async_payment_failed",
            T0 + 61,
            failed,
        ),
    )
    .await
    .unwrap();
    assert_eq!(state_of(&s, "cs_test_l1").await, CheckoutState::Fulfilled);
    assert_eq!(account_of(&s, "u6").await.credits.balance, 20);
}

#[tokio::test]
async fn an_expired_session_shows_expired_and_grants_nothing() {
    let s = memory_services(&[]);
    let mut session = checkout_session("cs_test_e1", "u7", "credits_basic", "unpaid", 4500);
    session["status"] = json!("expired");
    apply(
        &s,
        &event("evt_e1", "checkout.session.expired", T0, session),
    )
    .await
    .unwrap();
    assert_eq!(state_of(&s, "cs_test_e1").await, CheckoutState::Expired);
    assert_eq!(account_of(&s, "u7").await.credits.balance, 0);
}

#[tokio::test]
async fn a_service_purchase_is_recorded_without_credits_or_tier() {
    let s = memory_services(&[]);
    apply(
        &s,
        &completed("evt_s1", "cs_test_s1", "u8", "deposit_500", "paid", 50000),
    )
    .await
    .unwrap();
    let a = account_of(&s, "u8").await;
    assert_eq!((a.credits.balance, a.tier), (0, Tier::Free));
    assert_eq!(a.purchases[0].amount, 50000);
}

#[tokio::test]
async fn quantity_multiplies_a_credit_pack() {
    let s = memory_services(&[]);
    let mut session = checkout_session("cs_test_q1", "u9", "uses_20", "paid", 1500);
    session["metadata"]["quantity"] = json!("3");
    apply(
        &s,
        &event("evt_q1", "checkout.session.completed", T0, session),
    )
    .await
    .unwrap();
    assert_eq!(account_of(&s, "u9").await.credits.balance, 60);
}

#[tokio::test]
async fn an_event_for_an_unknown_plan_fails_visibly_and_changes_no_account() {
    let s = memory_services(&[]);
    let e = completed("evt_u1", "cs_test_u1", "u10", "no_such_plan", "paid", 100);
    assert!(matches!(
        apply(&s, &e).await,
        Err(FulfilError::UnknownPlan(_))
    ));
    assert_eq!(record_status(&s, "evt_u1").await, "failed");
    assert_eq!(account_of(&s, "u10").await.credits.balance, 0);
    assert_eq!(state_of(&s, "cs_test_u1").await, CheckoutState::Unknown);
}

#[tokio::test]
async fn a_session_that_names_no_account_grants_nothing_and_is_listed_unclaimed() {
    let s = memory_services(&[]);
    let mut session = checkout_session("cs_test_n1", "u11", "uses_20", "paid", 500);
    session["metadata"] = json!({ "plan_id": "uses_20" });
    session["client_reference_id"] = serde_json::Value::Null;
    let e = event("evt_n1", "checkout.session.completed", T0, session);
    assert_eq!(apply(&s, &e).await.unwrap(), Outcome::Applied);
    assert_eq!(record_status(&s, "evt_n1").await, "unclaimed");
    assert_eq!(account_of(&s, "u11").await.credits.balance, 0);
    // Replayed, it stays unclaimed and still grants nothing.
    assert_eq!(apply(&s, &e).await.unwrap(), Outcome::Applied);
    assert_eq!(record_status(&s, "evt_n1").await, "unclaimed");
    assert_eq!(account_of(&s, "u11").await.credits.balance, 0);
}

fn sub_event(id: &str, kind: &str, created: i64, status: &str) -> serde_json::Value {
    event(
        id,
        kind,
        created,
        subscription("sub_1", "su", "pro_monthly", status, T0 + 30 * 86400),
    )
}

#[tokio::test]
async fn an_active_subscription_gives_the_paid_tier_with_its_plan() {
    let s = memory_services(&[]);
    apply(
        &s,
        &sub_event("evt_s_c", "customer.subscription.created", T0, "active"),
    )
    .await
    .unwrap();
    let a = account_of(&s, "su").await;
    assert_eq!(
        (a.tier, a.plan_id.as_deref()),
        (Tier::Paid, Some("pro_monthly"))
    );
    let sub = a.subscription.unwrap();
    assert_eq!((sub.id.as_str(), sub.status.as_str()), ("sub_1", "active"));
    assert!(sub.current_period_end.is_some());
}

#[tokio::test]
async fn trialing_and_past_due_keep_the_tier_and_canceled_unpaid_expired_drop_it() {
    for (status, tier) in [
        ("trialing", "paid"),
        ("past_due", "paid"),
        ("canceled", "free"),
        ("unpaid", "free"),
        ("incomplete_expired", "free"),
    ] {
        let s = memory_services(&[]);
        apply(
            &s,
            &sub_event("evt_t1", "customer.subscription.created", T0, "active"),
        )
        .await
        .unwrap();
        apply(
            &s,
            &sub_event("evt_t2", "customer.subscription.updated", T0 + 10, status),
        )
        .await
        .unwrap();
        assert_eq!(account_of(&s, "su").await.tier, tier, "{status}");
    }
}

#[tokio::test]
async fn a_status_a_newer_api_version_adds_is_applied_as_unrecognized_and_keeps_no_tier() {
    let s = memory_services(&[]);
    apply(
        &s,
        &sub_event("evt_u1", "customer.subscription.created", T0, "active"),
    )
    .await
    .unwrap();
    let outcome = apply(
        &s,
        &sub_event(
            "evt_u2",
            "customer.subscription.updated",
            T0 + 10,
            "on_hold",
        ),
    )
    .await;
    assert_eq!(outcome.unwrap(), Outcome::Applied);
    let a = account_of(&s, "su").await;
    assert_eq!(
        (a.tier, a.subscription.unwrap().status.as_str()),
        (Tier::Free, "unrecognized")
    );
    assert_eq!(record_status(&s, "evt_u2").await, "processed");
}

#[tokio::test]
async fn created_then_deleted_then_a_stale_update_ends_free() {
    let s = memory_services(&[]);
    apply(
        &s,
        &sub_event("evt_d1", "customer.subscription.created", T0, "active"),
    )
    .await
    .unwrap();
    apply(
        &s,
        &sub_event(
            "evt_d2",
            "customer.subscription.deleted",
            T0 + 200,
            "canceled",
        ),
    )
    .await
    .unwrap();
    let stale = apply(
        &s,
        &sub_event(
            "evt_d3",
            "customer.subscription.updated",
            T0 + 100,
            "active",
        ),
    )
    .await
    .unwrap();
    assert_eq!(stale, Outcome::AlreadyApplied);
    let a = account_of(&s, "su").await;
    assert_eq!(
        (a.tier, a.subscription.unwrap().status.as_str()),
        (Tier::Free, "canceled")
    );
    assert_eq!(record_status(&s, "evt_d3").await, "processed");
}

#[tokio::test]
async fn a_same_second_update_cannot_revive_a_canceled_subscription() {
    let s = memory_services(&[]);
    apply(
        &s,
        &sub_event("evt_z1", "customer.subscription.deleted", T0, "canceled"),
    )
    .await
    .unwrap();
    apply(
        &s,
        &sub_event("evt_z2", "customer.subscription.updated", T0, "active"),
    )
    .await
    .unwrap();
    assert_eq!(account_of(&s, "su").await.tier, "free");
}

#[tokio::test]
async fn a_subscription_without_our_metadata_finds_its_user_through_the_customer() {
    let s = memory_services(&[]);
    // The customer became known through a completed checkout.
    apply(
        &s,
        &completed("evt_k1", "cs_test_k1", "ku", "uses_20", "paid", 500),
    )
    .await
    .unwrap();
    let mut sub = subscription("sub_k", "ku", "pro_monthly", "active", T0 + 1000);
    sub["metadata"] = json!({});
    apply(
        &s,
        &event("evt_k2", "customer.subscription.created", T0, sub),
    )
    .await
    .unwrap();
    assert_eq!(account_of(&s, "ku").await.tier, "paid");
}

#[tokio::test]
async fn an_unknown_customer_without_metadata_fails_visibly() {
    let s = memory_services(&[]);
    let mut sub = subscription("sub_x", "nobody", "pro_monthly", "active", T0 + 1000);
    sub["metadata"] = json!({});
    let r = apply(
        &s,
        &event("evt_x1", "customer.subscription.created", T0, sub),
    )
    .await;
    assert!(matches!(r, Err(FulfilError::NoUser)));
    assert_eq!(record_status(&s, "evt_x1").await, "failed");
}

#[tokio::test]
async fn a_message_that_is_not_an_event_is_refused() {
    let s = memory_services(&[]);
    assert!(matches!(
        fulfil::process(&s, "{]").await,
        Err(FulfilError::InvalidEvent(_))
    ));
}

#[tokio::test]
async fn a_user_never_seen_is_a_free_account_with_the_configured_free_uses() {
    let s = memory_services(&[("FREE_USES", "5")]);
    let a = account_of(&s, "newcomer").await;
    assert_eq!(
        (a.tier, a.credits.balance, a.credits.free_uses_remaining),
        (Tier::Free, 0, 5)
    );
    assert!(a.subscription.is_none() && a.purchases.is_empty() && a.credit_until.is_none());
}
