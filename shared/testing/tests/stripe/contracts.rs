//! The Stripe port's contract suite: each contract is a sentence about what Stripe does,
//! run against both adapters of the port: the in-memory Stripe the core's tests use
//! ([`MemoryStripe`]) and the HTTP adapter ([`HttpStripe`]) talking to the strict fake
//! Stripe server (which refuses, before answering, every request Stripe's own parameter
//! definitions refuse). If they disagree, one of them is not Stripe.

use async_trait::async_trait;
use billing_core::domain::ids::{PlanId, UserId};
use billing_core::stripe::api::{
    EventsQuery, HttpStripe, MeterUsage, NewCheckout, NewPaymentIntent, NewPrice, NewProduct,
    NewRefund, NewWebhookEndpoint, PriceChange, RetryPolicy, STRIPE_VERSION, SessionStatus,
    StripeApi, StripeError, TaxedSale,
};
use billing_testing::memory_stripe::MemoryStripe;
use billing_testing::{
    FakeAccount, FakeSubscriptions, checkout_session, event, payment_intent, subscription,
    subscription_invoice,
};
use serde_json::{Value, json};
use std::time::Duration;

/// An account of one adapter: the port to call, and the hook that seeds what the account
/// holds before a contract acts (and reads back what only the account can tell).
#[async_trait]
trait Account: Send + Sync {
    fn port(&self) -> &dyn StripeApi;
    fn put_subscription(&self, subscription: &Value);
    fn put_session(&self, session: &Value, items: &[(&str, i64)]);
    fn put_payment_intent(&self, payment_intent: &Value);
    fn put_event(&self, event: &Value);
    fn put_invoice(&self, invoice: &Value, payment_intents: &[&str]);
    /// The units counted on a meter for a customer.
    fn metered_units(&self, customer: &str, event_name: &str) -> i64;
    /// The account has an active Billing Portal configuration `id`.
    fn put_portal_configuration(&self, id: &str);
    /// Stripe Tax adds `bps` basis points of each sale's amount.
    fn set_tax_rate_bps(&self, bps: i64);
}

struct InMemory(MemoryStripe);

#[async_trait]
impl Account for InMemory {
    fn port(&self) -> &dyn StripeApi {
        &self.0
    }
    fn put_subscription(&self, s: &Value) {
        self.0.put_subscription(s)
    }
    fn put_session(&self, s: &Value, items: &[(&str, i64)]) {
        self.0.put_session(s, items)
    }
    fn put_payment_intent(&self, pi: &Value) {
        self.0.put_payment_intent(pi)
    }
    fn put_event(&self, e: &Value) {
        self.0.put_event(e)
    }
    fn put_invoice(&self, i: &Value, pis: &[&str]) {
        self.0.put_invoice(i, pis)
    }
    fn metered_units(&self, customer: &str, event_name: &str) -> i64 {
        self.0.metered_units(customer, event_name)
    }
    fn put_portal_configuration(&self, id: &str) {
        self.0.put_portal_configuration(id)
    }
    fn set_tax_rate_bps(&self, bps: i64) {
        self.0.set_tax_rate_bps(bps)
    }
}

struct OverHttp {
    _server: wiremock::MockServer,
    client: HttpStripe,
    subscriptions: FakeSubscriptions,
    account: FakeAccount,
}

impl OverHttp {
    async fn start() -> Self {
        let server = billing_testing::strict_stripe().await;
        let subscriptions = FakeSubscriptions::mount(&server).await;
        let account = FakeAccount::mount(&server).await;
        let policy = RetryPolicy {
            max_retries: 0,
            base_delay: Duration::from_millis(1),
            request_timeout: Duration::from_secs(5),
        };
        let client = HttpStripe::new(&server.uri(), "sk_test_contract".to_owned().into(), policy);
        Self {
            _server: server,
            client,
            subscriptions,
            account,
        }
    }
}

#[async_trait]
impl Account for OverHttp {
    fn port(&self) -> &dyn StripeApi {
        &self.client
    }
    fn put_subscription(&self, s: &Value) {
        self.subscriptions.put(s);
        self.account.put_subscription(s)
    }
    fn put_session(&self, s: &Value, items: &[(&str, i64)]) {
        self.account.put_session(s, items)
    }
    fn put_payment_intent(&self, pi: &Value) {
        self.account.put_payment_intent(pi)
    }
    fn put_event(&self, e: &Value) {
        self.account.put_event(e)
    }
    fn put_invoice(&self, i: &Value, pis: &[&str]) {
        self.account.put_invoice(i, pis)
    }
    fn metered_units(&self, customer: &str, event_name: &str) -> i64 {
        self.account
            .meter_events()
            .iter()
            .filter(|e| e["event_name"] == event_name)
            .filter(|e| e["payload"]["stripe_customer_id"] == customer)
            .filter_map(|e| e["payload"]["value"].as_str()?.parse::<i64>().ok())
            .sum()
    }
    fn put_portal_configuration(&self, id: &str) {
        self.account.put_portal_configuration(id)
    }
    fn set_tax_rate_bps(&self, bps: i64) {
        self.account.set_tax_rate_bps(bps)
    }
}

fn is_invalid_request(e: &StripeError) -> bool {
    matches!(e, StripeError::Api { status: 400, kind, .. } if kind == "invalid_request_error")
}

fn operator() -> UserId {
    UserId::parse("operator_1").unwrap()
}

// The contracts.

async fn an_unknown_subscription_is_not_found(a: &dyn Account) {
    let answer = a.port().retrieve_subscription("sub_never_made").await;
    assert!(
        matches!(answer, Err(StripeError::NotFound(_))),
        "{answer:?}"
    );
}

async fn a_subscription_is_answered_as_stripe_holds_it(a: &dyn Account) {
    a.put_subscription(&subscription(
        "sub_c1",
        "u1",
        "pro_monthly",
        "past_due",
        1_800_000_000,
    ));
    let sub = a.port().retrieve_subscription("sub_c1").await.unwrap();
    assert_eq!(sub.status, "past_due");
    assert_eq!(sub.customer.id(), "cus_u1");
    assert_eq!(sub.period_end(), Some(1_800_000_000));
}

async fn a_price_change_moves_the_item_to_the_price_and_seats(a: &dyn Account) {
    let held = subscription("sub_c2", "u2", "pro_monthly", "active", 1_800_000_000);
    let item = held["items"]["data"][0]["id"].as_str().unwrap().to_owned();
    a.put_subscription(&held);
    let change = PriceChange {
        item: &item,
        price: "price_pro_annual",
        quantity: 3,
    };
    let after = a
        .port()
        .change_subscription_price("sub_c2", &change, "key-switch-1")
        .await
        .unwrap();
    assert_eq!(
        after.items.data[0].price.as_ref().map(|p| p.id.as_str()),
        Some("price_pro_annual")
    );
    let now = a.port().retrieve_subscription("sub_c2").await.unwrap();
    assert_eq!(
        now.items.data[0].price.as_ref().map(|p| p.id.as_str()),
        Some("price_pro_annual")
    );
    assert_eq!(now.items.data[0].quantity, Some(3));
}

async fn a_price_change_naming_an_item_the_subscription_does_not_have_is_refused(a: &dyn Account) {
    a.put_subscription(&subscription(
        "sub_c3",
        "u3",
        "pro_monthly",
        "active",
        1_800_000_000,
    ));
    let change = PriceChange {
        item: "si_of_another_subscription",
        price: "price_pro_annual",
        quantity: 1,
    };
    let answer = a
        .port()
        .change_subscription_price("sub_c3", &change, "key-switch-2")
        .await;
    assert!(
        matches!(&answer, Err(e) if is_invalid_request(e)),
        "{answer:?}"
    );
    let now = a.port().retrieve_subscription("sub_c3").await.unwrap();
    assert_ne!(
        now.items.data[0].price.as_ref().map(|p| p.id.as_str()),
        Some("price_pro_annual")
    );
}

async fn a_retried_price_change_gets_its_first_answer(a: &dyn Account) {
    let held = subscription("sub_c4", "u4", "pro_monthly", "active", 1_800_000_000);
    let item = held["items"]["data"][0]["id"].as_str().unwrap().to_owned();
    a.put_subscription(&held);
    let to = |price| PriceChange {
        item: &item,
        price,
        quantity: 1,
    };
    let port = a.port();
    let first = port
        .change_subscription_price("sub_c4", &to("price_a"), "key-a")
        .await
        .unwrap();
    port.change_subscription_price("sub_c4", &to("price_b"), "key-b")
        .await
        .unwrap();
    let retried = port
        .change_subscription_price("sub_c4", &to("price_a"), "key-a")
        .await
        .unwrap();
    assert_eq!(
        retried.items.data[0].price.as_ref().map(|p| p.id.as_str()),
        first.items.data[0].price.as_ref().map(|p| p.id.as_str())
    );
    let now = port.retrieve_subscription("sub_c4").await.unwrap();
    assert_eq!(
        now.items.data[0].price.as_ref().map(|p| p.id.as_str()),
        Some("price_b"),
        "the retry acted again"
    );
}

async fn cancelling_at_period_end_schedules_the_end_and_resuming_clears_it(a: &dyn Account) {
    a.put_subscription(&subscription(
        "sub_c5",
        "u5",
        "pro_monthly",
        "active",
        1_800_000_000,
    ));
    let port = a.port();
    let cancelled = port
        .set_cancel_at_period_end("sub_c5", true, false, "key-cancel")
        .await
        .unwrap();
    assert!(cancelled.cancel_at_period_end);
    assert_eq!(cancelled.cancel_at, Some(1_800_000_000));
    let resumed = port
        .set_cancel_at_period_end("sub_c5", false, true, "key-resume")
        .await
        .unwrap();
    assert!(!resumed.cancel_at_period_end);
    assert_eq!(resumed.cancel_at, None);
}

async fn an_open_session_expires_and_stays_expired(a: &dyn Account) {
    let mut session = checkout_session("cs_c1", "u6", "starter", "unpaid", 0);
    session["status"] = "open".into();
    a.put_session(&session, &[("price_starter", 1)]);
    let port = a.port();
    port.expire_checkout("cs_c1").await.unwrap();
    assert_eq!(
        port.checkout_status("cs_c1").await.unwrap(),
        SessionStatus::Expired
    );
    // The same expiry again is one logical call: answered as the first time.
    port.expire_checkout("cs_c1").await.unwrap();
}

async fn expiring_a_completed_session_is_refused(a: &dyn Account) {
    a.put_session(
        &checkout_session("cs_c2", "u7", "starter", "paid", 900),
        &[],
    );
    let answer = a.port().expire_checkout("cs_c2").await;
    assert!(
        matches!(&answer, Err(e) if is_invalid_request(e)),
        "{answer:?}"
    );
    assert_eq!(
        a.port().checkout_status("cs_c2").await.unwrap(),
        SessionStatus::Complete
    );
}

async fn an_unknown_session_is_not_found(a: &dyn Account) {
    let port = a.port();
    for answer in [
        port.expire_checkout("cs_never_made").await.err(),
        port.checkout_status("cs_never_made").await.err(),
        port.checkout_line_items("cs_never_made").await.err(),
    ] {
        assert!(
            matches!(answer, Some(StripeError::NotFound(_))),
            "{answer:?}"
        );
    }
}

async fn a_sessions_line_items_name_the_prices_it_sold(a: &dyn Account) {
    let session = checkout_session("cs_c3", "u8", "starter", "paid", 1800);
    a.put_session(&session, &[("price_starter", 2), ("price_metered", 1)]);
    let items = a.port().checkout_line_items("cs_c3").await.unwrap();
    let sold: Vec<(Option<&str>, Option<i64>)> = items
        .iter()
        .map(|i| (i.price.as_ref().map(|p| p.id.as_str()), i.quantity))
        .collect();
    assert_eq!(
        sold,
        vec![
            (Some("price_starter"), Some(2)),
            (Some("price_metered"), Some(1))
        ]
    );
}

async fn a_refund_of_more_than_was_paid_is_refused(a: &dyn Account) {
    a.put_payment_intent(&payment_intent(
        "pi_c1",
        "u9",
        "credits_100",
        1,
        500,
        "succeeded",
    ));
    let op = operator();
    let refund = |amount, key: &'static str| {
        let op = &op;
        async move {
            let r = NewRefund {
                payment_intent: "pi_c1",
                amount,
                purchase: "purchase_1",
                operator: op,
            };
            a.port().refund_purchase(&r, key).await
        }
    };
    let answer = refund(501, "key-refund-1").await;
    assert!(
        matches!(&answer, Err(e) if is_invalid_request(e)),
        "{answer:?}"
    );
    refund(300, "key-refund-2").await.unwrap();
    let rest = refund(201, "key-refund-3").await;
    assert!(matches!(&rest, Err(e) if is_invalid_request(e)), "{rest:?}");
    assert_eq!(refund(200, "key-refund-4").await.unwrap().amount, 200);
}

async fn a_retried_refund_refunds_once(a: &dyn Account) {
    a.put_payment_intent(&payment_intent(
        "pi_c2",
        "u10",
        "credits_100",
        1,
        500,
        "succeeded",
    ));
    let op = operator();
    let r = NewRefund {
        payment_intent: "pi_c2",
        amount: 400,
        purchase: "purchase_2",
        operator: &op,
    };
    let first = a
        .port()
        .refund_purchase(&r, "key-refund-once")
        .await
        .unwrap();
    let again = a
        .port()
        .refund_purchase(&r, "key-refund-once")
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    // Had the retry refunded again, 400 + 400 would exceed the 500 paid: 100 is left.
    let rest = NewRefund { amount: 100, ..r };
    a.port()
        .refund_purchase(&rest, "key-refund-rest")
        .await
        .unwrap();
}

async fn a_refund_of_a_payment_stripe_does_not_have_is_refused(a: &dyn Account) {
    let op = operator();
    let r = NewRefund {
        payment_intent: "pi_never_made",
        amount: 100,
        purchase: "purchase_3",
        operator: &op,
    };
    let answer = a.port().refund_purchase(&r, "key-refund-missing").await;
    assert!(
        matches!(&answer, Err(StripeError::Api { status: 400, code: Some(c), .. }) if c == "resource_missing"),
        "{answer:?}"
    );
}

async fn an_unknown_payment_intent_is_not_found(a: &dyn Account) {
    let answer = a.port().retrieve_payment_intent("pi_never_made").await;
    assert!(
        matches!(answer, Err(StripeError::NotFound(_))),
        "{answer:?}"
    );
}

async fn a_payment_intent_is_answered_as_stripe_holds_it(a: &dyn Account) {
    a.put_payment_intent(&payment_intent(
        "pi_c3",
        "u11",
        "credits_100",
        2,
        1800,
        "succeeded",
    ));
    let pi = a.port().retrieve_payment_intent("pi_c3").await.unwrap();
    assert_eq!((pi.amount, pi.amount_received), (1800, Some(1800)));
    assert_eq!(pi.meta("user_id"), Some("u11"));
    assert_eq!(pi.meta("quantity"), Some("2"));
}

async fn a_meter_report_sent_twice_is_counted_once(a: &dyn Account) {
    let usage = MeterUsage {
        customer: "cus_u12",
        event_name: "api_calls",
        units: 7,
        identifier: "usage-key-1",
        at: 1_790_000_000,
    };
    a.port().report_meter_usage(&usage).await.unwrap();
    a.port().report_meter_usage(&usage).await.unwrap();
    let other = MeterUsage {
        identifier: "usage-key-2",
        units: 3,
        ..usage
    };
    a.port().report_meter_usage(&other).await.unwrap();
    assert_eq!(a.metered_units("cus_u12", "api_calls"), 10);
}

async fn events_are_listed_newest_first_within_the_window_and_of_the_types_asked(a: &dyn Account) {
    let session = checkout_session("cs_c4", "u13", "starter", "paid", 900);
    for (id, kind, created) in [
        ("evt_c_old", "checkout.session.completed", 1_000),
        ("evt_c_1", "checkout.session.completed", 2_000),
        ("evt_c_2", "charge.refunded", 3_000),
        ("evt_c_3", "checkout.session.completed", 4_000),
        ("evt_c_late", "checkout.session.completed", 9_000),
    ] {
        a.put_event(&event(id, kind, created, session.clone()));
    }
    let q = EventsQuery {
        created_gte: 1_500,
        created_lte: 5_000,
        types: &["checkout.session.completed"],
        starting_after: None,
    };
    let page = a.port().list_events(&q).await.unwrap();
    let ids: Vec<&str> = page.data.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, vec!["evt_c_3", "evt_c_1"]);
    assert!(!page.has_more);
    let after = EventsQuery {
        starting_after: Some("evt_c_3"),
        ..q
    };
    let rest = a.port().list_events(&after).await.unwrap();
    let ids: Vec<&str> = rest.data.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, vec!["evt_c_1"]);
}

async fn an_unknown_event_is_not_found_and_a_stored_one_is_answered(a: &dyn Account) {
    let stored = event(
        "evt_c_stored",
        "charge.refunded",
        5_000,
        json!({ "id": "ch_1" }),
    );
    a.put_event(&stored);
    let answer = a.port().retrieve_event("evt_never_sent").await;
    assert!(
        matches!(answer, Err(StripeError::NotFound(_))),
        "{answer:?}"
    );
    let found = a.port().retrieve_event("evt_c_stored").await.unwrap();
    assert_eq!(found["type"], "charge.refunded");
}

async fn a_customers_invoices_are_listed_newest_first_and_no_one_elses(a: &dyn Account) {
    for (id, user, created) in [
        ("in_c1", "u14", 100),
        ("in_c2", "u14", 300),
        ("in_c3", "someone_else", 200),
        ("in_c4", "u14", 200),
    ] {
        let mut invoice =
            subscription_invoice(id, "sub_x", user, "price_pro", "subscription_cycle", 900);
        invoice["created"] = created.into();
        a.put_invoice(&invoice, &[]);
    }
    let page = a.port().list_invoices("cus_u14", 2, None).await.unwrap();
    let ids: Vec<&str> = page.data.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["in_c2", "in_c4"]);
    assert!(page.has_more);
    let rest = a
        .port()
        .list_invoices("cus_u14", 2, Some("in_c4"))
        .await
        .unwrap();
    let ids: Vec<&str> = rest.data.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["in_c1"]);
    assert!(!rest.has_more);
}

async fn a_payment_intent_for_a_purchase_carries_the_purchase_and_is_held(a: &dyn Account) {
    let user = UserId::parse("u15").unwrap();
    let plan = PlanId::parse("credits_starter").unwrap();
    let purchase = NewPaymentIntent {
        amount: 1500,
        currency: "usd",
        user: &user,
        plan: &plan,
        quantity: 3,
        tax_calculation: None,
        customer: None,
    };
    let made = a
        .port()
        .create_payment_intent(&purchase, "key-pi-1")
        .await
        .unwrap();
    assert_eq!((made.amount, made.amount_received), (1500, Some(0)));
    assert_eq!(made.meta("user_id"), Some("u15"));
    assert_eq!(made.meta("plan_id"), Some("credits_starter"));
    assert_eq!(made.meta("quantity"), Some("3"));
    let again = a
        .port()
        .create_payment_intent(&purchase, "key-pi-1")
        .await
        .unwrap();
    assert_eq!(again.id, made.id, "a retried click makes one PaymentIntent");
    let held = a.port().retrieve_payment_intent(&made.id).await.unwrap();
    assert_eq!(held.meta("user_id"), Some("u15"));
}

async fn the_invoice_a_payment_paid_is_found_and_a_payment_of_none_finds_none(a: &dyn Account) {
    let invoice = subscription_invoice(
        "in_c9",
        "sub_y",
        "u16",
        "price_pro",
        "subscription_cycle",
        900,
    );
    a.put_invoice(&invoice, &["pi_paid_it"]);
    let port = a.port();
    assert_eq!(
        port.invoice_of_payment("pi_paid_it")
            .await
            .unwrap()
            .as_deref(),
        Some("in_c9")
    );
    assert_eq!(port.invoice_of_payment("pi_of_a_pack").await.unwrap(), None);
}

async fn a_created_price_is_found_by_its_lookup_key_and_a_second_one_for_the_key_is_refused(
    a: &dyn Account,
) {
    let port = a.port();
    let plan = PlanId::parse("pro_annual").unwrap();
    assert_eq!(
        port.find_price_by_lookup_key("billing_c_annual")
            .await
            .unwrap(),
        None
    );
    let product = NewProduct {
        name: "Pro annual".into(),
        plan: plan.clone(),
    };
    let product = port.create_product(&product, "key-prod").await.unwrap();
    let price = NewPrice {
        product,
        amount: 29000,
        currency: "usd".into(),
        lookup_key: "billing_c_annual".into(),
        plan,
        interval: Some("year".into()),
    };
    let id = port.create_price(&price, "key-price-1").await.unwrap();
    assert_eq!(
        port.find_price_by_lookup_key("billing_c_annual")
            .await
            .unwrap(),
        Some(id.clone())
    );
    let held = port.retrieve_price(&id).await.unwrap();
    assert_eq!((held.unit_amount, held.active), (Some(29000), true));
    assert_eq!(
        held.recurring.and_then(|r| r.interval).as_deref(),
        Some("year")
    );
    let second = port.create_price(&price, "key-price-2").await;
    assert!(
        matches!(&second, Err(e) if is_invalid_request(e)),
        "{second:?}"
    );
    let missing = port.retrieve_price("price_never_made").await;
    assert!(
        matches!(missing, Err(StripeError::NotFound(_))),
        "{missing:?}"
    );
}

async fn a_created_webhook_endpoint_is_listed_pinned_to_its_version_and_types(a: &dyn Account) {
    let port = a.port();
    assert!(port.list_webhook_endpoints().await.unwrap().is_empty());
    let endpoint = NewWebhookEndpoint {
        url: "https://hooks.example.com/api/stripe/webhook".into(),
        api_version: STRIPE_VERSION.into(),
        description: "billing".into(),
        enabled_events: vec![
            "checkout.session.completed".into(),
            "charge.refunded".into(),
        ],
    };
    let id = port
        .create_webhook_endpoint(&endpoint, "key-we")
        .await
        .unwrap();
    let listed = port.list_webhook_endpoints().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].url, endpoint.url);
    assert_eq!(listed[0].api_version.as_deref(), Some(STRIPE_VERSION));
    assert_eq!(listed[0].enabled_events, endpoint.enabled_events);
}

async fn a_new_checkout_is_open_sells_its_price_and_a_retry_makes_no_second_session(
    a: &dyn Account,
) {
    let config = billing_testing::config(&[("STRIPE_PRICE_CREDITS_STARTER", "price_starter")]);
    let plan = config
        .catalog
        .get(&PlanId::parse("credits_starter").unwrap())
        .unwrap();
    let user = UserId::parse("u17").unwrap();
    let checkout = NewCheckout {
        plan,
        price_id: "price_starter",
        quantity: 2,
        user: &user,
        email: Some("u17@example.com"),
        customer: None,
        success_url: "https://app.example.com/billing/success".into(),
        cancel_url: "https://app.example.com/billing/cancel".into(),
        trial_days: None,
        automatic_tax: false,
    };
    let port = a.port();
    let made = port.create_checkout(&checkout, "key-cs-1").await.unwrap();
    assert!(made.url.is_some_and(|u| u.starts_with("https://")));
    assert_eq!(
        port.checkout_status(&made.id).await.unwrap(),
        SessionStatus::Open
    );
    let items = port.checkout_line_items(&made.id).await.unwrap();
    assert_eq!(
        items[0].price.as_ref().map(|p| p.id.as_str()),
        Some("price_starter")
    );
    assert_eq!(items[0].quantity, Some(2));
    let again = port.create_checkout(&checkout, "key-cs-1").await.unwrap();
    assert_eq!(again.id, made.id, "a retried click opens one session");
    let other = port.create_checkout(&checkout, "key-cs-2").await.unwrap();
    assert_ne!(other.id, made.id);
}

async fn a_portal_session_returns_to_the_url_given_and_a_retry_gets_the_same_session(
    a: &dyn Account,
) {
    let port = a.port();
    let back = "https://app.example.com/billing";
    let made = port
        .create_portal_session("cus_c20", back, "key-bps-1")
        .await
        .unwrap();
    assert!(made.url.starts_with("https://"), "{}", made.url);
    let again = port
        .create_portal_session("cus_c20", back, "key-bps-1")
        .await
        .unwrap();
    assert_eq!(again, made, "a retried click opens one portal session");
    let other = port
        .create_portal_session("cus_c20", back, "key-bps-2")
        .await
        .unwrap();
    assert_ne!(other.url, made.url);
}

async fn the_active_portal_configuration_is_found_and_none_before_one_is_made(a: &dyn Account) {
    let port = a.port();
    assert_eq!(port.active_portal_configuration().await.unwrap(), None);
    a.put_portal_configuration("bpc_c21");
    assert_eq!(
        port.active_portal_configuration().await.unwrap().as_deref(),
        Some("bpc_c21")
    );
}

async fn a_previewed_change_is_the_new_price_times_the_seats_for_the_customers_own_subscription_only(
    a: &dyn Account,
) {
    let port = a.port();
    let plan = PlanId::parse("team_monthly").unwrap();
    let product = NewProduct {
        name: "Team".into(),
        plan: plan.clone(),
    };
    let product = port.create_product(&product, "key-prod-22").await.unwrap();
    let price = NewPrice {
        product,
        amount: 1200,
        currency: "usd".into(),
        lookup_key: "billing_c22_team".into(),
        plan,
        interval: Some("month".into()),
    };
    let team = port.create_price(&price, "key-price-22").await.unwrap();
    let held = subscription("sub_c22", "u22", "pro_monthly", "active", 1_800_000_000);
    let item = held["items"]["data"][0]["id"].as_str().unwrap().to_owned();
    a.put_subscription(&held);
    let change = PriceChange {
        item: &item,
        price: &team,
        quantity: 5,
    };
    let preview = port
        .preview_subscription_change("cus_u22", "sub_c22", &change)
        .await
        .unwrap();
    assert_eq!(preview.amount_due, Some(5 * 1200));
    assert_eq!(preview.next_payment_attempt, Some(1_800_000_000));
    let theirs = port
        .preview_subscription_change("cus_someone_else", "sub_c22", &change)
        .await;
    assert!(
        matches!(&theirs, Err(e) if is_invalid_request(e)),
        "{theirs:?}"
    );
    let missing = port
        .preview_subscription_change("cus_u22", "sub_never_made", &change)
        .await;
    assert!(
        matches!(&missing, Err(e) if is_invalid_request(e)),
        "named by a parameter, a missing subscription is a 400: {missing:?}"
    );
}

async fn a_tax_calculation_adds_the_tax_to_the_amount_and_a_retry_gets_its_first_answer(
    a: &dyn Account,
) {
    a.set_tax_rate_bps(825);
    let sale = TaxedSale {
        currency: "usd",
        amount: 2000,
        quantity: 2,
        reference: "credits_starter",
        country: "US",
        postal_code: "94103",
    };
    let port = a.port();
    let calc = port.calculate_tax(&sale, "key-tax-1").await.unwrap();
    assert_eq!(calc.tax_amount_exclusive, 165, "8.25 % of the line's 20.00");
    assert_eq!(calc.amount_total, 2165);
    assert!(calc.id.starts_with("taxcalc_"), "{}", calc.id);
    let again = port.calculate_tax(&sale, "key-tax-1").await.unwrap();
    assert_eq!(again, calc);
}

/// Each contract, once per adapter: `<contract>::in_memory` and `<contract>::over_http`.
macro_rules! contracts {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn in_memory() {
                super::$name(&super::InMemory(super::MemoryStripe::new())).await;
            }
            #[tokio::test]
            async fn over_http() {
                super::$name(&super::OverHttp::start().await).await;
            }
        }
    )*};
}

contracts!(
    an_unknown_subscription_is_not_found,
    a_subscription_is_answered_as_stripe_holds_it,
    a_price_change_moves_the_item_to_the_price_and_seats,
    a_price_change_naming_an_item_the_subscription_does_not_have_is_refused,
    a_retried_price_change_gets_its_first_answer,
    cancelling_at_period_end_schedules_the_end_and_resuming_clears_it,
    an_open_session_expires_and_stays_expired,
    expiring_a_completed_session_is_refused,
    an_unknown_session_is_not_found,
    a_sessions_line_items_name_the_prices_it_sold,
    a_refund_of_more_than_was_paid_is_refused,
    a_retried_refund_refunds_once,
    a_refund_of_a_payment_stripe_does_not_have_is_refused,
    an_unknown_payment_intent_is_not_found,
    a_payment_intent_is_answered_as_stripe_holds_it,
    a_meter_report_sent_twice_is_counted_once,
    events_are_listed_newest_first_within_the_window_and_of_the_types_asked,
    an_unknown_event_is_not_found_and_a_stored_one_is_answered,
    a_customers_invoices_are_listed_newest_first_and_no_one_elses,
    a_payment_intent_for_a_purchase_carries_the_purchase_and_is_held,
    the_invoice_a_payment_paid_is_found_and_a_payment_of_none_finds_none,
    a_created_price_is_found_by_its_lookup_key_and_a_second_one_for_the_key_is_refused,
    a_created_webhook_endpoint_is_listed_pinned_to_its_version_and_types,
    a_new_checkout_is_open_sells_its_price_and_a_retry_makes_no_second_session,
    a_portal_session_returns_to_the_url_given_and_a_retry_gets_the_same_session,
    the_active_portal_configuration_is_found_and_none_before_one_is_made,
    a_previewed_change_is_the_new_price_times_the_seats_for_the_customers_own_subscription_only,
    a_tax_calculation_adds_the_tax_to_the_amount_and_a_retry_gets_its_first_answer,
);
