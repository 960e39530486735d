//! Money rules that hold against a customer acting in bad faith (docs/api.md, "Rules that hold
//! against a customer acting in bad faith" and the refund and dispute rows). Each test
//! names the attack it proves closed.

use billing_core::app::Services;
use billing_core::app::config::SecretString;
use billing_core::domain::ids::{CustomerId, UserId};
use billing_core::domain::reference;
use billing_core::store::records::{customer, profile};
use billing_core::usecases::account::{AccountView, account};
use billing_core::usecases::fulfil::{self, FulfilError, Outcome};
use billing_core::usecases::referral::{self, ClaimRequest};
use billing_testing::{checkout_session, event, memory_services, object};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

const T0: i64 = 1_795_000_000;

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

async fn apply(s: &Services, e: &Value) -> Result<Outcome, FulfilError> {
    fulfil::process(s, &e.to_string()).await
}

async fn view(s: &Services, u: &str) -> AccountView {
    account(s, &user(u)).await.unwrap()
}

async fn balance(s: &Services, u: &str) -> i64 {
    view(s, u).await.credits.balance
}

/// `credits_starter`: 1,000 credits for 1,000 cents, paid through `pi_cs_test_<user>`.
async fn bought_starter(s: &Services, u: &str) {
    let session = checkout_session(&format!("cs_test_{u}"), u, "credits_starter", "paid", 1000);
    let e = event(
        &format!("evt_buy_{u}"),
        "checkout.session.completed",
        T0,
        session,
    );
    apply(s, &e).await.unwrap();
}

fn refund(u: &str, id: &str, total: i64) -> Value {
    let charge = object(
        "charge",
        json!({ "id": format!("ch_{u}"), "payment_intent": format!("pi_cs_test_{u}"),
                "amount": 1000, "amount_refunded": total, "refunded": total == 1000 }),
    );
    event(id, "charge.refunded", T0 + 10, charge)
}

fn dispute(u: &str, id: &str, kind: &str, status: &str, amount: i64) -> Value {
    let dispute = object(
        "dispute",
        json!({ "id": format!("dp_{u}"), "amount": amount, "status": status,
                "payment_intent": format!("pi_cs_test_{u}"), "charge": format!("ch_{u}") }),
    );
    event(id, kind, T0 + 20, dispute)
}

#[tokio::test]
async fn a_dispute_after_a_partial_refund_takes_back_the_rest() {
    let s = memory_services(&[]);
    bought_starter(&s, "rd").await;
    apply(&s, &refund("rd", "evt_r", 500)).await.unwrap();
    assert_eq!(balance(&s, "rd").await, 500);
    let d = dispute(
        "rd",
        "evt_d",
        "charge.dispute.created",
        "needs_response",
        500,
    );
    apply(&s, &d).await.unwrap();
    assert_eq!(
        balance(&s, "rd").await,
        0,
        "the refund and the dispute add up"
    );
    assert_eq!(apply(&s, &d).await.unwrap(), Outcome::AlreadyApplied);
    assert_eq!(balance(&s, "rd").await, 0);
}

#[tokio::test]
async fn a_refund_after_a_dispute_of_part_takes_only_what_is_not_taken_yet() {
    let s = memory_services(&[]);
    bought_starter(&s, "dr").await;
    let d = dispute(
        "dr",
        "evt_d",
        "charge.dispute.created",
        "needs_response",
        300,
    );
    apply(&s, &d).await.unwrap();
    assert_eq!(balance(&s, "dr").await, 700);
    apply(&s, &refund("dr", "evt_r", 700)).await.unwrap();
    assert_eq!(
        balance(&s, "dr").await,
        0,
        "300 disputed + 700 refunded is all of it"
    );
}

#[tokio::test]
async fn an_inquiry_withdraws_no_money_and_takes_no_credits() {
    let s = memory_services(&[]);
    bought_starter(&s, "inq").await;
    let d = dispute(
        "inq",
        "evt_i",
        "charge.dispute.created",
        "warning_needs_response",
        1000,
    );
    assert_eq!(apply(&s, &d).await.unwrap(), Outcome::Applied);
    let a = view(&s, "inq").await;
    assert_eq!(
        (a.credits.balance, a.purchases[0].status.as_str()),
        (1000, "paid")
    );
    let closed = dispute(
        "inq",
        "evt_ic",
        "charge.dispute.closed",
        "warning_closed",
        1000,
    );
    apply(&s, &closed).await.unwrap();
    assert_eq!(balance(&s, "inq").await, 1000);
}

#[tokio::test]
async fn an_inquiry_escalated_into_a_chargeback_takes_back_when_the_funds_are_withdrawn() {
    let s = memory_services(&[]);
    bought_starter(&s, "esc").await;
    let inquiry = dispute(
        "esc",
        "evt_i",
        "charge.dispute.created",
        "warning_needs_response",
        1000,
    );
    apply(&s, &inquiry).await.unwrap();
    assert_eq!(balance(&s, "esc").await, 1000);
    let withdrawn = dispute(
        "esc",
        "evt_w",
        "charge.dispute.funds_withdrawn",
        "needs_response",
        1000,
    );
    apply(&s, &withdrawn).await.unwrap();
    assert_eq!(balance(&s, "esc").await, 0);
    let won = dispute("esc", "evt_won", "charge.dispute.closed", "won", 1000);
    apply(&s, &won).await.unwrap();
    assert_eq!(balance(&s, "esc").await, 1000);
    assert_eq!(
        apply(&s, &withdrawn).await.unwrap(),
        Outcome::AlreadyApplied
    );
    assert_eq!(
        balance(&s, "esc").await,
        1000,
        "a late withdrawal never reopens a won dispute"
    );
}

#[tokio::test]
async fn a_won_dispute_gives_back_what_it_took_once_whichever_event_says_so() {
    let s = memory_services(&[]);
    bought_starter(&s, "won").await;
    let created = dispute(
        "won",
        "evt_c",
        "charge.dispute.created",
        "needs_response",
        1000,
    );
    apply(&s, &created).await.unwrap();
    assert_eq!(balance(&s, "won").await, 0);
    let reinstated = dispute(
        "won",
        "evt_f",
        "charge.dispute.funds_reinstated",
        "won",
        1000,
    );
    apply(&s, &reinstated).await.unwrap();
    let a = view(&s, "won").await;
    assert_eq!(
        (a.credits.balance, a.purchases[0].status.as_str()),
        (1000, "paid")
    );
    let closed = dispute("won", "evt_w", "charge.dispute.closed", "won", 1000);
    assert_eq!(apply(&s, &closed).await.unwrap(), Outcome::AlreadyApplied);
    assert_eq!(balance(&s, "won").await, 1000, "given back once");
    assert_eq!(apply(&s, &created).await.unwrap(), Outcome::AlreadyApplied);
    assert_eq!(
        balance(&s, "won").await,
        1000,
        "a late `created` never undoes the win"
    );
}

#[tokio::test]
async fn a_lost_dispute_keeps_what_it_took() {
    let s = memory_services(&[]);
    bought_starter(&s, "lost").await;
    let created = dispute(
        "lost",
        "evt_c",
        "charge.dispute.created",
        "needs_response",
        1000,
    );
    apply(&s, &created).await.unwrap();
    let closed = dispute("lost", "evt_l", "charge.dispute.closed", "lost", 1000);
    apply(&s, &closed).await.unwrap();
    assert_eq!(balance(&s, "lost").await, 0);
}

const REFERENCE_SECRET: &str = "core-reference-secret";

/// Services whose Payment Link references are signed with [`REFERENCE_SECRET`].
fn link_services() -> Services {
    memory_services(&[("CLIENT_REFERENCE_SECRET", REFERENCE_SECRET)])
}

/// The reference the checkout route hands `u` for a Payment Link.
fn signed(u: &UserId) -> String {
    reference::sign(u, &[SecretString::from(REFERENCE_SECRET)]).unwrap()
}

/// A Payment Link session carries no metadata of ours (the link's own, here its plan):
/// only `client_reference_id`, which anyone can put in the link's URL.
fn link_session(id: &str, reference: &str, buyer: &str) -> Value {
    let mut s = checkout_session(id, "unused", "credits_starter", "paid", 1000);
    s["metadata"] = json!({ "plan_id": "credits_starter" });
    s["client_reference_id"] = reference.into();
    s["customer"] = buyer.into();
    s["payment_intent"] = format!("pi_{id}").into();
    s["payment_link"] = "plink_test_starter".into();
    s
}

#[tokio::test]
async fn a_payment_link_naming_another_user_never_takes_over_their_customer() {
    let s = link_services();
    bought_starter(&s, "victim").await;
    bought_starter(&s, "attacker").await;
    let table = s.table.as_ref();
    // The attacker writes the victim's id into the link's URL, as references read before
    // they were signed: it names no account.
    let forged = user("victim").to_reference();
    let hijack = link_session("cs_test_hijack", &forged, "cus_attacker");
    apply(
        &s,
        &event("evt_hijack", "checkout.session.completed", T0 + 5, hijack),
    )
    .await
    .unwrap();
    let listed = billing_core::store::records::event::load(
        table,
        &billing_core::domain::ids::EventId::parse("evt_hijack").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(listed.status, "unclaimed", "{listed:?}");
    let victim = profile::load(table, &user("victim"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        victim.customer_id.as_deref(),
        Some("cus_victim"),
        "portal and checkouts stay the victim's"
    );
    let attackers = CustomerId::parse("cus_attacker").unwrap();
    assert_eq!(
        customer::user_of(table, &attackers).await.unwrap(),
        Some(user("attacker")),
        "the buyer's customer stays with its account"
    );
    assert_eq!(
        balance(&s, "victim").await,
        1000,
        "a forged reference grants nothing"
    );
}

#[tokio::test]
async fn a_payment_link_reference_with_another_accounts_tag_names_no_account() {
    let s = link_services();
    // The attacker's own signed reference, with the victim's id put in its place.
    let own = signed(&user("attacker2"));
    use base64::Engine;
    let victim = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("victim2");
    let spliced = format!("{}{victim}", &own[..3 + 24]);
    let sale = link_session("cs_test_spliced", &spliced, "cus_attacker2");
    apply(
        &s,
        &event("evt_spliced", "checkout.session.completed", T0, sale),
    )
    .await
    .unwrap();
    assert_eq!(balance(&s, "victim2").await, 0);
    assert_eq!(balance(&s, "attacker2").await, 0);
    let victim = profile::load(s.table.as_ref(), &user("victim2"))
        .await
        .unwrap();
    assert!(victim.and_then(|p| p.customer_id).is_none());
}

#[tokio::test]
async fn a_gift_checkout_grants_the_recipient_without_relinking_them() {
    let s = link_services();
    bought_starter(&s, "recipient").await;
    // The recipient passes on the link the stack handed them; a friend pays.
    let gift = link_session("cs_test_gift", &signed(&user("recipient")), "cus_giver_new");
    apply(
        &s,
        &event("evt_gift", "checkout.session.completed", T0 + 5, gift),
    )
    .await
    .unwrap();
    let p = profile::load(s.table.as_ref(), &user("recipient"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.customer_id.as_deref(), Some("cus_recipient"));
    assert_eq!(balance(&s, "recipient").await, 2000);
}

#[tokio::test]
async fn a_payment_link_reference_brings_an_auth0_user_their_purchase() {
    let s = link_services();
    let auth0 = user("auth0|65f0c2a1b3e4d5f6a7b8c9d0");
    let reference = signed(&auth0);
    assert!(reference.len() <= 200);
    assert!(
        reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    let sale = link_session("cs_test_auth0", &reference, "cus_auth0");
    apply(
        &s,
        &event("evt_auth0", "checkout.session.completed", T0, sale),
    )
    .await
    .unwrap();
    assert_eq!(balance(&s, auth0.as_str()).await, 1000);
}

#[tokio::test]
async fn the_longest_user_id_still_fits_a_payment_links_reference() {
    let longest = user(&"a|".repeat(64));
    let reference = longest.to_reference();
    assert!(reference.len() <= 200, "{} characters", reference.len());
    assert_eq!(UserId::from_reference(&reference).unwrap(), longest);
}

/// `u`'s first subscription invoice: 1,000 cents paid through `pi_cs_test_<user>` (the
/// PaymentIntent [`refund`] and [`dispute`] name).
async fn paid_first_invoice(s: &Services, u: &str) {
    let mut invoice = billing_testing::subscription_invoice(
        &format!("in_{u}"),
        &format!("sub_{u}"),
        u,
        "price_bf",
        "subscription_create",
        1000,
    );
    invoice["payment_intent"] = format!("pi_cs_test_{u}").into();
    apply(
        s,
        &event(&format!("evt_inv_{u}"), "invoice.paid", T0, invoice),
    )
    .await
    .unwrap();
}

fn until(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn a_fully_refunded_first_payment_takes_back_the_referral_reward_from_both_sides() {
    let s = memory_services(&[]);
    let code = view(&s, "farmer").await.referral.code.unwrap();
    referral::claim(&s, &user("sock"), ClaimRequest { code })
        .await
        .unwrap();
    paid_first_invoice(&s, "sock").await;
    let rewarded = view(&s, "farmer").await;
    assert_eq!(rewarded.referral.conversions, 1);
    assert!(rewarded.credit_until.is_some());
    apply(&s, &refund("sock", "evt_full", 1000)).await.unwrap();
    let referrer = view(&s, "farmer").await;
    let buyer = view(&s, "sock").await;
    assert_eq!(referrer.referral.conversions, 0);
    let now = Utc::now();
    assert!(
        referrer
            .credit_until
            .as_deref()
            .is_none_or(|u| until(u) <= now)
    );
    assert!(
        buyer
            .credit_until
            .as_deref()
            .is_none_or(|u| until(u) <= now)
    );
    assert_eq!(buyer.tier, "free");
}

#[tokio::test]
async fn a_partial_refund_keeps_the_referral_reward() {
    let s = memory_services(&[]);
    let code = view(&s, "host").await.referral.code.unwrap();
    referral::claim(&s, &user("guest"), ClaimRequest { code })
        .await
        .unwrap();
    paid_first_invoice(&s, "guest").await;
    apply(&s, &refund("guest", "evt_half", 500)).await.unwrap();
    assert_eq!(view(&s, "host").await.referral.conversions, 1);
    assert_eq!(view(&s, "guest").await.tier, "paid");
}

#[tokio::test]
async fn an_unknown_plan_error_reads_without_a_debug_dump() {
    let s = memory_services(&[]);
    let mut session = checkout_session("cs_test_np", "np", "credits_starter", "paid", 1000);
    session["metadata"]["plan_id"] = "no_such_plan".into();
    let err = apply(
        &s,
        &event("evt_np", "checkout.session.completed", T0, session),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the event names no plan of the catalog (named: no_such_plan)"
    );
}

#[tokio::test]
async fn a_user_id_too_long_for_sqs_still_gets_a_stable_message_group() {
    let long_user = "u".repeat(300);
    let mut session = checkout_session("cs_test_long", "x", "credits_starter", "paid", 1000);
    session["customer"] = Value::Null;
    session["metadata"]["user_id"] = long_user.clone().into();
    let e: billing_core::stripe::Event =
        serde_json::from_value(event("evt_long", "checkout.session.completed", T0, session))
            .unwrap();
    let group = e.ordering_key();
    assert!(group.len() <= 128, "{} characters", group.len());
    let again: billing_core::stripe::Event = serde_json::from_str(
        &serde_json::to_string(&event("evt_long_2", "checkout.session.completed", T0, {
            let mut s = checkout_session("cs_test_long2", "x", "credits_starter", "paid", 1000);
            s["customer"] = Value::Null;
            s["metadata"]["user_id"] = long_user.into();
            s
        }))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(again.ordering_key(), group, "one account, one group");
}

#[tokio::test]
async fn a_fully_refunded_first_subscription_invoice_takes_back_the_referral_reward() {
    let s = memory_services(&[]);
    let code = view(&s, "sub_farmer").await.referral.code.unwrap();
    referral::claim(&s, &user("sub_sock"), ClaimRequest { code })
        .await
        .unwrap();
    let active = billing_testing::subscription(
        "sub_farm",
        "sub_sock",
        "pro_monthly",
        "active",
        T0 + 2_600_000,
    );
    apply(
        &s,
        &event("evt_sf_sub", "customer.subscription.created", T0, active),
    )
    .await
    .unwrap();
    assert_eq!(
        view(&s, "sub_farmer").await.referral.conversions,
        0,
        "a status is no payment"
    );
    let mut first = object(
        "invoice",
        json!({ "id": "in_farm_1", "customer": "cus_sub_sock",
        "status": "paid", "amount_paid": 1000, "billing_reason": "subscription_create",
        "payment_intent": "pi_farm_1" }),
    );
    first["parent"] = json!({ "type": "subscription_details", "subscription_details": {
        "subscription": "sub_farm", "metadata": { "user_id": "sub_sock", "plan_id": "pro_monthly" } } });
    apply(&s, &event("evt_sf_inv", "invoice.paid", T0 + 1, first))
        .await
        .unwrap();
    assert_eq!(view(&s, "sub_farmer").await.referral.conversions, 1);
    let charge = object(
        "charge",
        json!({ "id": "ch_farm", "payment_intent": "pi_farm_1",
        "amount": 1000, "amount_refunded": 1000 }),
    );
    apply(&s, &event("evt_sf_ref", "charge.refunded", T0 + 10, charge))
        .await
        .unwrap();
    assert_eq!(view(&s, "sub_farmer").await.referral.conversions, 0);
    let now = Utc::now();
    let referrer = view(&s, "sub_farmer").await;
    assert!(
        referrer
            .credit_until
            .as_deref()
            .is_none_or(|u| until(u) <= now)
    );
}
