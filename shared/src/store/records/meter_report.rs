//! A Stripe Billing Meter report the stack owes: units of a `stripe_meter` feature tracked
//! beyond its allowance (`docs/features.md`). It is an event record of its own kind
//! ([`KIND`], id `meter_<identifier>`), put by the track's own transaction, so it exists
//! exactly when the units were committed. The table's stream hands its insert to the relay
//! (the publisher), which queues it; the worker reports it to Stripe and settles the record
//! `processed`, or `failed` with Stripe's error, as it does for Stripe's events: the admin
//! list, the dead-letter queue and replay treat it alike.
//!
//! The record's payload is the message itself, shaped like an event (`id`, `type`,
//! `created`, `data.object`), so every path that reads a queued message reads it.

use super::event::{self, Arrival};
use crate::domain::features::FeatureId;
use crate::domain::ids::{EventId, UserId};
use crate::store::schema::PK;
use crate::store::{Item, ItemExt, Write};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The record's (and the message's) type.
pub const KIND: &str = "billing.meter_report";
const ID_PREFIX: &str = "meter_";
/// The partition key prefix of every report (the stream filter of `template.yaml` passes
/// its inserts to the relay).
pub const KEY_PREFIX: &str = "EVENT#meter_";

/// What is reported: the message's `data.object`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterReport {
    pub user_id: String,
    pub feature: String,
    /// The Stripe customer the units are billed to.
    pub customer: String,
    /// The meter's event name, from the catalog.
    pub event_name: String,
    pub units: i64,
    /// What Stripe counts once: derived from the user, the feature and the usage key.
    pub identifier: String,
    /// When the units were tracked (Unix seconds).
    pub at: i64,
}

/// The identifier of the units tracked under `idempotency_key` at `at` (Unix seconds, the
/// track's commit): a report sent again carries the same identifier, so Stripe counts its
/// units once however often it is reported. The time is part of it because a key outlives
/// its usage record (30 days) and may track new units after that: those are a new report,
/// whose record must not collide with the old one's (kept 90 days). A caller's retry never
/// makes a second identifier: after a commit it replays the stored answer, and before one
/// nothing was reported.
pub fn identifier(user: &UserId, feature: &FeatureId, idempotency_key: &str, at: i64) -> String {
    let digest =
        Sha256::digest(format!("meter\n{user}\n{feature}\n{idempotency_key}\n{at}").as_bytes());
    hex::encode(&digest[..20])
}

pub fn id(identifier: &str) -> Option<EventId> {
    EventId::parse(&format!("{ID_PREFIX}{identifier}")).ok()
}

/// The report's record, part of the track's transaction. `None` only for an identifier
/// that is not one (never, for those [`identifier`] makes).
pub fn owed(report: &MeterReport, now: DateTime<Utc>) -> Option<Write> {
    let id = id(&report.identifier)?;
    let message = serde_json::json!({
        "id": id.as_str(),
        "object": "event",
        "type": KIND,
        "created": now.timestamp(),
        "livemode": false,
        "data": { "object": report },
    });
    Some(event::owed(&Arrival {
        id: &id,
        kind: KIND,
        livemode: false,
        api_version: None,
        // The account index's group: the operator's view of the user lists it.
        group: &report.customer,
        payload: Some(message.to_string()),
        at: now,
    }))
}

/// A report to relay to the queue, read from a new record's image (a stream record): its
/// id and the message. `None` for any other item.
pub fn to_relay(image: &Item) -> Option<(EventId, String)> {
    if !image.str(PK)?.starts_with(KEY_PREFIX) || image.str("type")? != KIND {
        return None;
    }
    let id = image.str(PK)?.strip_prefix("EVENT#")?;
    Some((EventId::parse(id).ok()?, image.str("payload")?.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_track_gives_the_same_identifier_and_another_key_user_or_time_another() {
        let user = UserId::parse("ann").unwrap();
        let calls = FeatureId::parse("api_calls").unwrap();
        let a = identifier(&user, &calls, "req-1", 1_795_000_000);
        assert_eq!(a, identifier(&user, &calls, "req-1", 1_795_000_000));
        assert_ne!(a, identifier(&user, &calls, "req-2", 1_795_000_000));
        assert_ne!(
            a,
            identifier(
                &UserId::parse("bo").unwrap(),
                &calls,
                "req-1",
                1_795_000_000
            )
        );
        assert_ne!(a, identifier(&user, &calls, "req-1", 1_797_678_400));
        assert!(id(&a).is_some());
    }
}
