//! The operator use cases, on in-memory adapters and the in-memory Stripe.

use billing_core::app::Services;
use billing_core::domain::entitlement::Tier;
use billing_core::domain::ids::{EventId, UserId};
use billing_core::inbound::commands;
use billing_core::inbound::http::Identity;
use billing_core::store::ItemExt;
use billing_core::store::{records, schema};
use billing_core::usecases::account::account;
use billing_core::usecases::admin::{
    self, AdminError, GrantRequest, ReconcileRequest, ReplayRequest,
};
use billing_core::usecases::intake;
use billing_testing::memory_stripe::{MemoryStripe, Method};
use billing_testing::{
    TEST_WEBHOOK_SECRET, checkout_session, event, memory_services, memory_services_with_stripe,
    signature, subscription,
};
use serde_json::json;
use std::sync::Arc;

const T0: i64 = 1_795_000_000;

async fn deliver(s: &Services, e: &serde_json::Value) -> intake::IntakeOutcome {
    let body = e.to_string();
    let header = signature(TEST_WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
    intake::receive(s, Some(&header), body.as_bytes())
        .await
        .unwrap()
}

fn operator() -> Identity {
    billing_testing::operator("ops_1")
}

fn credits(id: &str, session: &str, user: &str) -> serde_json::Value {
    event(
        id,
        "checkout.session.completed",
        T0,
        checkout_session(session, user, "credits_starter", "paid", 1000),
    )
}

async fn balance(s: &Services, user: &str) -> i64 {
    account(s, &UserId::parse(user).unwrap())
        .await
        .unwrap()
        .credits
        .balance
}

/// The events query as the handler parses it from `?state=&limit=&cursor=`.
fn query(state: Option<&str>, limit: Option<&str>, cursor: Option<&str>) -> admin::EventsQuery {
    let owned = |v: Option<&str>| v.map(str::to_owned);
    commands::list_events(owned(state), owned(limit), owned(cursor)).unwrap()
}

#[tokio::test]
async fn the_event_list_filters_by_state_newest_first_and_pages() {
    let s = memory_services(&[]);
    for i in 0..3 {
        deliver(
            &s,
            &credits(&format!("evt_l{i}"), &format!("cs_test_l{i}"), "u"),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    deliver(
        &s,
        &event(
            "evt_ign",
            "plan.created",
            T0,
            billing_testing::fixture("plan"),
        ),
    )
    .await;
    billing_core::usecases::fulfil::process(&s, &credits("evt_l0", "cs_test_l0", "u").to_string())
        .await
        .unwrap();

    let all = admin::list_events(&s, &query(None, None, None))
        .await
        .unwrap();
    let ids: Vec<&str> = all.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["evt_ign", "evt_l2", "evt_l1", "evt_l0"]);
    assert_eq!(all.events[0].state, "ignored");
    assert_eq!(
        (
            all.events[3].state.as_str(),
            all.events[3].processed_at.is_some()
        ),
        ("processed", true)
    );

    let queued = admin::list_events(&s, &query(Some("queued"), Some("1"), None))
        .await
        .unwrap();
    assert_eq!(
        queued
            .events
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["evt_l2"]
    );
    let next = admin::list_events(
        &s,
        &query(Some("queued"), Some("1"), queued.next.as_deref()),
    )
    .await
    .unwrap();
    assert_eq!(next.events[0].id, "evt_l1");
    assert_eq!(
        next.next, None,
        "evt_l0 was processed, so no queued event is older"
    );

    for (state, limit) in [
        (Some("done"), None),
        (None, Some("0")),
        (None, Some("201")),
        (None, Some("ten")),
    ] {
        let owned = |v: Option<&str>| v.map(str::to_owned);
        assert!(matches!(
            commands::list_events(owned(state), owned(limit), None),
            Err(AdminError::InvalidRequest(_))
        ));
    }
}

#[tokio::test]
async fn replaying_an_applied_event_applies_nothing_twice() {
    let s = memory_services(&[]);
    let e = credits("evt_r1", "cs_test_r1", "rita");
    deliver(&s, &e).await;
    billing_core::usecases::fulfil::process(&s, &e.to_string())
        .await
        .unwrap();
    let out = admin::replay(
        &s,
        ReplayRequest {
            event: billing_core::domain::ids::EventId::parse("evt_r1").unwrap(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (out.state, out.outcome),
        ("processed", Some("already_applied"))
    );
    assert_eq!(balance(&s, "rita").await, 1000);
}

#[tokio::test]
async fn replaying_a_failed_event_that_now_succeeds_shows_processed() {
    let s = memory_services(&[]);
    // A subscription for a customer we do not know yet fails...
    let mut sub = subscription("sub_r2", "sam", "pro_monthly", "active", T0 + 1000);
    sub["metadata"] = json!({});
    let e = event("evt_r2", "customer.subscription.created", T0, sub);
    deliver(&s, &e).await;
    assert!(
        billing_core::usecases::fulfil::process(&s, &e.to_string())
            .await
            .is_err()
    );
    let failed = admin::list_events(&s, &query(Some("failed"), None, None))
        .await
        .unwrap();
    assert_eq!(failed.events[0].id, "evt_r2");
    assert!(failed.events[0].error.as_deref().unwrap().contains("user"));
    // ...until the customer's checkout is processed; the replay then applies it.
    billing_core::usecases::fulfil::process(
        &s,
        &credits("evt_r2c", "cs_test_r2", "sam").to_string(),
    )
    .await
    .unwrap();
    let out = admin::replay(
        &s,
        ReplayRequest {
            event: billing_core::domain::ids::EventId::parse("evt_r2").unwrap(),
        },
    )
    .await
    .unwrap();
    assert_eq!((out.state, out.outcome), ("processed", Some("applied")));
    let listed = admin::list_events(&s, &query(Some("processed"), None, None))
        .await
        .unwrap();
    assert!(
        listed
            .events
            .iter()
            .any(|e| e.id == "evt_r2" && e.error.is_none())
    );
    assert_eq!(
        account(&s, &UserId::parse("sam").unwrap())
            .await
            .unwrap()
            .tier,
        "paid"
    );
}

#[tokio::test]
async fn a_replay_of_an_unknown_or_ignored_event_is_refused() {
    let s = memory_services(&[]);
    assert!(matches!(
        admin::replay(
            &s,
            ReplayRequest {
                event: billing_core::domain::ids::EventId::parse("evt_none").unwrap()
            }
        )
        .await,
        Err(AdminError::UnknownEvent(_))
    ));
    // A malformed id is refused where the request enters, before the use case.
    assert!(matches!(
        commands::replay(br#"{"event_id": "bad id"}"#),
        Err(AdminError::InvalidRequest(_))
    ));
    deliver(
        &s,
        &event(
            "evt_ig",
            "plan.created",
            T0,
            billing_testing::fixture("plan"),
        ),
    )
    .await;
    assert!(matches!(
        admin::replay(
            &s,
            ReplayRequest {
                event: billing_core::domain::ids::EventId::parse("evt_ig").unwrap()
            }
        )
        .await,
        Err(AdminError::NotReplayable(..))
    ));
}

#[tokio::test]
async fn secrets_in_a_payload_are_redacted_before_it_is_stored() {
    let s = memory_services(&[]);
    let mut session = checkout_session("cs_test_red", "rae", "credits_starter", "paid", 1000);
    session["metadata"]["note"] = json!("pasted sk_live_51SECRETabc and whsec_leaky1 by mistake");
    deliver(
        &s,
        &event("evt_red", "checkout.session.completed", T0, session),
    )
    .await;
    let record = s
        .table
        .get(&records::event::key(&EventId::parse("evt_red").unwrap()))
        .await
        .unwrap()
        .unwrap();
    let stored = record.str("payload").unwrap();
    assert!(
        !stored.contains("sk_live_51SECRETabc") && !stored.contains("whsec_leaky1"),
        "{stored}"
    );
    assert!(stored.contains("[REDACTED]"));
    // The stored (redacted) payload still replays.
    let out = admin::replay(
        &s,
        ReplayRequest {
            event: billing_core::domain::ids::EventId::parse("evt_red").unwrap(),
        },
    )
    .await
    .unwrap();
    assert_eq!(out.state, "processed");
    assert_eq!(balance(&s, "rae").await, 1000);
}

#[tokio::test]
async fn reconcile_ingests_only_the_events_never_recorded() {
    // Stripe stores three events of the last hour; one of them was delivered already.
    let stripe = Arc::new(MemoryStripe::new());
    let listed = |id: &str| {
        let mut e = credits(id, &format!("cs_test_{id}"), "ola");
        e["created"] = (chrono::Utc::now().timestamp() - 3600).into();
        e
    };
    for id in ["evt_rc1", "evt_rc2", "evt_rc3"] {
        stripe.put_event(&listed(id));
    }
    let s = memory_services_with_stripe(&stripe, &[("STRIPE_SECRET_KEY", "sk_test_rc")]);
    deliver(&s, &listed("evt_rc2")).await;

    let out = admin::reconcile(&s, ReconcileRequest::default())
        .await
        .unwrap();
    assert_eq!((out.fetched, out.ingested), (3, 2));
    for id in ["evt_rc1", "evt_rc3"] {
        let record = s
            .table
            .get(&records::event::key(&EventId::parse(id).unwrap()))
            .await
            .unwrap()
            .unwrap();
        // Claimed and sent: in progress until the worker settles it (listed as queued).
        assert_eq!(record.str("status"), Some("in_progress"), "{id}");
    }
    let again = admin::reconcile(&s, ReconcileRequest::default())
        .await
        .unwrap();
    assert_eq!((again.fetched, again.ingested), (3, 0));
    // The window never reaches past Stripe's 30 days.
    let first = &stripe.calls_of(Method::ListEvents)[0];
    let gte = first.args["created_gte"].as_i64().unwrap();
    assert!(gte >= chrono::Utc::now().timestamp() - 30 * 86400 - 5);
}

#[tokio::test]
async fn reconcile_refuses_a_future_window_and_needs_stripe() {
    let s = memory_services(&[]);
    assert!(matches!(
        admin::reconcile(&s, ReconcileRequest::default()).await,
        Err(AdminError::StripeUnavailable)
    ));
    let future = commands::reconcile(br#"{"since": "2999-01-01T00:00:00Z"}"#).unwrap();
    assert!(matches!(
        admin::reconcile(&s, future).await,
        Err(AdminError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn a_grant_adds_days_and_credits_with_an_audit_record() {
    let s = memory_services(&[]);
    let req = |days, credits| GrantRequest {
        user: billing_core::domain::ids::UserId::parse("gus").unwrap(),
        days,
        credits,
        reason: "support ticket 42".into(),
        idempotency_key: None,
        feature: None,
        units: None,
    };
    let first = admin::grant(&s, &operator(), req(Some(10), Some(50)))
        .await
        .unwrap();
    let a = account(&s, &UserId::parse("gus").unwrap()).await.unwrap();
    assert_eq!((a.tier, a.credits.balance), (Tier::Paid, 50));
    let second = admin::grant(&s, &operator(), req(Some(5), None))
        .await
        .unwrap();
    let (u1, u2) = (first.credit_until.unwrap(), second.credit_until.unwrap());
    let gap = chrono::DateTime::parse_from_rfc3339(&u2).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&u1).unwrap();
    assert_eq!(gap.num_days(), 5, "days stack on a future credit_until");
    let audits = s
        .table
        .query(&schema::user_pk(&UserId::parse("gus").unwrap()), "GRANT#")
        .await
        .unwrap();
    assert_eq!(audits.len(), 2);
    assert_eq!(
        (audits[0].str("operator"), audits[0].str("reason")),
        (Some("ops_1"), Some("support ticket 42"))
    );
}

#[tokio::test]
async fn a_bad_grant_is_refused_and_changes_nothing() {
    let s = memory_services(&[]);
    let bad = [
        GrantRequest {
            user: billing_core::domain::ids::UserId::parse("gil").unwrap(),
            days: None,
            credits: None,
            reason: "x".into(),
            idempotency_key: None,
            feature: None,
            units: None,
        },
        GrantRequest {
            user: billing_core::domain::ids::UserId::parse("gil").unwrap(),
            days: Some(-1),
            credits: None,
            reason: "x".into(),
            idempotency_key: None,
            feature: None,
            units: None,
        },
        GrantRequest {
            user: billing_core::domain::ids::UserId::parse("gil").unwrap(),
            days: None,
            credits: Some(20_000_000),
            reason: "x".into(),
            idempotency_key: None,
            feature: None,
            units: None,
        },
        GrantRequest {
            user: billing_core::domain::ids::UserId::parse("gil").unwrap(),
            days: Some(1),
            credits: None,
            reason: "  ".into(),
            idempotency_key: None,
            feature: None,
            units: None,
        },
    ];
    for req in bad {
        assert!(matches!(
            admin::grant(&s, &operator(), req).await,
            Err(AdminError::InvalidRequest(_))
        ));
    }
    // A malformed user id is refused where the request enters, before the use case.
    assert!(matches!(
        commands::grant(br#"{"user_id": "g#l", "days": 1, "reason": "x"}"#),
        Err(AdminError::InvalidRequest(_))
    ));
    assert!(
        s.table
            .query(&schema::user_pk(&UserId::parse("gil").unwrap()), "")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_grant_retried_after_an_ambiguous_commit_applies_once() {
    use billing_testing::faults::Fault;
    use billing_testing::harness::Harness;
    let h = Harness::new(
        &[],
        billing_core::queue::memory::MemoryQueue::default(),
        1_795_000_000,
    );
    let req = || GrantRequest {
        user: billing_core::domain::ids::UserId::parse("amb").unwrap(),
        days: Some(3),
        credits: Some(50),
        reason: "goodwill".into(),
        idempotency_key: Some("ticket-7".into()),
        feature: None,
        units: None,
    };
    // Calls: the key's marker read, the profile read, then the transaction, which lands
    // while the operator's request times out.
    h.faults.plan(2, Fault::LostAfter);
    assert!(admin::grant(&h.services, &operator(), req()).await.is_err());
    h.faults.off();
    let retried = admin::grant(&h.services, &operator(), req()).await.unwrap();
    let again = admin::grant(&h.services, &operator(), req()).await.unwrap();
    assert_eq!(retried, again, "the first grant's answer");
    let a = account(&h.services, &UserId::parse("amb").unwrap())
        .await
        .unwrap();
    assert_eq!(a.credits.balance, 50, "granted once");
    assert_eq!(a.credit_until, retried.credit_until);
    let audits = h
        .services
        .table
        .query(&schema::user_pk(&UserId::parse("amb").unwrap()), "GRANT#")
        .await
        .unwrap();
    assert_eq!(audits.len(), 1);
}
