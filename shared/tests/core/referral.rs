//! Referrals: codes, claims and their errors, and the 45-day reward on a first payment.

use billing_core::domain::ids::UserId;
use billing_core::edge::runtime::Services;
use billing_core::usecases::account::{AccountView, account};
use billing_core::usecases::fulfil;
use billing_core::usecases::referral::{self, ClaimRequest, ReferralError};
use billing_testing::{checkout_session, event, memory_services, subscription};
use chrono::{DateTime, Utc};

const T0: i64 = 1_795_000_000;

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

async fn view(s: &Services, u: &str) -> AccountView {
    account(s, &user(u)).await.unwrap()
}

async fn claim(s: &Services, u: &str, code: &str) -> Result<String, ReferralError> {
    referral::claim(s, &user(u), ClaimRequest { code: code.into() })
        .await
        .map(|o| o.referred_by)
}

async fn pay(s: &Services, id: &str, u: &str) {
    let session = checkout_session(&format!("cs_test_{id}"), u, "uses_20", "paid", 500);
    fulfil::process(
        s,
        &event(id, "checkout.session.completed", T0, session).to_string(),
    )
    .await
    .unwrap();
}

fn days_from_now(until: &str) -> i64 {
    (DateTime::parse_from_rfc3339(until)
        .unwrap()
        .with_timezone(&Utc)
        - Utc::now())
    .num_hours()
    .div_euclid(24)
}

#[tokio::test]
async fn every_account_has_a_stable_unguessable_code() {
    let s = memory_services(&[]);
    let a = view(&s, "ref_a").await.referral.code.unwrap();
    assert_eq!(
        view(&s, "ref_a").await.referral.code.unwrap(),
        a,
        "created once"
    );
    let b = view(&s, "ref_b").await.referral.code.unwrap();
    assert_ne!(a, b);
    assert_eq!(a.len(), referral::CODE_LEN);
}

#[tokio::test]
async fn claims_refuse_self_unknown_second_and_after_payment() {
    let s = memory_services(&[]);
    let code = view(&s, "owner").await.referral.code.unwrap();
    assert!(matches!(
        claim(&s, "owner", &code).await,
        Err(ReferralError::SelfReferral)
    ));
    assert!(matches!(
        claim(&s, "newbie", "ZZZZZZZZZZ").await,
        Err(ReferralError::UnknownCode)
    ));
    assert!(matches!(
        claim(&s, "newbie", "not a code").await,
        Err(ReferralError::UnknownCode)
    ));
    assert_eq!(
        claim(&s, "newbie", &code.to_lowercase()).await.unwrap(),
        code,
        "codes are case-insensitive"
    );
    assert_eq!(
        view(&s, "newbie").await.referral.referred_by.as_deref(),
        Some(code.as_str())
    );
    let other = view(&s, "other").await.referral.code.unwrap();
    assert!(matches!(
        claim(&s, "newbie", &other).await,
        Err(ReferralError::AlreadyReferred)
    ));
    pay(&s, "evt_p1", "payer").await;
    assert!(matches!(
        claim(&s, "payer", &code).await,
        Err(ReferralError::AlreadyPaid)
    ));
}

#[tokio::test]
async fn a_first_payment_gives_both_45_days_once_and_conversions_stack() {
    let s = memory_services(&[]);
    let code = view(&s, "host").await.referral.code.unwrap();
    claim(&s, "guest1", &code).await.unwrap();
    claim(&s, "guest2", &code).await.unwrap();
    pay(&s, "evt_g1", "guest1").await;
    let g1 = view(&s, "guest1").await;
    assert_eq!(
        (g1.tier, days_from_now(g1.credit_until.as_deref().unwrap())),
        ("paid", 44)
    );
    let host = view(&s, "host").await;
    assert_eq!(
        (
            host.referral.conversions,
            days_from_now(host.credit_until.as_deref().unwrap())
        ),
        (1, 44)
    );
    // Replaying the triggering event, or a second purchase, extends nothing again.
    pay(&s, "evt_g1", "guest1").await;
    pay(&s, "evt_g1b", "guest1").await;
    assert_eq!(view(&s, "host").await.referral.conversions, 1);
    // The second referred user's first payment stacks 45 more days on the host's.
    pay(&s, "evt_g2", "guest2").await;
    let host = view(&s, "host").await;
    assert_eq!(
        (
            host.referral.conversions,
            days_from_now(host.credit_until.as_deref().unwrap())
        ),
        (2, 89)
    );
}

#[tokio::test]
async fn a_first_active_subscription_also_rewards() {
    let s = memory_services(&[]);
    let code = view(&s, "subhost").await.referral.code.unwrap();
    claim(&s, "subguest", &code).await.unwrap();
    let sub = subscription("sub_rg", "subguest", "pro_monthly", "active", T0 + 1000);
    fulfil::process(
        &s,
        &event("evt_rs", "customer.subscription.created", T0, sub).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(view(&s, "subhost").await.referral.conversions, 1);
}

#[tokio::test]
async fn a_missing_referrer_does_not_block_the_buyers_reward() {
    let s = memory_services(&[]);
    let code = view(&s, "gone").await.referral.code.unwrap();
    claim(&s, "left_behind", &code).await.unwrap();
    // The referrer's account is deleted (its profile removed).
    s.table
        .transact(vec![billing_core::store::Write::Delete {
            key: billing_core::store::records::profile::key(&user("gone")),
            cond: None,
        }])
        .await
        .unwrap();
    pay(&s, "evt_lb", "left_behind").await;
    let buyer = view(&s, "left_behind").await;
    assert_eq!(buyer.tier, "paid");
    assert!(buyer.credit_until.is_some());
}
