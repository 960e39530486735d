//! Hardening: bad input of every kind (property tests, bounded case counts), isolation between
//! users, secrets in responses, and a duplicate storm through the local stack.
//!
//! The property tests call the functions' real handlers with API Gateway events built from
//! `events/` samples (so identity comes from the authorizer's claims, as in AWS) on fresh
//! in-memory services per case: no panic, a clear 4xx with the contract's error shape, and
//! nothing stored when a request is refused.

use billing_core::app::Services;
use billing_core::store::memory::MemoryTable;
use billing_core::stripe::signature::{self, SignatureHeader, TOLERANCE_SECS};
use billing_core::usecases::intake;
use billing_testing::{
    TEST_WEBHOOK_SECRET, checkout_session, event, fake_stripe, fixture, memory_services,
};
use black_box_tests::TestApp;
use futures::future::join_all;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

const NOW: i64 = 1_795_000_000;

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Any JSON value, up to a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        interesting_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings that tend to break parsers: empty, huge, unicode, paths, ids of the wrong kind.
fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        Just(String::new()),
        Just("x".repeat(5000)),
        Just("//evil.example.com".into()),
        Just("https://evil.example.com/".into()),
        Just("/ok/path".into()),
        Just("../../etc/passwd".into()),
        Just("evt_".into()),
        Just("cs_test_a".into()),
        Just("credits_starter".into()),
        Just("\u{0000}\u{202e}é😀".into()),
        "[A-Z0-9]{10}",
    ]
}

fn interesting_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1)),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(1e300)),
        Just(json!(1.5)),
        Just(json!("1")),
        any::<i64>().prop_map(Value::from),
    ]
}

/// A body for a route that takes `fields`: raw bytes, any JSON, or an object with (some of)
/// the route's own fields holding any value, plus perhaps an unknown one.
fn body_for(fields: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let field_value = prop_oneof![
        arb_json(),
        interesting_number(),
        interesting_string().prop_map(Value::from)
    ];
    let near_valid = (
        prop::collection::vec((prop::sample::select(fields), field_value), 0..5),
        prop::option::of(("[a-z]{1,8}", arb_json())),
    )
        .prop_map(|(pairs, extra)| {
            let mut o = serde_json::Map::new();
            for (k, v) in pairs {
                o.insert(k.to_string(), v);
            }
            if let Some((k, v)) = extra {
                o.insert(k, v);
            }
            Value::Object(o).to_string().into_bytes()
        });
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => arb_json().prop_map(|v| v.to_string().into_bytes()),
        2 => near_valid,
    ]
}

/// The API Gateway event of `sample` (in `events/`) with `body` in place of its own.
fn request(sample: &str, body: &[u8]) -> lambda_http::Request {
    let path = format!("{}/../events/{sample}", env!("CARGO_MANIFEST_DIR"));
    let mut e: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    match std::str::from_utf8(body) {
        Ok(text) => {
            e["body"] = text.into();
            e["isBase64Encoded"] = false.into();
        }
        Err(_) => {
            use base64::Engine;
            e["body"] = base64::engine::general_purpose::STANDARD
                .encode(body)
                .into();
            e["isBase64Encoded"] = true.into();
        }
    }
    lambda_http::request::from_str(&e.to_string()).unwrap()
}

/// In-memory services whose table counts writes, so "nothing stored" can be checked.
fn services() -> (Services, Arc<MemoryTable>) {
    let mut s = memory_services(&[]);
    let table = Arc::new(MemoryTable::new());
    s.table = table.clone();
    (s, table)
}

/// The contract for any answer to any input: no 5xx (but the documented 503 of a plan
/// without Stripe), the error envelope with a snake_case code and a message without a Rust
/// dump, and no write when the request was refused.
fn check_answer(status: u16, body: &[u8], writes: usize) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(body);
    prop_assert!(
        status < 500 || (status == 503 && text.contains("billing_unavailable")),
        "status {status}: {text}"
    );
    if status >= 400 {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| TestCaseError::fail(format!("error body is not JSON ({e}): {text}")))?;
        let code = v["error"]["code"].as_str().unwrap_or_default();
        let message = v["error"]["message"].as_str().unwrap_or_default();
        prop_assert!(
            !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "code {code:?}: {text}"
        );
        prop_assert!(!message.is_empty(), "{text}");
        for dump in ["Error {", "Some(", "panicked", "backtrace", "\\n    at "] {
            prop_assert!(!message.contains(dump), "a Rust dump in {text}");
        }
        prop_assert_eq!(writes, 0, "a refused request stored something: {}", text);
    }
    Ok(())
}

macro_rules! handler_property {
    ($name:ident, $cases:expr, $sample:expr, $fields:expr, $handler:path) => {
        proptest! {
            #![proptest_config(cases($cases))]
            #[test]
            fn $name(body in body_for($fields)) {
                let rt = runtime();
                let (s, table) = services();
                let resp = rt.block_on($handler(&s, request($sample, &body))).unwrap();
                check_answer(resp.status().as_u16(), resp.body().as_ref(), table.write_requests())?;
            }
        }
    };
}

handler_property!(
    any_checkout_body_gets_an_answer_from_the_contract_and_a_refusal_stores_nothing,
    96,
    "checkout.json",
    &["plan_id", "quantity", "success_path", "cancel_path"],
    checkout::handle
);
handler_property!(
    any_switch_body_gets_an_answer_from_the_contract_and_a_refusal_stores_nothing,
    64,
    "subscription-switch.json",
    &["plan_id"],
    checkout::handle
);
handler_property!(
    any_service_usage_body_gets_an_answer_from_the_contract_and_a_refusal_stores_nothing,
    64,
    "service-usage.json",
    &["units", "idempotency_key"],
    usage::handle
);
handler_property!(
    any_portal_body_gets_an_answer_from_the_contract_and_a_refusal_stores_nothing,
    64,
    "portal.json",
    &["return_path"],
    portal::handle
);
handler_property!(
    any_usage_body_gets_an_answer_from_the_contract_and_a_refusal_stores_nothing,
    96,
    "usage.json",
    &["units", "idempotency_key"],
    usage::handle
);
handler_property!(
    any_referral_body_gets_an_answer_from_the_contract_and_a_refusal_stores_nothing,
    64,
    "referral.json",
    &["code"],
    referral::handle
);
handler_property!(
    any_grant_body_gets_an_answer_from_the_contract_and_a_refusal_stores_nothing,
    96,
    "admin-grant.json",
    &["user_id", "days", "credits", "reason"],
    admin::handle
);
handler_property!(
    any_replay_body_gets_an_answer_from_the_contract_and_a_refusal_stores_nothing,
    64,
    "admin-replay.json",
    &["event_id"],
    admin::handle
);
handler_property!(
    any_reconcile_body_gets_an_answer_from_the_contract_and_a_refusal_stores_nothing,
    64,
    "admin-reconcile.json",
    &["since"],
    admin::handle
);

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn the_signature_header_parser_never_panics_and_nothing_unsigned_verifies(
        header in prop_oneof![
            ".{0,80}",
            "(t=-?[0-9]{0,12}|v1=[0-9a-fA-F]{0,70}|v0=[a-z]{0,5}|[a-z0-9=]{0,8})(,(t=-?[0-9]{0,20}|v1=[0-9a-f]{0,64}| ?[a-z0-9=,]{0,8})){0,4}",
        ],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = SignatureHeader::parse(&header);
        let secrets = vec![billing_core::app::config::SecretString::from(TEST_WEBHOOK_SECRET.to_owned())];
        let genuine = signature::sign(TEST_WEBHOOK_SECRET, NOW, &body);
        prop_assume!(header != genuine);
        prop_assert!(signature::verify(&header, &body, &secrets, NOW, TOLERANCE_SECS).is_err());
    }

    #[test]
    fn a_signed_body_that_is_not_an_event_is_a_400_and_stores_nothing(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            arb_json().prop_map(|v| v.to_string().into_bytes()),
            (arb_json(), prop::sample::select(billing_core::stripe::event_types::HANDLED)).prop_map(|(o, kind)| {
                json!({ "id": o, "type": kind, "created": "x", "data": {} }).to_string().into_bytes()
            }),
        ],
    ) {
        let rt = runtime();
        let (s, table) = services();
        let now = chrono::Utc::now().timestamp();
        let header = signature::sign(TEST_WEBHOOK_SECRET, now, &body);
        let req = webhook_request(&body, Some(&header));
        let resp = rt.block_on(webhook::handle(&s, req)).unwrap();
        check_answer(resp.status().as_u16(), resp.body().as_ref(), table.write_requests())?;
        prop_assert_eq!(resp.status().as_u16(), 400);
    }

    #[test]
    fn any_unsigned_or_badly_signed_delivery_is_a_400_and_stores_nothing(
        body in arb_json().prop_map(|v| v.to_string().into_bytes()),
        header in prop::option::of(".{0,100}"),
    ) {
        let rt = runtime();
        let (s, table) = services();
        let resp = rt.block_on(webhook::handle(&s, webhook_request(&body, header.as_deref()))).unwrap();
        check_answer(resp.status().as_u16(), resp.body().as_ref(), table.write_requests())?;
        prop_assert!(matches!(resp.status().as_u16(), 400 | 413));
    }
}

proptest! {
    #![proptest_config(cases(128))]

    /// Every event type the worker handles, carrying any object (or a fixture with any of its
    /// fields replaced): intake accepts it as an event, and the worker applies or refuses it
    /// without panicking.
    #[test]
    fn any_object_in_a_handled_event_is_applied_or_refused_without_a_panic(
        kind in prop::sample::select(billing_core::stripe::event_types::HANDLED),
        object in prop_oneof![
            arb_json(),
            (prop::sample::select(vec!["checkout.session", "subscription", "invoice", "charge", "dispute"]),
             "[a-z_]{2,20}", arb_json())
                .prop_map(|(resource, field, v)| {
                    let mut o = fixture(resource);
                    o[field.as_str()] = v;
                    o
                }),
            (arb_json(), arb_json()).prop_map(|(metadata, customer)| {
                let mut o = checkout_session("cs_test_prop", "prop_user", "credits_starter", "paid", 1000);
                o["metadata"] = metadata;
                o["customer"] = customer;
                o
            }),
        ],
    ) {
        let rt = runtime();
        let (s, _table) = services();
        let body = event("evt_prop_1", kind, NOW, object).to_string();
        let header = signature::sign(TEST_WEBHOOK_SECRET, chrono::Utc::now().timestamp(), body.as_bytes());
        let accepted = rt.block_on(intake::receive(&s, Some(&header), body.as_bytes()));
        prop_assert!(accepted.is_ok(), "{:?}", accepted);
        let _ = rt.block_on(billing_core::usecases::fulfil::process(&s, &body));
    }
}

fn webhook_request(body: &[u8], header: Option<&str>) -> lambda_http::Request {
    let mut req = request("webhook.json", body);
    let headers = req.headers_mut();
    headers.remove("stripe-signature");
    if let Some(h) = header.and_then(|h| h.parse().ok()) {
        headers.insert("stripe-signature", h);
    }
    req
}

const SECRET_KEY: &str = "sk_test_SECURITY_scan_key_42";
const PRICE: &str = "price_SECURITY_scan_9";

#[tokio::test]
async fn no_route_shows_one_users_data_to_another_or_a_secret_to_anyone() {
    let stripe = fake_stripe("cs_test_sec_new").await;
    let base = stripe.uri();
    let app = TestApp::spawn_with(&[
        ("STRIPE_SECRET_KEY", SECRET_KEY),
        ("STRIPE_API_BASE", &base),
        ("STRIPE_PRICE_CREDITS_STARTER", PRICE),
    ])
    .await;

    // Alice pays, has a Stripe customer, an email and a referral code.
    let mut session = checkout_session(
        "cs_test_sec_alice",
        "alice_sec",
        "credits_starter",
        "paid",
        1000,
    );
    session["customer_details"]["email"] = "alice.private@example.com".into();
    let paid = event("evt_sec_alice", "checkout.session.completed", NOW, session);
    assert_eq!(app.deliver(&paid).await.body["status"], "queued");
    app.eventually("alice's credits", || async {
        app.account("alice_sec").await["credits"]["balance"] == 1000
    })
    .await;
    let alice = app.account("alice_sec").await;
    let alice_code = alice["referral"]["code"].as_str().unwrap().to_owned();

    // Bob sees only his own account, cannot open Alice's portal, and spends his own uses.
    let bob = app.token("bob_sec");
    let bob_account = app.get("/api/billing/account", Some(&bob)).await;
    assert_eq!(bob_account.body["user_id"], "bob_sec");
    assert_eq!(bob_account.body["credits"]["balance"], 0);
    assert_eq!(bob_account.body["purchases"], json!([]));
    let portal = app
        .post_json("/api/billing/portal", Some(&bob), &json!({}))
        .await;
    assert_eq!(
        (portal.status, portal.body["error"]["code"].as_str()),
        (404, Some("no_customer"))
    );
    let used = app
        .post_json(
            "/api/billing/usage",
            Some(&bob),
            &json!({ "units": 1, "idempotency_key": "bob-1" }),
        )
        .await;
    assert_eq!(used.status, 200, "{}", used.body);
    assert_eq!(app.account("alice_sec").await["credits"], alice["credits"]);
    // A public read of Alice's checkout shows its state and nothing about her.
    let status = app
        .get(
            "/api/billing/checkout-status?session_id=cs_test_sec_alice",
            None,
        )
        .await;
    assert_eq!(
        status.body,
        json!({ "session_id": "cs_test_sec_alice", "state": "fulfilled" })
    );

    // Every route, as anonymous, as Bob and as an operator, with an empty and a plausible
    // body: no answer carries Alice's data (unless it is hers or an operator's view of
    // events, which carries ids only) or any configured secret.
    let admin = black_box_tests_admin_token();
    // (Alice's referral code is not private: Bob may type it to claim it.)
    let alice_private = ["alice.private@example.com", "cus_alice_sec", "alice_sec"];
    let secrets = [
        SECRET_KEY,
        PRICE,
        TEST_WEBHOOK_SECRET,
        black_box_tests::JWT_SECRET,
    ];
    let mut answers = 0;
    for (m, p, _, _) in local_stack::server::ROUTES {
        for (who, token) in [
            ("anonymous", None),
            ("bob", Some(bob.as_str())),
            ("operator", Some(admin.as_str())),
        ] {
            for body in [
                json!({}),
                json!({ "plan_id": "credits_starter", "units": 1, "idempotency_key": "k",
                                              "code": alice_code, "event_id": "evt_sec_alice",
                                              "user_id": "alice_sec", "reason": "scan", "days": 1 }),
            ] {
                let r = if *m == "GET" {
                    app.get(&format!("{p}?session_id=cs_test_sec_alice"), token)
                        .await
                } else {
                    app.post_json(p, token, &body).await
                };
                answers += 1;
                let text = format!("{} {:?}", r.body, r.headers);
                assert!(
                    r.status < 500 || r.status == 503,
                    "{m} {p} as {who}: {} {text}",
                    r.status
                );
                for s in secrets {
                    assert!(!text.contains(s), "{m} {p} as {who} shows a secret: {text}");
                }
                if who == "bob" {
                    for private in alice_private {
                        assert!(
                            !text.contains(private),
                            "{m} {p} shows Bob Alice's {private}: {text}"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(answers, local_stack::server::ROUTES.len() * 6);
}

fn black_box_tests_admin_token() -> String {
    local_stack::auth::token(
        black_box_tests::JWT_SECRET,
        "operator_sec",
        None,
        "openid billing:admin",
        3600,
    )
}

/// The in-memory storm (shared/tests/core/reliability.rs) at the HTTP level: 40 new events, each
/// delivered 5 times at once, through the front, moto, the queue and the worker.
#[tokio::test]
async fn a_storm_of_duplicate_deliveries_through_the_stack_fulfils_each_event_once() {
    let app = TestApp::spawn().await;
    let events: Vec<Value> = (0..40)
        .map(|i| {
            event(
                &format!("evt_bbstorm_{i}"),
                "checkout.session.completed",
                NOW,
                checkout_session(
                    &format!("cs_test_bbstorm_{i}"),
                    &format!("bbstorm{}", i % 8),
                    "credits_starter",
                    "paid",
                    1000,
                ),
            )
        })
        .collect();
    let deliveries: Vec<&Value> = events
        .iter()
        .flat_map(|e| std::iter::repeat_n(e, 5))
        .collect();
    let mut pending: Vec<&Value> = deliveries;
    let mut queued = HashSet::new();
    // Stripe retries a 409 (another delivery in progress) or a 5xx; retry like Stripe.
    for _ in 0..10 {
        let replies = join_all(pending.iter().map(|e| app.deliver(e))).await;
        let mut again = Vec::new();
        for (e, r) in pending.iter().zip(replies) {
            match (r.status, r.body["status"].as_str()) {
                (200, Some("queued")) => assert!(
                    queued.insert(e["id"].to_string()),
                    "queued twice: {}",
                    e["id"]
                ),
                (200, Some("duplicate")) => {}
                (409, _) | (500..=599, _) => again.push(*e),
                other => panic!("unexpected answer {other:?}: {}", r.body),
            }
        }
        if again.is_empty() {
            break;
        }
        pending = again;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(queued.len(), 40);
    app.eventually("every checkout fulfilled", || async {
        let mut all = true;
        for u in 0..8 {
            all &= app.account(&format!("bbstorm{u}")).await["credits"]["balance"] == 5000;
        }
        all
    })
    .await;
    // Late redeliveries by the queue change nothing: wait past a visibility timeout.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    for u in 0..8 {
        let a = app.account(&format!("bbstorm{u}")).await;
        assert_eq!(
            (
                a["credits"]["balance"].as_i64(),
                a["purchases"].as_array().map(Vec::len)
            ),
            (Some(5000), Some(5))
        );
    }
}
