//! Times travel as `DateTime<Utc>` from the clock to the records layer and become text only
//! where they are stored: what fulfilment writes is the clock's time, in the one format the
//! API prints (RFC 3339, whole seconds, `Z`), whatever the clock's sub-second part.

use billing_core::app::Services;
use billing_core::domain::clock::ManualClock;
use billing_core::domain::ids::{EventId, PurchaseId, SessionId, SubscriptionId, UserId};
use billing_core::store::records::{
    checkout, entitlements, event, profile, purchase, subscription,
};
use billing_core::store::{ItemExt, Key};
use billing_core::usecases::fulfil::{self, Outcome};
use billing_testing::{checkout_session, memory_services, subscription as stripe_subscription};
use chrono::{DateTime, TimeZone, Utc};
use std::sync::Arc;

/// 2026-03-04T05:06:07.890Z: a clock between two seconds.
fn between_seconds() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + chrono::Duration::milliseconds(890)
}

const WRITTEN: &str = "2026-03-04T05:06:07Z";

fn services_at(now: DateTime<Utc>) -> Services {
    Services {
        clock: Arc::new(ManualClock::at(now)),
        ..memory_services(&[])
    }
}

/// The text attribute `attr` of the item at `key`.
async fn stored(s: &Services, key: &Key, attr: &str) -> String {
    let item = s.table.get(key).await.unwrap().expect("the item is stored");
    item.str(attr)
        .unwrap_or_else(|| panic!("{attr} is stored on {key:?}"))
        .to_owned()
}

#[tokio::test]
async fn a_fulfilled_checkout_stamps_every_record_with_the_clocks_second() {
    let s = services_at(between_seconds());
    let session = checkout_session("cs_test_t1", "u_t1", "credits_starter", "paid", 1000);
    let e = billing_testing::event("evt_t1", "checkout.session.completed", 1, session);

    assert_eq!(
        fulfil::process(&s, &e.to_string()).await.unwrap(),
        Outcome::Applied
    );

    let user = UserId::parse("u_t1").unwrap();
    let sid = SessionId::parse("cs_test_t1").unwrap();
    let evt = EventId::parse("evt_t1").unwrap();
    let bought = purchase::key(&user, &PurchaseId::from(&sid));
    let written = [
        (checkout::key(&sid), "fulfilled_at"),
        (checkout::key(&sid), "created_at"),
        (event::key(&evt), "processed_at"),
        (event::key(&evt), "received_at"),
        (profile::key(&user), "created_at"),
        (profile::key(&user), "updated_at"),
        (bought.clone(), "at"),
        (entitlements::key(&user), "updated_at"),
    ];
    for (key, attr) in &written {
        assert_eq!(stored(&s, key, attr).await, WRITTEN, "{attr} of {key:?}");
    }
    // The purchases-by-time index sorts by that same text.
    assert_eq!(
        stored(&s, &bought, "gsi2sk").await,
        format!("{WRITTEN}#cs_test_t1")
    );
}

#[tokio::test]
async fn an_applied_subscription_is_stamped_with_the_clocks_second() {
    let s = services_at(between_seconds());
    let period_end = between_seconds().timestamp() + 30 * 86_400;
    let sub = stripe_subscription("sub_t2", "u_t2", "pro_monthly", "active", period_end);
    let e = billing_testing::event("evt_t2", "customer.subscription.created", 1, sub);

    assert_eq!(
        fulfil::process(&s, &e.to_string()).await.unwrap(),
        Outcome::Applied
    );

    let user = UserId::parse("u_t2").unwrap();
    let sub = SubscriptionId::parse("sub_t2").unwrap();
    let key = subscription::key(&user, &sub);
    assert_eq!(stored(&s, &key, "updated_at").await, WRITTEN);
    let evt = EventId::parse("evt_t2").unwrap();
    assert_eq!(stored(&s, &event::key(&evt), "processed_at").await, WRITTEN);
}

fn operator() -> billing_core::inbound::http::Identity {
    billing_testing::operator("ops_t")
}

#[tokio::test]
async fn a_grant_of_days_answers_and_keeps_the_end_as_the_clocks_second_plus_the_days() {
    use billing_core::usecases::admin::{self, GrantRequest};
    let clock = ManualClock::at(between_seconds());
    let s = Services {
        clock: Arc::new(clock.clone()),
        ..memory_services(&[])
    };
    let user = UserId::parse("u_t3").unwrap();
    let grant = || GrantRequest {
        user: user.clone(),
        days: Some(10),
        credits: None,
        reason: "a week and a bit".into(),
        idempotency_key: Some("grant-t3".into()),
        feature: None,
        units: None,
    };
    let granted = admin::grant(&s, &operator(), grant()).await.unwrap();
    let end = "2026-03-14T05:06:07Z";
    assert_eq!(granted.credit_until.as_deref(), Some(end));
    assert_eq!(stored(&s, &profile::key(&user), "credit_until").await, end);
    clock.advance_secs(3600);
    let again = admin::grant(&s, &operator(), grant()).await.unwrap();
    assert_eq!(
        again.credit_until.as_deref(),
        Some(end),
        "the retried grant answers the first one's end"
    );
}

#[tokio::test]
async fn an_erasure_is_recorded_and_answered_at_the_clocks_second() {
    use billing_core::usecases::admin::{self, EraseRequest};
    let clock = ManualClock::at(between_seconds());
    let s = Services {
        clock: Arc::new(clock.clone()),
        ..memory_services(&[])
    };
    let session = checkout_session("cs_test_t4", "u_t4", "credits_starter", "paid", 1000);
    let e = billing_testing::event("evt_t4", "checkout.session.completed", 1, session);
    fulfil::process(&s, &e.to_string()).await.unwrap();
    let user = UserId::parse("u_t4").unwrap();
    let req = || EraseRequest {
        reason: "asked by email".into(),
    };
    let erased = admin::erase(&s, &operator(), &user, req()).await.unwrap();
    assert_eq!(erased.erased_at, WRITTEN);
    clock.advance_secs(3600);
    let again = admin::erase(&s, &operator(), &user, req()).await.unwrap();
    assert_eq!(again.erased_at, WRITTEN, "read back from the record");
}
