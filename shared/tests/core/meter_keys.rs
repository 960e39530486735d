//! A usage key outlives its record: DynamoDB's TTL removes a usage call's record after 30
//! days, the meter report's record stays 90. A caller that uses the key again after that
//! tracks new units, and their overage is a new report with its own identifier — not a
//! conflict with the old report that fails the track, and not a duplicate Stripe drops.

use billing_core::domain::clock::ManualClock;
use billing_core::domain::ids::UserId;
use billing_core::store::memory::MemoryTable;
use billing_core::store::schema::user_pk;
use billing_core::store::{Key, Table, Write};
use billing_core::usecases::features::{TrackRequest, track};
use billing_core::usecases::fulfil;
use billing_testing::stream::StreamedTable;
use billing_testing::{event, memory_services, subscription};
use chrono::{TimeZone, Utc};
use serde_json::Value;
use std::sync::Arc;

const T0: i64 = 1_795_000_000;
const DAY: i64 = 86_400;

fn subscription_for_period(start: i64, end: i64) -> Value {
    let mut sub = subscription("sub_ann", "ann", "api_monthly", "active", end);
    sub["items"]["data"][0]["current_period_start"] = start.into();
    sub
}

#[tokio::test]
async fn a_usage_key_used_again_after_its_record_expired_reports_its_new_overage_under_a_new_identifier()
 {
    let table = Arc::new(StreamedTable::new(MemoryTable::new()));
    let clock = Arc::new(ManualClock::at(Utc.timestamp_opt(T0, 0).unwrap()));
    let mut services = memory_services(&[]);
    services.table = table.clone();
    services.clock = clock.clone();
    let ann = UserId::parse("ann").unwrap();
    let first_period = subscription_for_period(T0 - DAY, T0 + 29 * DAY);
    fulfil::process(
        &services,
        &event(
            "evt_sub_1",
            "customer.subscription.created",
            T0,
            first_period,
        )
        .to_string(),
    )
    .await
    .expect("the subscription applies");
    let request = || TrackRequest {
        units: 10_004,
        idempotency_key: "nightly-import".into(),
    };
    track(&services, &ann, "calls", request())
        .await
        .expect("the first track commits");

    // 31 days on: Stripe renewed the period, and DynamoDB's TTL took the key's record.
    clock.advance_secs(31 * DAY);
    let second_period = subscription_for_period(T0 + 29 * DAY, T0 + 59 * DAY);
    fulfil::process(
        &services,
        &event(
            "evt_sub_2",
            "customer.subscription.updated",
            T0 + 29 * DAY,
            second_period,
        )
        .to_string(),
    )
    .await
    .expect("the renewal applies");
    table
        .transact(vec![Write::Delete {
            key: Key::new(user_pk(&ann), "USAGE#calls nightly-import".to_owned()),
            cond: None,
        }])
        .await
        .expect("the expired record is gone");

    let again = track(&services, &ann, "calls", request()).await;

    assert!(again.is_ok(), "the key's new track was refused: {again:?}");
    let reports = table.meter_reports();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_ne!(reports[0].0, reports[1].0, "one identifier for two tracks");
    for (_, message) in &reports {
        let report: Value = serde_json::from_str(message).unwrap();
        assert_eq!(report["data"]["object"]["units"], 4, "{report}");
    }
}
