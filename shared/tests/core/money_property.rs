//! The money property (docs/api.md, the refund and dispute rows): over random histories of
//! payments (a credit pack, a small pack whose credits round, a first and a renewal
//! invoice in both API shapes) with refunds (partial, full, repeated) and disputes
//! (inquiry, open, won, lost), delivered in random orders with duplicates and redelivered
//! when they fail (as SQS does), the credits held always equal what the money the merchant
//! still keeps bought, never below zero, the same for every order.
//!
//! And the referral property: a referred user's $0 trial invoice, a credit pack and first
//! paid subscription invoice (either API shape), with that invoice's refunds and disputes in
//! any order: a referral reward exists (on both sides) exactly when that charge is paid and
//! not fully refunded or disputed.

use billing_core::app::Services;
use billing_core::domain::ids::UserId;
use billing_core::usecases::account::account;
use billing_core::usecases::fulfil;
use billing_testing::memory_stripe::MemoryStripe;
use billing_testing::{checkout_session, event, memory_services_with_stripe, object};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;

const T0: i64 = 1_795_000_000;
const USER: &str = "prop";

/// One payment of the account: its PaymentIntent, money and credits.
struct Payment {
    pi: &'static str,
    amount: i64,
    credits: i64,
}

const PAYMENTS: [Payment; 4] = [
    Payment {
        pi: "pi_cs_test_prop_pack",
        amount: 1000,
        credits: 1000,
    },
    Payment {
        pi: "pi_cs_test_prop_small",
        amount: 500,
        credits: 20,
    },
    Payment {
        pi: "pi_prop_in_1",
        amount: 1000,
        credits: 2000,
    },
    Payment {
        pi: "pi_prop_in_2",
        amount: 1000,
        credits: 2000,
    },
];

/// What happens to one payment after it is made.
#[derive(Debug, Clone)]
struct History {
    /// Refund steps in per-mille of the amount; their running sum is what Stripe reports.
    refunds: Vec<u16>,
    /// 0 none, 1 inquiry, 2 open chargeback, 3 won, 4 lost, 5 inquiry escalated and lost.
    dispute: u8,
    /// The disputed share of what is not refunded, in per-mille.
    disputed: u16,
}

fn history() -> impl Strategy<Value = History> {
    (prop::collection::vec(0u16..=600, 0..4), 0u8..6, 1u16..=1000).prop_map(
        |(refunds, dispute, disputed)| History {
            refunds,
            dispute,
            disputed,
        },
    )
}

fn purchase_event(i: usize) -> Value {
    let p = &PAYMENTS[i];
    match i {
        0 => event(
            "evt_p_buy0",
            "checkout.session.completed",
            T0,
            checkout_session(
                "cs_test_prop_pack",
                USER,
                "credits_starter",
                "paid",
                p.amount,
            ),
        ),
        1 => event(
            "evt_p_buy1",
            "checkout.session.completed",
            T0,
            checkout_session("cs_test_prop_small", USER, "uses_20", "paid", p.amount),
        ),
        _ => {
            let id = format!("in_prop_{}", i - 1);
            let mut inv = object(
                "invoice",
                json!({ "id": id, "customer": "cus_prop", "status": "paid",
                "amount_paid": p.amount, "billing_reason": "subscription_cycle" }),
            );
            inv["parent"] = json!({ "type": "subscription_details", "subscription_details": {
                "subscription": "sub_prop", "metadata": { "user_id": USER, "plan_id": "pro_credits_monthly" } } });
            if i == 2 {
                // Before API 2025-03-31: the invoice names its PaymentIntent.
                inv["payment_intent"] = p.pi.into();
            } else {
                inv["payments"] = json!({ "object": "list", "data": [{ "object": "invoice_payment",
                    "invoice": id, "status": "paid", "payment": { "type": "payment_intent", "payment_intent": p.pi } }] });
            }
            event(&format!("evt_p_inv{i}"), "invoice.paid", T0 + 1, inv)
        }
    }
}

/// The events of one payment's history, and the money it ends up taken back.
fn events_of(i: usize, h: &History) -> (Vec<Value>, i64) {
    let p = &PAYMENTS[i];
    let (mut out, taken) = settlement(&i.to_string(), p.pi, p.amount, None, h);
    out.insert(0, purchase_event(i));
    (out, taken)
}

/// The refunds and disputes of one charge (`pi`, `amount`; its `invoice` on the charge as
/// before API 2025-03-31) that `h` describes, and the money they end up taking back.
fn settlement(
    i: &str,
    pi: &str,
    amount: i64,
    invoice: Option<&str>,
    h: &History,
) -> (Vec<Value>, i64) {
    struct P<'a> {
        pi: &'a str,
        amount: i64,
    }
    let p = P { pi, amount };
    let mut out = Vec::new();
    let mut refunded = 0;
    for (n, step) in h.refunds.iter().enumerate() {
        refunded = (refunded + p.amount * i64::from(*step) / 1000).min(p.amount);
        let mut charge = object(
            "charge",
            json!({ "id": format!("ch_{i}"), "payment_intent": p.pi,
            "amount": p.amount, "amount_refunded": refunded }),
        );
        if let Some(invoice) = invoice {
            charge["invoice"] = invoice.into();
        }
        out.push(event(
            &format!("evt_p_ref{i}_{n}"),
            "charge.refunded",
            T0 + 10 + n as i64,
            charge,
        ));
    }
    let disputed = ((p.amount - refunded) * i64::from(h.disputed) / 1000).max(1);
    let dispute = |status: &str| {
        object(
            "dispute",
            json!({ "id": format!("dp_{i}"),
        "amount": disputed, "status": status, "payment_intent": p.pi }),
        )
    };
    let mut d = |id: &str, kind: &str, status: &str| {
        out.push(event(
            &format!("evt_p_{id}{i}"),
            kind,
            T0 + 20,
            dispute(status),
        ));
    };
    let withheld = match h.dispute {
        1 => {
            d("inq", "charge.dispute.created", "warning_needs_response");
            d("inqc", "charge.dispute.closed", "warning_closed");
            0
        }
        2 => {
            d("open", "charge.dispute.created", "needs_response");
            disputed
        }
        3 => {
            d("open", "charge.dispute.created", "needs_response");
            d("won", "charge.dispute.closed", "won");
            d("back", "charge.dispute.funds_reinstated", "won");
            0
        }
        4 => {
            d("open", "charge.dispute.created", "needs_response");
            d("lost", "charge.dispute.closed", "lost");
            disputed
        }
        5 => {
            d("inq", "charge.dispute.created", "warning_needs_response");
            d("wd", "charge.dispute.funds_withdrawn", "needs_response");
            d("lost", "charge.dispute.closed", "lost");
            disputed
        }
        _ => 0,
    };
    if h.dispute == 0 || refunded + disputed > p.amount {
        // A dispute is only of money not refunded: keep the history one Stripe could send.
        out.retain(|e| {
            !e["type"]
                .as_str()
                .unwrap_or_default()
                .starts_with("charge.dispute")
        });
        return (out, refunded);
    }
    (out, (refunded + withheld).min(p.amount))
}

/// A small deterministic shuffle, so a failing case replays exactly.
fn shuffled(mut events: Vec<Value>, seed: u64, duplicates: u64) -> Vec<Value> {
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let dups: Vec<Value> = events
        .iter()
        .filter(|_| next() % 4 < duplicates % 4)
        .cloned()
        .collect();
    events.extend(dups);
    for i in (1..events.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        events.swap(i, j);
    }
    events
}

async fn balance(s: &Services) -> i64 {
    account(s, &UserId::parse(USER).unwrap())
        .await
        .unwrap()
        .credits
        .balance
}

/// Delivers `events` in order; a failed one comes back at the end of the queue, as SQS
/// returns a failed message. Checks the balance never goes below zero on the way.
async fn deliver(s: &Services, events: Vec<Value>) -> i64 {
    let mut queue: VecDeque<Value> = events.into();
    let mut rounds = 0;
    while let Some(e) = queue.pop_front() {
        rounds += 1;
        assert!(rounds < 2_000, "events keep failing: {queue:?}");
        if fulfil::process(s, &e.to_string()).await.is_err() {
            queue.push_back(e);
        }
        assert!(balance(s).await >= 0);
    }
    balance(s).await
}

async fn stripe_services() -> (Arc<MemoryStripe>, Services) {
    // Stripe holds the subscriptions the invoices bill.
    let held = Arc::new(MemoryStripe::new());
    held.put_subscription(&billing_testing::subscription(
        "sub_prop",
        USER,
        "pro_credits_monthly",
        "active",
        T0 + 2_600_000,
    ));
    held.put_subscription(&billing_testing::subscription(
        SUB_BUYER,
        BUYER,
        "pro_monthly",
        "active",
        T0 + 2_600_000,
    ));
    // Every PaymentIntent here is ours (our metadata), and no invoice payment needs a lookup
    // (the invoices carry theirs, and Stripe holds no InvoicePayment): a refund or dispute
    // that overtakes its payment retries.
    let pis = PAYMENTS.iter().map(|p| p.pi).chain([FIRST_PI]);
    for id in pis {
        let mut p = object("payment_intent", json!({ "id": id }));
        p["metadata"] = json!({ "user_id": USER });
        held.put_payment_intent(&p);
    }
    let s = memory_services_with_stripe(&held, &[("STRIPE_SECRET_KEY", "sk_test_prop")]);
    (held, s)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn credits_held_equal_what_the_money_kept_bought_in_every_order(
        histories in prop::collection::vec(history(), PAYMENTS.len()),
        seeds in (any::<u64>(), any::<u64>()),
        duplicates in 0u64..4,
    ) {
        let mut events = Vec::new();
        let mut expected = 0;
        for (i, h) in histories.iter().enumerate() {
            let (evs, taken) = events_of(i, h);
            let p = &PAYMENTS[i];
            expected += p.credits - (p.credits * taken + p.amount - 1) / p.amount;
            events.extend(evs);
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (a, b) = rt.block_on(async {
            let (_s1, one) = stripe_services().await;
            let (_s2, two) = stripe_services().await;
            let a = deliver(&one, shuffled(events.clone(), seeds.0, duplicates)).await;
            let b = deliver(&two, shuffled(events.clone(), seeds.1, duplicates)).await;
            (a, b)
        });
        prop_assert_eq!(a, expected);
        prop_assert_eq!(b, expected);
    }
}

const BUYER: &str = "prop_buyer";
const HOST: &str = "prop_host";
const SUB_BUYER: &str = "sub_prop_buyer";
const FIRST_PAID: &str = "in_prop_buyer_1";
const FIRST_PI: &str = "pi_prop_buyer_1";
const FIRST_AMOUNT: i64 = 2900;

/// The referred buyer's events: a $0 trial invoice, a credit pack (money, but no
/// subscription), the first paid subscription invoice in the shape `old` chooses, and that
/// invoice's refunds and disputes; and whether its charge ends up kept.
fn referral_history(h: &History, old: bool) -> (Vec<Value>, bool) {
    let invoice = |id: &str, reason: &str, amount: i64| {
        billing_testing::subscription_invoice(
            id,
            SUB_BUYER,
            BUYER,
            "price_prop_pro",
            reason,
            amount,
        )
    };
    let trial = invoice("in_prop_buyer_0", "subscription_create", 0);
    let mut paid = invoice(FIRST_PAID, "subscription_cycle", FIRST_AMOUNT);
    let paid = if old {
        paid["payment_intent"] = FIRST_PI.into();
        billing_testing::old_event("evt_rb_inv1", "invoice.paid", T0 + 5, &paid)
    } else {
        paid["payments"] = json!({ "object": "list", "data": [{ "object": "invoice_payment",
            "invoice": FIRST_PAID, "status": "paid",
            "payment": { "type": "payment_intent", "payment_intent": FIRST_PI } }] });
        event("evt_rb_inv1", "invoice.paid", T0 + 5, paid)
    };
    let pack = checkout_session("cs_test_prop_buyer", BUYER, "uses_20", "paid", 500);
    let (settled, taken) = settlement("rb", FIRST_PI, FIRST_AMOUNT, old.then_some(FIRST_PAID), h);
    let mut out = vec![
        event("evt_rb_inv0", "invoice.paid", T0, trial),
        event("evt_rb_pack", "checkout.session.completed", T0 + 1, pack),
        paid,
    ];
    out.extend(settled);
    (out, taken < FIRST_AMOUNT)
}

/// Whether `u` holds referral days now, and its conversions.
async fn reward_of(s: &Services, u: &str) -> (bool, i64) {
    let v = account(s, &UserId::parse(u).unwrap()).await.unwrap();
    let holds = v
        .credit_until
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t > chrono::Utc::now());
    (holds, v.referral.conversions)
}

/// The buyer claims the host's code, then the events arrive in `events`' order.
async fn referral_run(events: Vec<Value>) -> ((bool, i64), (bool, i64)) {
    let (_server, s) = stripe_services().await;
    let host = UserId::parse(HOST).unwrap();
    let code = billing_core::usecases::referral::ensure_code(&s, &host)
        .await
        .unwrap();
    billing_core::usecases::referral::claim(
        &s,
        &UserId::parse(BUYER).unwrap(),
        billing_core::usecases::referral::ClaimRequest { code },
    )
    .await
    .unwrap();
    let mut queue: VecDeque<Value> = events.into();
    let mut rounds = 0;
    while let Some(e) = queue.pop_front() {
        rounds += 1;
        assert!(rounds < 2_000, "events keep failing: {queue:?}");
        if fulfil::process(&s, &e.to_string()).await.is_err() {
            queue.push_back(e);
        }
    }
    (reward_of(&s, BUYER).await, reward_of(&s, HOST).await)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_referral_reward_exists_exactly_while_its_first_paid_charge_is_kept_in_every_order(
        h in history(),
        old in any::<bool>(),
        seeds in (any::<u64>(), any::<u64>()),
        duplicates in 0u64..4,
    ) {
        let (events, kept) = referral_history(&h, old);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (a, b) = rt.block_on(async {
            let a = referral_run(shuffled(events.clone(), seeds.0, duplicates)).await;
            let b = referral_run(shuffled(events.clone(), seeds.1, duplicates)).await;
            (a, b)
        });
        let expected = ((kept, 0), (kept, i64::from(kept)));
        prop_assert_eq!(a, expected, "{:?}", h);
        prop_assert_eq!(b, expected, "{:?}", h);
    }
}
