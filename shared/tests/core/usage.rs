//! Usage metering: free uses first, then credits; never overdrawn; once per key.

use billing_core::app::Services;
use billing_core::domain::ids::UserId;
use billing_core::inbound::http::ApiError;
use billing_core::store::Op;
use billing_core::store::{records, schema};
use billing_core::usecases::account::account;
use billing_core::usecases::usage::{self, UsageAllowed, UsageError, UsageRequest};
use billing_testing::memory_services;
use std::sync::Arc;

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

async fn give_credits(s: &Services, u: &str, n: i64) {
    s.table
        .update(
            &records::profile::key(&user(u)),
            vec![Op::add("credits", n)],
            None,
        )
        .await
        .unwrap();
}

async fn spend(s: &Services, u: &str, units: i64, key: &str) -> Result<UsageAllowed, UsageError> {
    usage::consume(
        s,
        &user(u),
        UsageRequest {
            units,
            idempotency_key: key.into(),
        },
    )
    .await
}

#[tokio::test]
async fn free_uses_go_first_then_credits() {
    let s = memory_services(&[("FREE_USES", "3")]);
    give_credits(&s, "ann", 5).await;
    let a = spend(&s, "ann", 2, "k1").await.unwrap();
    assert_eq!((a.free_uses_remaining, a.balance), (1, 5));
    let b = spend(&s, "ann", 3, "k2").await.unwrap();
    assert_eq!(
        (b.free_uses_remaining, b.balance),
        (0, 3),
        "one free use, then two credits"
    );
    let c = spend(&s, "ann", 3, "k3").await.unwrap();
    assert_eq!((c.free_uses_remaining, c.balance), (0, 0));
    let view = account(&s, &user("ann")).await.unwrap();
    assert_eq!(
        (view.credits.free_uses_remaining, view.credits.balance),
        (0, 0)
    );
}

#[tokio::test]
async fn not_enough_is_402_naming_a_plan_that_covers_it_and_changes_nothing() {
    let s = memory_services(&[("FREE_USES", "1")]);
    give_credits(&s, "bo", 2).await;
    let err = spend(&s, "bo", 30, "k").await.unwrap_err();
    let api = ApiError::from(err);
    assert_eq!((api.status, api.code), (402, "payment_required"));
    let body: serde_json::Value =
        serde_json::from_slice(api.into_response().body().as_ref()).unwrap();
    assert_eq!(
        body["purchase"]["plan_id"], "credits_starter",
        "27 credits short: the cheapest pack covering it"
    );
    let view = account(&s, &user("bo")).await.unwrap();
    assert_eq!(
        (view.credits.free_uses_remaining, view.credits.balance),
        (1, 2)
    );
}

#[tokio::test]
async fn the_same_key_twice_consumes_once_and_returns_the_first_answer() {
    let s = memory_services(&[("FREE_USES", "0")]);
    give_credits(&s, "cy", 10).await;
    let first = spend(&s, "cy", 4, "same").await.unwrap();
    let again = spend(&s, "cy", 4, "same").await.unwrap();
    assert_eq!(first, again);
    assert_eq!(account(&s, &user("cy")).await.unwrap().credits.balance, 6);
    // Keys belong to their user: another user's same key is a different call.
    give_credits(&s, "di", 10).await;
    assert_eq!(spend(&s, "di", 4, "same").await.unwrap().balance, 6);
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let s = memory_services(&[]);
    for (units, key) in [
        (0, "k"),
        (-3, "k"),
        (1, ""),
        (1, &"x".repeat(129)[..]),
        (1, "has space"),
    ] {
        assert!(
            matches!(
                spend(&s, "ed", units, key).await,
                Err(UsageError::InvalidRequest(_))
            ),
            "{units} {key:?}"
        );
    }
    assert!(
        s.table
            .query(&schema::user_pk(&user("ed")), "")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn fifty_concurrent_calls_against_ten_credits_allow_exactly_ten() {
    let s = Arc::new(memory_services(&[("FREE_USES", "0")]));
    give_credits(&s, "flo", 10).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { spend(&s, "flo", 1, &format!("k{i}")).await })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => allowed += 1,
            Err(UsageError::PaymentRequired { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(allowed, 10);
    assert_eq!(account(&s, &user("flo")).await.unwrap().credits.balance, 0);
}

#[tokio::test]
async fn concurrent_calls_split_between_free_uses_and_credits_never_overdraw() {
    let s = Arc::new(memory_services(&[("FREE_USES", "3")]));
    give_credits(&s, "gia", 4).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { spend(&s, "gia", 2, &format!("k{i}")).await.is_ok() })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += t.await.unwrap() as i64;
    }
    let view = account(&s, &user("gia")).await.unwrap();
    assert_eq!(
        allowed * 2,
        7 - view.credits.free_uses_remaining - view.credits.balance
    );
    assert!(
        view.credits.balance >= 0 && allowed == 3,
        "7 units cover three calls of 2: {allowed}"
    );
}
