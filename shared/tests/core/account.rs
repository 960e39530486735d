//! The account read: what it shows, and that it reads only that, however long the history.

use billing_core::app::Services;
use billing_core::domain::ids::{PurchaseId, UserId};
use billing_core::store::records::purchase::{self, Paid};
use billing_core::usecases::account::{AccountError, PURCHASES_PAGE, account, account_page};
use billing_core::usecases::usage::{self, UsageRequest};
use billing_testing::memory_services;

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

/// `n` paid purchases of credit packs, one a minute, `cs_test_p000` the oldest.
async fn purchases(s: &Services, u: &str, n: usize) {
    for i in 0..n {
        let paid = Paid {
            plan_id: "credits_starter".into(),
            amount: 1000,
            currency: "usd".into(),
            credits: 1000,
            quantity: 1,
            payment_intent: None,
            at: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 1, 0, 0, 0).unwrap()
                + chrono::Duration::minutes(i as i64),
        };
        let session = PurchaseId::parse(&format!("cs_test_p{i:03}")).unwrap();
        s.table
            .apply(purchase::paid(&user(u), &session, &paid))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_account_shows_its_latest_purchases_and_a_cursor_to_the_older_ones() {
    let s = memory_services(&[]);
    purchases(&s, "pam", PURCHASES_PAGE + 5).await;
    let first = account(&s, &user("pam")).await.unwrap();
    assert_eq!(first.purchases.len(), PURCHASES_PAGE);
    assert_eq!(
        first.purchases[0].session_id.as_deref(),
        Some("cs_test_p024"),
        "newest first"
    );
    let cursor = first.purchases_next.expect("older purchases follow");

    let older = account_page(&s, &user("pam"), Some(&cursor)).await.unwrap();
    let ids: Vec<&str> = older
        .purchases
        .iter()
        .filter_map(|p| p.session_id.as_deref())
        .collect();
    assert_eq!(
        ids,
        [
            "cs_test_p004",
            "cs_test_p003",
            "cs_test_p002",
            "cs_test_p001",
            "cs_test_p000"
        ]
    );
    assert_eq!(older.purchases_next, None);
}

#[tokio::test]
async fn an_account_with_few_purchases_has_no_cursor() {
    let s = memory_services(&[]);
    purchases(&s, "pia", 2).await;
    let view = account(&s, &user("pia")).await.unwrap();
    assert_eq!((view.purchases.len(), view.purchases_next), (2, None));
}

#[tokio::test]
async fn a_cursor_this_api_never_gave_is_refused() {
    let s = memory_services(&[]);
    let err = account_page(&s, &user("pat"), Some("not-a-cursor")).await;
    assert!(matches!(err, Err(AccountError::InvalidCursor)));
}

#[tokio::test]
async fn usage_history_does_not_change_what_the_account_shows() {
    let s = memory_services(&[("FREE_USES", "50")]);
    for i in 0..40 {
        let req = UsageRequest {
            units: 1,
            idempotency_key: format!("k{i}"),
        };
        usage::consume(&s, &user("uma"), req).await.unwrap();
    }
    let view = account(&s, &user("uma")).await.unwrap();
    assert_eq!(view.credits.free_uses_remaining, 10);
    assert!(view.purchases.is_empty());
}
