//! Renewals, dunning, refunds and disputes (docs/api.md, Fulfilment), with events built from
//! Stripe's official invoice, charge and dispute fixtures.

use billing_core::app::Services;
use billing_core::domain::ids::UserId;
use billing_core::usecases::account::{AccountView, account};
use billing_core::usecases::fulfil::{self, FulfilError, Outcome};
use billing_testing::memory_stripe::{MemoryStripe, Method};
use billing_testing::{checkout_session, event, memory_services, object};
use serde_json::{Value, json};
use std::sync::Arc;

const T0: i64 = 1_795_000_000;

async fn apply(s: &Services, e: &Value) -> Result<Outcome, FulfilError> {
    fulfil::process(s, &e.to_string()).await
}

async fn account_of(s: &Services, u: &str) -> AccountView {
    account(s, &UserId::parse(u).unwrap()).await.unwrap()
}

fn invoice(id: &str, user: &str, plan: &str) -> Value {
    let mut i = object(
        "invoice",
        json!({ "id": id, "customer": format!("cus_{user}"), "status": "paid",
                "billing_reason": "subscription_cycle", "amount_paid": 2000 }),
    );
    i["parent"] = json!({ "type": "subscription_details", "subscription_details": {
        "subscription": format!("sub_{user}"), "metadata": { "user_id": user, "plan_id": plan } } });
    i
}

fn charge(pi: &str, amount: i64, refunded: i64) -> Value {
    object(
        "charge",
        json!({ "id": format!("ch_{pi}"), "payment_intent": pi, "amount": amount, "amount_refunded": refunded, "refunded": refunded == amount }),
    )
}

/// A paid credit pack of `credits_starter` (1,000 credits for 1,000 cents) for `user`.
async fn bought_starter(s: &Services, user: &str) {
    let session = checkout_session(
        &format!("cs_test_{user}"),
        user,
        "credits_starter",
        "paid",
        1000,
    );
    apply(
        s,
        &event(
            &format!("evt_buy_{user}"),
            "checkout.session.completed",
            T0,
            session,
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_paid_invoice_grants_the_plans_period_credits_once() {
    let s = memory_services(&[]);
    let e = event(
        "evt_inv_1",
        "invoice.paid",
        T0,
        invoice("in_1", "ren", "pro_credits_monthly"),
    );
    assert_eq!(apply(&s, &e).await.unwrap(), Outcome::Applied);
    assert_eq!(apply(&s, &e).await.unwrap(), Outcome::AlreadyApplied);
    let again = event(
        "evt_inv_1b",
        "invoice.paid",
        T0 + 5,
        invoice("in_1", "ren", "pro_credits_monthly"),
    );
    assert_eq!(
        apply(&s, &again).await.unwrap(),
        Outcome::AlreadyApplied,
        "another event for the same invoice"
    );
    assert_eq!(account_of(&s, "ren").await.credits.balance, 2000);
    let next = event(
        "evt_inv_2",
        "invoice.paid",
        T0 + 2_600_000,
        invoice("in_2", "ren", "pro_credits_monthly"),
    );
    apply(&s, &next).await.unwrap();
    assert_eq!(account_of(&s, "ren").await.credits.balance, 4000);
}

#[tokio::test]
async fn a_failed_payment_shows_until_an_invoice_is_paid_and_a_late_failure_changes_nothing() {
    let s = memory_services(&[]);
    apply(
        &s,
        &event(
            "evt_f1",
            "invoice.payment_failed",
            T0,
            invoice("in_f", "dun", "pro_monthly"),
        ),
    )
    .await
    .unwrap();
    let problem = account_of(&s, "dun").await.payment_problem.unwrap();
    assert_eq!(problem.invoice_id, "in_f");
    apply(
        &s,
        &event(
            "evt_f2",
            "invoice.paid",
            T0 + 100,
            invoice("in_f", "dun", "pro_monthly"),
        ),
    )
    .await
    .unwrap();
    assert!(account_of(&s, "dun").await.payment_problem.is_none());
    let late = apply(
        &s,
        &event(
            "evt_f0",
            "invoice.payment_failed",
            T0 - 100,
            invoice("in_f", "dun", "pro_monthly"),
        ),
    )
    .await;
    assert_eq!(late.unwrap(), Outcome::AlreadyApplied);
    assert!(account_of(&s, "dun").await.payment_problem.is_none());
}

#[tokio::test]
async fn a_partial_then_a_full_refund_take_back_credits_in_proportion_and_only_the_new_part() {
    let s = memory_services(&[]);
    bought_starter(&s, "ref").await;
    apply(
        &s,
        &event(
            "evt_r1",
            "charge.refunded",
            T0 + 10,
            charge("pi_cs_test_ref", 1000, 250),
        ),
    )
    .await
    .unwrap();
    let a = account_of(&s, "ref").await;
    assert_eq!(
        (a.credits.balance, a.purchases[0].status.as_str()),
        (750, "refunded")
    );
    // The same refund again (redelivery or a replay) takes nothing more.
    assert_eq!(
        apply(
            &s,
            &event(
                "evt_r1",
                "charge.refunded",
                T0 + 10,
                charge("pi_cs_test_ref", 1000, 250)
            )
        )
        .await
        .unwrap(),
        Outcome::AlreadyApplied
    );
    apply(
        &s,
        &event(
            "evt_r2",
            "charge.refunded",
            T0 + 20,
            charge("pi_cs_test_ref", 1000, 1000),
        ),
    )
    .await
    .unwrap();
    assert_eq!(account_of(&s, "ref").await.credits.balance, 0);
    // An older partial refund arriving late changes nothing.
    let late = apply(
        &s,
        &event(
            "evt_r0",
            "charge.refunded",
            T0 + 5,
            charge("pi_cs_test_ref", 1000, 100),
        ),
    )
    .await
    .unwrap();
    assert_eq!(late, Outcome::AlreadyApplied);
    assert_eq!(account_of(&s, "ref").await.credits.balance, 0);
}

#[tokio::test]
async fn a_refund_never_takes_the_balance_below_zero() {
    let s = memory_services(&[]);
    bought_starter(&s, "spent").await;
    billing_core::usecases::usage::consume(
        &s,
        &UserId::parse("spent").unwrap(),
        billing_core::usecases::usage::UsageRequest {
            units: 903,
            idempotency_key: "k".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(account_of(&s, "spent").await.credits.balance, 100);
    apply(
        &s,
        &event(
            "evt_rs",
            "charge.refunded",
            T0 + 10,
            charge("pi_cs_test_spent", 1000, 1000),
        ),
    )
    .await
    .unwrap();
    assert_eq!(account_of(&s, "spent").await.credits.balance, 0);
}

#[tokio::test]
async fn a_dispute_takes_back_the_disputed_part_once() {
    let s = memory_services(&[]);
    bought_starter(&s, "dis").await;
    let dispute = object(
        "dispute",
        json!({ "id": "dp_1", "amount": 1000, "status": "needs_response", "payment_intent": "pi_cs_test_dis", "charge": "ch_x" }),
    );
    let e = event("evt_dp", "charge.dispute.created", T0 + 10, dispute);
    apply(&s, &e).await.unwrap();
    assert_eq!(apply(&s, &e).await.unwrap(), Outcome::AlreadyApplied);
    let a = account_of(&s, "dis").await;
    assert_eq!(
        (a.credits.balance, a.purchases[0].status.as_str()),
        (0, "refunded")
    );
}

#[tokio::test]
async fn a_refund_of_a_charge_we_never_sold_is_recorded_and_changes_nothing() {
    let s = memory_services(&[]);
    bought_starter(&s, "bystander").await;
    // A manual charge: no purchase, no invoice of ours (and no Stripe to ask here).
    let manual_refund = event(
        "evt_rx",
        "charge.refunded",
        T0,
        charge("pi_manual_charge", 1000, 1000),
    );
    assert_eq!(apply(&s, &manual_refund).await.unwrap(), Outcome::Applied);
    let mut no_pi = charge("pi_x", 1000, 1000);
    no_pi["payment_intent"] = Value::Null;
    assert!(
        apply(&s, &event("evt_rx2", "charge.refunded", T0, no_pi))
            .await
            .is_ok()
    );
    assert_eq!(account_of(&s, "bystander").await.credits.balance, 1000);
}

// Subscription payments are taken back like a pack's (docs/api.md, "Rules that hold against a
// customer acting in bad faith"). Until API version 2025-03-31 an invoice named its
// PaymentIntent (`invoice.payment_intent`) and a charge its invoice (`charge.invoice`);
// Stripe's changelog entry "Adds support for multiple (partial) payments on invoices"
// (2025-03-31.basil, docs.stripe.com/changelog/basil/2025-03-31/add-support-for-multiple-partial-payments-on-invoices)
// removed both: the link is now an InvoicePayment (`invoice.payments`, or
// `GET /v1/invoice_payments?payment[payment_intent]=…`). Both shapes are tested.

fn paid_invoice(id: &str, user: &str, amount: i64) -> Value {
    let mut i = invoice(id, user, "pro_credits_monthly");
    i["amount_paid"] = amount.into();
    i["billing_reason"] = "subscription_cycle".into();
    i
}

#[tokio::test]
async fn a_refunded_renewal_takes_back_its_periods_credits_in_the_shape_before_2025_03_31() {
    let s = memory_services(&[]);
    let mut first = paid_invoice("in_old_1", "olds", 1000);
    first["payment_intent"] = "pi_old_1".into();
    let mut renewal = paid_invoice("in_old_2", "olds", 1000);
    renewal["payment_intent"] = "pi_old_2".into();
    apply(&s, &event("evt_oi1", "invoice.paid", T0, first))
        .await
        .unwrap();
    apply(&s, &event("evt_oi2", "invoice.paid", T0 + 100, renewal))
        .await
        .unwrap();
    assert_eq!(account_of(&s, "olds").await.credits.balance, 4000);
    let mut refund = charge("pi_old_2", 1000, 1000);
    refund["invoice"] = "in_old_2".into();
    apply(&s, &event("evt_oref", "charge.refunded", T0 + 200, refund))
        .await
        .unwrap();
    assert_eq!(
        account_of(&s, "olds").await.credits.balance,
        2000,
        "the renewal's 2,000 credits go with its money; the first period's stay"
    );
}

#[tokio::test]
async fn a_first_subscription_payment_carried_as_an_invoice_payment_is_taken_back() {
    let s = memory_services(&[]);
    let mut first = paid_invoice("in_new_1", "news", 1000);
    first["payments"] = json!({ "object": "list", "data": [
        { "object": "invoice_payment", "invoice": "in_new_1", "status": "paid",
          "payment": { "type": "payment_intent", "payment_intent": "pi_new_1" } }
    ]});
    apply(&s, &event("evt_ni1", "invoice.paid", T0, first))
        .await
        .unwrap();
    apply(
        &s,
        &event(
            "evt_nref",
            "charge.refunded",
            T0 + 50,
            charge("pi_new_1", 1000, 500),
        ),
    )
    .await
    .unwrap();
    assert_eq!(account_of(&s, "news").await.credits.balance, 1000);
}

fn stripe_services(stripe: &Arc<MemoryStripe>) -> Services {
    billing_testing::memory_services_with_stripe(
        stripe,
        &[("STRIPE_SECRET_KEY", "sk_test_fake_key_123")],
    )
}

#[tokio::test]
async fn a_disputed_renewal_is_found_through_stripes_invoice_payments() {
    let stripe = Arc::new(MemoryStripe::new());
    stripe.put_subscription(&billing_testing::subscription(
        "sub_renu",
        "renu",
        "pro_credits_monthly",
        "active",
        T0 + 2_600_000,
    ));
    let s = stripe_services(&stripe);
    // Today's invoice.paid carries no payment: the dispute asks Stripe which invoice it paid.
    apply(
        &s,
        &event(
            "evt_ri",
            "invoice.paid",
            T0,
            paid_invoice("in_ren", "renu", 1000),
        ),
    )
    .await
    .unwrap();
    // Stripe holds the invoice and knows that pi_ren paid it (an InvoicePayment).
    stripe.put_invoice(&paid_invoice("in_ren", "renu", 1000), &["pi_ren"]);
    let dispute = object(
        "dispute",
        json!({ "id": "dp_ren", "amount": 1000, "status": "needs_response", "payment_intent": "pi_ren" }),
    );
    apply(
        &s,
        &event("evt_rd", "charge.dispute.created", T0 + 60, dispute),
    )
    .await
    .unwrap();
    assert_eq!(account_of(&s, "renu").await.credits.balance, 0);
    let asked = stripe.calls_of(Method::InvoiceOfPayment);
    assert_eq!(asked[0].args["payment_intent"], "pi_ren", "{asked:?}");
}

#[tokio::test]
async fn a_dispute_that_overtakes_its_checkout_is_retried_not_dropped() {
    // Stripe holds the PaymentIntent, which paid no invoice.
    let stripe = Arc::new(MemoryStripe::new());
    let s = stripe_services(&stripe);
    let mut pi = object("payment_intent", json!({ "id": "pi_cs_test_early" }));
    pi["metadata"] = json!({ "user_id": "early", "plan_id": "credits_starter" });
    stripe.put_payment_intent(&pi);
    let dispute = object(
        "dispute",
        json!({ "id": "dp_early", "amount": 1000, "status": "needs_response", "payment_intent": "pi_cs_test_early" }),
    );
    let disputed = event("evt_early_dp", "charge.dispute.created", T0 + 60, dispute);
    let first = apply(&s, &disputed).await;
    assert!(
        matches!(first, Err(FulfilError::NotYetFulfilled(_))),
        "the message must come back: {first:?}"
    );
    bought_starter(&s, "early").await;
    assert_eq!(account_of(&s, "early").await.credits.balance, 1000);
    assert_eq!(apply(&s, &disputed).await.unwrap(), Outcome::Applied);
    assert_eq!(account_of(&s, "early").await.credits.balance, 0);
}
