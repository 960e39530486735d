//! Test support: Stripe's official fixture objects and events built from them.
//!
//! Every event a test sends starts from `testdata/stripe/fixtures3.json` and overrides
//! only ids, metadata, amounts and states, so our types are proven against real shapes.

use crate::config::Config;
use crate::runtime::Services;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;

pub const FIXTURES: &str = include_str!("../testdata/stripe/fixtures3.json");
pub const TEST_WEBHOOK_SECRET: &str = "whsec_test_secret";

pub fn fixtures() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(FIXTURES).expect("the vendored fixtures are JSON"))
}

/// One official example object, e.g. `fixture("checkout.session")`.
pub fn fixture(resource: &str) -> Value {
    fixtures()["resources"][resource].clone()
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, p) => *t = p,
    }
}

/// The fixture `resource` with `patch` merged in (objects merge, other values replace).
pub fn object(resource: &str, patch: Value) -> Value {
    let mut o = fixture(resource);
    merge(&mut o, patch);
    o
}

/// A webhook event envelope from the fixture, carrying `object`.
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    let mut e = fixture("event");
    merge(
        &mut e,
        json!({ "id": id, "type": kind, "created": created, "livemode": false,
                "api_version": "2026-10-28.endive", "data": { "object": Value::Null } }),
    );
    e["data"]["object"] = object;
    e
}

/// A Checkout Session as our checkout creates it: metadata names the user and plan.
pub fn checkout_session(
    session_id: &str,
    user: &str,
    plan: &str,
    payment_status: &str,
    amount: i64,
) -> Value {
    let mode = if plan.starts_with("pro_") || plan == "retainer" {
        "subscription"
    } else {
        "payment"
    };
    // `metadata` replaces rather than merges: the fixture's own keys must not leak in.
    let mut s = object(
        "checkout.session",
        json!({
            "id": session_id,
            "client_reference_id": user,
            "mode": mode,
            "payment_status": payment_status,
            "status": "complete",
            "amount_total": amount,
            "currency": "usd",
            "customer": format!("cus_{user}"),
            "payment_intent": format!("pi_{session_id}"),
        }),
    );
    s["metadata"] = json!({ "user_id": user, "plan_id": plan });
    s
}

/// A subscription with the current API's shape (period on the items).
pub fn subscription(sub_id: &str, user: &str, plan: &str, status: &str, period_end: i64) -> Value {
    let mut s = object(
        "subscription",
        json!({
            "id": sub_id,
            "customer": format!("cus_{user}"),
            "status": status,
            "cancel_at_period_end": false,
            "trial_end": Value::Null,
        }),
    );
    s["metadata"] = json!({ "user_id": user, "plan_id": plan });
    if let Some(item) = s["items"]["data"].get_mut(0) {
        item["current_period_end"] = period_end.into();
    }
    s
}

/// A `Stripe-Signature` header for `body` at `timestamp` with `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    crate::signature::sign(secret, timestamp, body.as_bytes())
}

/// A config for tests: the test webhook secret, default catalog, plus `extra` variables.
pub fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([(
        "STRIPE_WEBHOOK_SECRET".to_owned(),
        TEST_WEBHOOK_SECRET.to_owned(),
    )]);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|name| vars.get(name).cloned()).expect("test config is valid")
}

/// In-memory services with the test config.
pub fn memory_services(extra: &[(&str, &str)]) -> Services {
    Services::in_memory(config(extra))
}

/// Wraps a real queue adapter and fails chosen sends, to test crash and outage paths.
pub struct FlakyQueue<Q> {
    pub inner: Q,
    fail_sends: std::sync::atomic::AtomicUsize,
}

impl<Q> FlakyQueue<Q> {
    pub fn new(inner: Q) -> Self {
        Self {
            inner,
            fail_sends: Default::default(),
        }
    }
    /// The next `n` sends fail as if SQS were unreachable.
    pub fn fail_next_sends(&self, n: usize) {
        self.fail_sends
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl<Q: crate::queue::Queue> crate::queue::Queue for FlakyQueue<Q> {
    async fn send(
        &self,
        m: &crate::queue::OutgoingMessage,
    ) -> Result<(), crate::queue::QueueError> {
        use std::sync::atomic::Ordering;
        if self
            .fail_sends
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(crate::queue::QueueError::Unavailable(
                "injected send failure".into(),
            ));
        }
        self.inner.send(m).await
    }
    async fn receive(
        &self,
        max: usize,
        wait: std::time::Duration,
    ) -> Result<Vec<crate::queue::ReceivedMessage>, crate::queue::QueueError> {
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), crate::queue::QueueError> {
        self.inner.delete(receipt).await
    }
}

/// Wraps a real table adapter and fails chosen writes, to test outages half-way.
pub struct FlakyTable<T> {
    pub inner: T,
    fail_puts: std::sync::atomic::AtomicUsize,
    fail_updates: std::sync::atomic::AtomicUsize,
    fail_transactions: std::sync::atomic::AtomicUsize,
}

impl<T> FlakyTable<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            fail_puts: Default::default(),
            fail_updates: Default::default(),
            fail_transactions: Default::default(),
        }
    }
    pub fn fail_next_puts(&self, n: usize) {
        self.fail_puts.store(n, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn fail_next_updates(&self, n: usize) {
        self.fail_updates
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn fail_next_transactions(&self, n: usize) {
        self.fail_transactions
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }
}

fn take(counter: &std::sync::atomic::AtomicUsize) -> bool {
    use std::sync::atomic::Ordering;
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[async_trait::async_trait]
impl<T: crate::store::Table> crate::store::Table for FlakyTable<T> {
    async fn get(
        &self,
        key: &crate::store::Key,
    ) -> Result<Option<crate::store::Item>, crate::store::StoreError> {
        self.inner.get(key).await
    }
    async fn query(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<crate::store::Item>, crate::store::StoreError> {
        self.inner.query(pk, prefix).await
    }
    async fn query_index(
        &self,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<crate::store::Page, crate::store::StoreError> {
        self.inner.query_index(pk, limit, after).await
    }
    async fn put(
        &self,
        key: &crate::store::Key,
        item: crate::store::Item,
        cond: Option<crate::store::Cond>,
    ) -> Result<(), crate::store::StoreError> {
        if take(&self.fail_puts) {
            return Err(crate::store::StoreError::Unavailable(
                "injected put failure".into(),
            ));
        }
        self.inner.put(key, item, cond).await
    }
    async fn update(
        &self,
        key: &crate::store::Key,
        ops: Vec<crate::store::Op>,
        cond: Option<crate::store::Cond>,
    ) -> Result<crate::store::Item, crate::store::StoreError> {
        if take(&self.fail_updates) {
            return Err(crate::store::StoreError::Unavailable(
                "injected update failure".into(),
            ));
        }
        self.inner.update(key, ops, cond).await
    }
    async fn transact(
        &self,
        writes: Vec<crate::store::Write>,
    ) -> Result<(), crate::store::StoreError> {
        if take(&self.fail_transactions) {
            return Err(crate::store::StoreError::Unavailable(
                "injected transaction failure".into(),
            ));
        }
        self.inner.transact(writes).await
    }
}

/// A fake Stripe API on a free loopback port, answering with the official fixtures: a new
/// Checkout Session `session_id` (open, with its hosted URL), a Billing Portal session, and
/// an empty page of events. Tests point `STRIPE_API_BASE` at its `uri()` and may mount more.
pub async fn fake_stripe(session_id: &str) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let session = object(
        "checkout.session",
        json!({
            "id": session_id,
            "url": format!("https://checkout.stripe.com/c/pay/{session_id}"),
            "status": "open",
        }),
    );
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(session))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("billing_portal.session")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "object": "list", "data": [], "has_more": false, "url": "/v1/events" }),
        ))
        .mount(&server)
        .await;
    server
}
