//! The operator's view of one user (`GET /api/billing/admin/users/{user_id}`) and the
//! lookup by customer or checkout: what it shows, that it writes nothing, and that it reads
//! one page of each list however long the history.

use billing_core::domain::clock::Clock;
use billing_core::domain::ids::{CustomerId, EventId, SessionId, UserId};
use billing_core::inbound::http::Identity;
use billing_core::queue::Queue;
use billing_core::queue::memory::MemoryQueue;
use billing_core::store::records::event;
use billing_core::usecases::admin::{
    self, AdminError, GrantRequest, USER_PAGE, UserCursors, UserLookup,
};
use billing_core::usecases::{fulfil, intake};
use billing_testing::harness::Harness;
use billing_testing::{TEST_WEBHOOK_SECRET, checkout_session, event, signature};
use std::time::Duration;

const T0: i64 = 1_795_000_000;

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

fn operator() -> Identity {
    billing_testing::operator("ops_1")
}

/// Delivers a credit pack's checkout for `who` and runs the worker over the queue.
async fn bought(h: &Harness, event_id: &str, who: &str) {
    let e = event(
        event_id,
        "checkout.session.completed",
        T0,
        checkout_session(
            &format!("cs_test_{event_id}"),
            who,
            "credits_starter",
            "paid",
            1000,
        ),
    );
    let body = e.to_string();
    let header = signature(TEST_WEBHOOK_SECRET, h.clock.now().timestamp(), &body);
    intake::receive(&h.services, Some(&header), body.as_bytes())
        .await
        .unwrap();
    for m in h.queue.receive(10, Duration::ZERO).await.unwrap() {
        fulfil::process(&h.services, &m.body).await.unwrap();
        h.queue.delete(&m.receipt).await.unwrap();
    }
}

/// `n` grants to `who`, a second apart.
async fn grants(h: &Harness, who: &str, n: usize) {
    for i in 0..n {
        h.clock.advance_secs(1);
        let req = GrantRequest {
            user: billing_core::domain::ids::UserId::parse(who).unwrap(),
            days: None,
            credits: Some(1),
            reason: format!("goodwill #{i}"),
            idempotency_key: None,
            feature: None,
            units: None,
        };
        admin::grant(&h.services, &operator(), req).await.unwrap();
    }
}

fn harness() -> Harness {
    Harness::new(&[], MemoryQueue::default(), T0)
}

#[tokio::test]
async fn the_view_shows_the_account_its_customer_purchases_grants_and_the_events_that_changed_it() {
    let h = harness();
    bought(&h, "evt_ov_1", "vic").await;
    grants(&h, "vic", 1).await;

    let v = admin::user_view(&h.services, &user("vic"), &UserCursors::default())
        .await
        .unwrap();
    assert_eq!(v.account.credits.balance, 1001);
    assert_eq!(v.stripe_customer_id.as_deref(), Some("cus_vic"));
    assert_eq!(v.account.purchases.len(), 1);
    assert_eq!(
        v.account.purchases[0].session_id.as_deref(),
        Some("cs_test_evt_ov_1")
    );
    assert_eq!(
        (
            v.grants[0].operator.as_str(),
            v.grants[0].reason.as_str(),
            v.grants[0].credits
        ),
        ("ops_1", "goodwill #0", 1)
    );
    let e = &v.events[0];
    assert_eq!(
        (e.id.as_str(), e.kind.as_str(), e.state.as_str()),
        ("evt_ov_1", "checkout.session.completed", "processed")
    );
    assert_eq!(
        v.account.referral.code, None,
        "looking creates no referral code"
    );
}

#[tokio::test]
async fn a_user_is_found_by_stripe_customer_and_by_checkout_session() {
    let h = harness();
    bought(&h, "evt_ov_2", "wes").await;
    let by_customer = UserLookup::Customer(CustomerId::parse("cus_wes").unwrap());
    let by_session = UserLookup::Session(SessionId::parse("cs_test_evt_ov_2").unwrap());
    assert_eq!(
        admin::find_user(&h.services, &by_customer).await.unwrap(),
        user("wes")
    );
    assert_eq!(
        admin::find_user(&h.services, &by_session).await.unwrap(),
        user("wes")
    );
    let nobody = UserLookup::Customer(CustomerId::parse("cus_nobody").unwrap());
    assert!(matches!(
        admin::find_user(&h.services, &nobody).await,
        Err(AdminError::UnknownUser(_))
    ));
}

#[tokio::test]
async fn a_user_of_whom_nothing_is_stored_is_unknown_and_looking_stores_nothing() {
    let h = harness();
    let err = admin::user_view(&h.services, &user("ghost"), &UserCursors::default()).await;
    assert!(matches!(err, Err(AdminError::UnknownUser(_))), "{err:?}");
    assert_eq!(h.table.inner.write_requests(), 0);
}

#[tokio::test]
async fn each_list_is_one_page_with_a_cursor_to_the_rest() {
    let h = harness();
    grants(&h, "gus", USER_PAGE + 3).await;
    let first = admin::user_view(&h.services, &user("gus"), &UserCursors::default())
        .await
        .unwrap();
    assert_eq!(first.grants.len(), USER_PAGE);
    assert_eq!(
        first.grants[0].reason,
        format!("goodwill #{}", USER_PAGE + 2)
    );
    let cursors = UserCursors {
        grants: first.grants_next.clone(),
        ..UserCursors::default()
    };
    let rest = admin::user_view(&h.services, &user("gus"), &cursors)
        .await
        .unwrap();
    let reasons: Vec<&str> = rest.grants.iter().map(|g| g.reason.as_str()).collect();
    assert_eq!(reasons, ["goodwill #2", "goodwill #1", "goodwill #0"]);
    assert_eq!(rest.grants_next, None);
}

#[tokio::test]
async fn a_view_makes_the_same_store_calls_with_a_short_or_a_long_history() {
    let short = harness();
    grants(&short, "sam", 1).await;
    bought(&short, "evt_ov_s", "sam").await;
    let long = harness();
    grants(&long, "sam", 5 * USER_PAGE).await;
    for _ in 0..3 {
        bought(&long, &format!("evt_ov_l{}", long.faults.calls()), "sam").await;
    }

    let mut calls = Vec::new();
    for h in [&short, &long] {
        let before = h.faults.calls();
        admin::user_view(&h.services, &user("sam"), &UserCursors::default())
            .await
            .unwrap();
        calls.push(h.faults.calls() - before);
    }
    assert_eq!(calls[0], calls[1], "store calls of one view: {calls:?}");
}

#[tokio::test]
async fn a_cursor_of_another_list_is_refused() {
    let h = harness();
    grants(&h, "cy", 1).await;
    let cursors = UserCursors {
        grants: Some("REFUND#cs_x#re_1".into()),
        ..UserCursors::default()
    };
    let err = admin::user_view(&h.services, &user("cy"), &cursors).await;
    assert!(
        matches!(&err, Err(AdminError::InvalidRequest(m)) if m.contains("grants_cursor")),
        "{err:?}"
    );
}

async fn erase(h: &Harness, who: &str, reason: &str) -> Result<admin::EraseOutcome, AdminError> {
    let req = admin::EraseRequest {
        reason: reason.into(),
    };
    admin::erase(&h.services, &operator(), &user(who), req).await
}

#[tokio::test]
async fn an_erasure_removes_every_event_payload_and_keeps_the_money_ids_and_audit() {
    let h = harness();
    bought(&h, "evt_er_1", "eve").await;
    grants(&h, "eve", 1).await;
    let id = EventId::parse("evt_er_1").unwrap();
    let before = event::load(h.table.as_ref(), &id).await.unwrap().unwrap();
    assert!(before.payload.is_some_and(|p| p.contains("cus_eve")));

    let done = erase(&h, "eve", "GDPR request #12").await.unwrap();
    assert_eq!(
        (done.events_scrubbed, done.erased_by.as_str()),
        (1, "ops_1")
    );

    let after = event::load(h.table.as_ref(), &id).await.unwrap().unwrap();
    assert_eq!(after.payload, None, "the payload is gone");
    assert_eq!(
        (after.kind.as_str(), after.status.as_str()),
        ("checkout.session.completed", "processed")
    );
    let v = admin::user_view(&h.services, &user("eve"), &UserCursors::default())
        .await
        .unwrap();
    assert_eq!(v.account.credits.balance, 1001, "the money stays");
    assert_eq!(v.account.purchases[0].amount, 1000);
    assert_eq!(v.grants[0].reason, "goodwill #0", "the audit trail stays");
    assert_eq!(v.events[0].id, "evt_er_1");
    let erasure = v.erasure.expect("the account reads as erased");
    assert_eq!(
        (erasure.operator.as_str(), erasure.reason.as_str()),
        ("ops_1", "GDPR request #12")
    );
}

#[tokio::test]
async fn a_second_erasure_answers_the_first_and_scrubs_only_what_arrived_since() {
    let h = harness();
    bought(&h, "evt_er_2", "ezra").await;
    let first = erase(&h, "ezra", "asked by email").await.unwrap();
    h.clock.advance_secs(60);
    let again = erase(&h, "ezra", "asked again").await.unwrap();
    assert_eq!(
        (again.erased_at.as_str(), again.reason.as_str()),
        (first.erased_at.as_str(), "asked by email")
    );
    assert_eq!(again.events_scrubbed, 0);
    bought(&h, "evt_er_3", "ezra").await;
    let later = erase(&h, "ezra", "a later event").await.unwrap();
    assert_eq!(later.events_scrubbed, 1, "the event that arrived since");
}

#[tokio::test]
async fn an_erasure_without_a_reason_or_of_nobody_changes_nothing() {
    let h = harness();
    bought(&h, "evt_er_4", "ida").await;
    let writes = h.table.inner.write_requests();
    assert!(matches!(
        erase(&h, "ida", "  ").await,
        Err(AdminError::InvalidRequest(_))
    ));
    assert!(matches!(
        erase(&h, "nobody", "typo").await,
        Err(AdminError::UnknownUser(_))
    ));
    assert_eq!(h.table.inner.write_requests(), writes, "nothing written");
    let id = EventId::parse("evt_er_4").unwrap();
    assert!(
        event::load(h.table.as_ref(), &id)
            .await
            .unwrap()
            .unwrap()
            .payload
            .is_some()
    );
}
