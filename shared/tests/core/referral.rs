//! Referrals: codes, claims and their errors, and the 45-day reward on the referred user's
//! first subscription invoice with money paid (never a $0 invoice, a status, a pack), taken
//! back with that invoice's charge; in both API shapes.

use billing_core::app::Services;
use billing_core::domain::entitlement::Tier;
use billing_core::domain::ids::UserId;
use billing_core::usecases::account::{AccountView, account};
use billing_core::usecases::fulfil;
use billing_core::usecases::referral::{self, ClaimRequest, ReferralError};
use billing_testing::{
    checkout_session, event, memory_services, object, old_event, subscription, subscription_invoice,
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

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

async fn apply(s: &Services, e: &Value) {
    fulfil::process(s, &e.to_string()).await.unwrap();
}

/// `u` buys the cheapest pack: money paid, but no subscription.
async fn buy_pack(s: &Services, id: &str, u: &str) {
    let session = checkout_session(&format!("cs_test_{id}"), u, "uses_20", "paid", 500);
    apply(s, &event(id, "checkout.session.completed", T0, session)).await;
}

/// `u` pays a subscription invoice (`id` names it) of $29.
async fn pay(s: &Services, id: &str, u: &str) {
    let invoice = subscription_invoice(
        &format!("in_{id}"),
        &format!("sub_{u}"),
        u,
        "price_ref",
        "subscription_cycle",
        2900,
    );
    apply(s, &event(id, "invoice.paid", T0, invoice)).await;
}

fn rewarded(v: &AccountView) -> bool {
    v.credit_until
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t > Utc::now())
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
    buy_pack(&s, "evt_p1", "payer").await;
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
        (Tier::Paid, 44)
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
async fn a_status_a_free_invoice_or_a_pack_earns_no_reward() {
    let s = memory_services(&[]);
    let code = view(&s, "subhost").await.referral.code.unwrap();
    claim(&s, "subguest", &code).await.unwrap();
    let sub = subscription("sub_rg", "subguest", "pro_monthly", "active", T0 + 1000);
    apply(
        &s,
        &event("evt_rs", "customer.subscription.created", T0, sub),
    )
    .await;
    let free = subscription_invoice(
        "in_rg_0",
        "sub_rg",
        "subguest",
        "price_ref",
        "subscription_create",
        0,
    );
    apply(&s, &event("evt_rs0", "invoice.paid", T0 + 1, free)).await;
    buy_pack(&s, "evt_rs_pack", "subguest").await;
    assert_eq!(view(&s, "subhost").await.referral.conversions, 0);
    assert!(!rewarded(&view(&s, "subguest").await));
    assert!(!rewarded(&view(&s, "subhost").await));
}

/// A trial subscription's events in the shapes before 2025-03-31: the invoice names its
/// subscription and PaymentIntent at the top, the charge names its invoice.
#[tokio::test]
async fn a_trials_first_paid_cycle_rewards_and_its_refund_takes_it_back_before_2025_03_31() {
    let s = memory_services(&[]);
    let code = view(&s, "oldhost").await.referral.code.unwrap();
    claim(&s, "oldguest", &code).await.unwrap();
    let trial = subscription_invoice(
        "in_old_t0",
        "sub_old",
        "oldguest",
        "price_ref",
        "subscription_create",
        0,
    );
    apply(&s, &old_event("evt_ot0", "invoice.paid", T0, &trial)).await;
    assert!(!rewarded(&view(&s, "oldguest").await), "$0 earns nothing");
    let mut cycle = subscription_invoice(
        "in_old_t1",
        "sub_old",
        "oldguest",
        "price_ref",
        "subscription_cycle",
        29000,
    );
    cycle["payment_intent"] = "pi_old_t1".into();
    let cycle = old_event("evt_ot1", "invoice.paid", T0 + 100, &cycle);
    assert_eq!(cycle["data"]["object"]["subscription"], "sub_old");
    apply(&s, &cycle).await;
    assert!(rewarded(&view(&s, "oldguest").await));
    assert_eq!(view(&s, "oldhost").await.referral.conversions, 1);
    let charge = object(
        "charge",
        json!({ "id": "ch_old_t1", "payment_intent": "pi_old_t1", "invoice": "in_old_t1",
                "amount": 29000, "amount_refunded": 29000 }),
    );
    apply(&s, &event("evt_otr", "charge.refunded", T0 + 200, charge)).await;
    assert!(!rewarded(&view(&s, "oldguest").await));
    let host = view(&s, "oldhost").await;
    assert!(!rewarded(&host));
    assert_eq!(host.referral.conversions, 0);
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

/// `referrer` and `buyer`, the buyer having claimed the referrer's code.
async fn referred(s: &Services, referrer: &str, buyer: &str) {
    let code = view(s, referrer).await.referral.code.unwrap();
    claim(s, buyer, &code).await.unwrap();
}

fn refund_of(pi: &str, invoice: Option<&str>, amount: i64, total: i64) -> Value {
    let mut charge = object(
        "charge",
        json!({ "id": format!("ch_{pi}"), "payment_intent": pi, "amount": amount,
                "amount_refunded": total }),
    );
    if let Some(i) = invoice {
        charge["invoice"] = i.into();
    }
    charge
}

fn dispute_of(pi: &str, status: &str, amount: i64) -> Value {
    object(
        "dispute",
        json!({ "id": format!("dp_{pi}"), "amount": amount, "status": status,
                "payment_intent": pi }),
    )
}

#[tokio::test]
async fn a_refund_before_its_first_paid_invoice_leaves_no_reward_before_2025_03_31() {
    let s = memory_services(&[]);
    referred(&s, "early_host", "early_guest").await;
    // Stripe delivers the refund first; the charge names its invoice (the old shape).
    let refund = refund_of("pi_early", Some("in_early"), 2900, 2900);
    apply(&s, &event("evt_er_ref", "charge.refunded", T0 + 50, refund)).await;
    let mut paid = subscription_invoice(
        "in_early",
        "sub_early",
        "early_guest",
        "price_ref",
        "subscription_create",
        2900,
    );
    paid["payment_intent"] = "pi_early".into();
    apply(&s, &old_event("evt_er_inv", "invoice.paid", T0, &paid)).await;
    assert!(!rewarded(&view(&s, "early_guest").await));
    let host = view(&s, "early_host").await;
    assert!(!rewarded(&host));
    assert_eq!(host.referral.conversions, 0);
    // The reward was this payment's: a later paid invoice does not earn a second one.
    pay(&s, "evt_er_next", "early_guest").await;
    assert!(!rewarded(&view(&s, "early_guest").await));
    // A refund redelivered changes nothing.
    let again = refund_of("pi_early", Some("in_early"), 2900, 2900);
    apply(&s, &event("evt_er_ref", "charge.refunded", T0 + 50, again)).await;
    assert_eq!(view(&s, "early_host").await.referral.conversions, 0);
}

#[tokio::test]
async fn a_dispute_then_a_refund_take_the_reward_back_and_a_won_dispute_gives_it_back() {
    let s = memory_services(&[]);
    referred(&s, "dr_host", "dr_guest").await;
    let mut paid = subscription_invoice(
        "in_dr",
        "sub_dr",
        "dr_guest",
        "price_ref",
        "subscription_create",
        2900,
    );
    paid["payments"] = json!({ "object": "list", "data": [{ "object": "invoice_payment",
        "invoice": "in_dr", "status": "paid",
        "payment": { "type": "payment_intent", "payment_intent": "pi_dr" } }] });
    apply(&s, &event("evt_dr_inv", "invoice.paid", T0, paid)).await;
    assert!(rewarded(&view(&s, "dr_host").await));
    let open = dispute_of("pi_dr", "needs_response", 1500);
    apply(
        &s,
        &event("evt_dr_dp", "charge.dispute.created", T0 + 10, open),
    )
    .await;
    assert!(
        rewarded(&view(&s, "dr_guest").await),
        "part of the money is kept"
    );
    let refund = refund_of("pi_dr", None, 2900, 1400);
    apply(&s, &event("evt_dr_ref", "charge.refunded", T0 + 20, refund)).await;
    assert!(
        !rewarded(&view(&s, "dr_guest").await),
        "all of it is taken back"
    );
    assert_eq!(view(&s, "dr_host").await.referral.conversions, 0);
    let won = dispute_of("pi_dr", "won", 1500);
    apply(
        &s,
        &event("evt_dr_won", "charge.dispute.closed", T0 + 30, won),
    )
    .await;
    assert!(
        rewarded(&view(&s, "dr_guest").await),
        "the dispute's money is back"
    );
    let host = view(&s, "dr_host").await;
    assert!(rewarded(&host));
    assert_eq!(host.referral.conversions, 1);
}
