//! The webhook event record: intake claims it, the worker settles it, admin lists and
//! replays it. Its whole lifecycle is here (states, writes, reads and the log span), after
//! the Powertools idempotency record:
//! `in_progress` (claimed, with a lock that expires so a crashed delivery can be claimed
//! again; listed as `queued`) → `processed` | `unclaimed` (a payment that was granted to no
//! one: an operator grants or refunds it) | `failed`; or `ignored` at once. Records
//! written before intake stopped marking them may still say `queued`. A TTL removes it.

use super::item;
use crate::domain::clock::rfc3339;
use crate::domain::ids::EventId;
use crate::store::schema::{
    EVENTS_BY_ACCOUNT, EVENTS_BY_STATE, GSI1_PK, GSI1_SK, GSI3_PK, GSI3_SK, PK, TTL_ATTR,
};
use crate::store::{Cond, Item, ItemExt, Key, Op, Page, StoreError, Table, Write};
use crate::stripe::Event;
use chrono::{DateTime, Utc};

/// How long event records are kept (Stripe keeps events 30 days; replays need them).
pub const RECORD_TTL_SECS: i64 = 90 * 24 * 3600;

/// The stored states of an event record.
pub mod state {
    pub const IN_PROGRESS: &str = "in_progress";
    pub const QUEUED: &str = "queued";
    pub const IGNORED: &str = "ignored";
    pub const PROCESSED: &str = "processed";
    pub const FAILED: &str = "failed";
    pub const UNCLAIMED: &str = "unclaimed";
}

/// The states the admin list shows (an `in_progress` record lists as `queued`).
pub const LISTED_STATES: [&str; 5] = [
    state::QUEUED,
    state::PROCESSED,
    state::IGNORED,
    state::FAILED,
    state::UNCLAIMED,
];

pub fn key(id: &EventId) -> Key {
    Key::new(format!("EVENT#{id}"), "EVENT")
}

/// The state index's partition for `state`.
pub fn index_pk(state: &str) -> String {
    format!("EVENTS#{state}")
}

/// The account index's partition for an ordering group (a Stripe customer id, or
/// `user:<sub>` when the event names no customer).
pub fn account_index_pk(group: &str) -> String {
    format!("ACCOUNT_EVENTS#{group}")
}

fn index_sk(received_at: &str, id: &EventId) -> String {
    format!("{received_at}#{id}")
}

/// What intake knows of a new event when it records it.
#[derive(Debug)]
pub struct Arrival<'a> {
    pub id: &'a EventId,
    pub kind: &'a str,
    pub livemode: bool,
    /// The API version the event is rendered in (which shapes its object has).
    pub api_version: Option<&'a str>,
    pub group: &'a str,
    /// The redacted, capped payload; `None` when it was too large to keep.
    pub payload: Option<String>,
    pub at: DateTime<Utc>,
}

fn arrival_item(a: &Arrival<'_>, status: &str, listed_as: &str) -> Item {
    let received_at = rfc3339(a.at);
    let mut i = item([
        ("type", a.kind.into()),
        ("received_at", received_at.clone().into()),
        ("livemode", a.livemode.into()),
        ("group", a.group.into()),
        ("status", status.into()),
        (TTL_ATTR, (a.at.timestamp() + RECORD_TTL_SECS).into()),
        (GSI1_PK, index_pk(listed_as).into()),
        (GSI1_SK, index_sk(&received_at, a.id).into()),
        (GSI3_PK, account_index_pk(a.group).into()),
        (GSI3_SK, index_sk(&received_at, a.id).into()),
    ]);
    if let Some(v) = a.api_version {
        i.insert("api_version".into(), v.into());
    }
    match &a.payload {
        Some(payload) => i.insert("payload".into(), payload.clone().into()),
        None => i.insert("payload_omitted".into(), true.into()),
    };
    i
}

/// Records an event we do not act on, unless it is recorded already.
pub fn ignored(a: &Arrival<'_>, reason: &str) -> Write {
    let mut item = arrival_item(a, state::IGNORED, state::IGNORED);
    item.insert("error".into(), reason.into());
    Write::Put {
        key: key(a.id),
        item,
        cond: Some(Cond::ItemNotExists),
    }
}

/// Claims a new event for `lock_secs`: only when no record exists, or when an earlier
/// claim's lock has expired (that delivery crashed before it queued the event).
pub fn claim(a: &Arrival<'_>, lock_secs: i64) -> Write {
    // An in-flight event lists as queued: it is being handed over.
    let mut item = arrival_item(a, state::IN_PROGRESS, state::QUEUED);
    item.insert("lock_until".into(), (a.at.timestamp() + lock_secs).into());
    let expired = Cond::And(vec![
        Cond::eq("status", state::IN_PROGRESS),
        Cond::lt("lock_until", a.at.timestamp()),
    ]);
    Write::Put {
        key: key(a.id),
        item,
        cond: Some(Cond::Or(vec![Cond::ItemNotExists, expired])),
    }
}

/// A report the stack itself owes Stripe (`meter_report`), recorded in the transaction that
/// incurred it and listed `queued` until the worker settles it. Only a new record: its
/// insert is what the table's stream relays to the queue, once.
pub fn owed(a: &Arrival<'_>) -> Write {
    Write::Put {
        key: key(a.id),
        item: arrival_item(a, state::QUEUED, state::QUEUED),
        cond: Some(Cond::ItemNotExists),
    }
}

/// Keeps a record complete even when the worker writes it first (replay, reconcile).
fn settled(id: &EventId, kind: &str, at: DateTime<Utc>, status: &str, mut ops: Vec<Op>) -> Vec<Op> {
    ops.extend([
        Op::set("status", status),
        Op::set(GSI1_PK, index_pk(status)),
        Op::set_if_missing("type", kind.to_owned()),
        Op::set_if_missing("received_at", at),
        Op::set_if_missing(GSI1_SK, index_sk(&rfc3339(at), id)),
    ]);
    ops
}

/// The event's effects landed (or had landed before): part of the event's transaction.
pub fn processed(id: &EventId, kind: &str, at: DateTime<Utc>) -> Write {
    let ops = vec![
        Op::set("processed_at", at),
        Op::remove("error"),
        Op::remove("lock_until"),
    ];
    Write::Update {
        key: key(id),
        ops: settled(id, kind, at, state::PROCESSED, ops),
        cond: None,
    }
}

/// The event was applied and granted nothing, because its payment names no account or must
/// not be granted (`why`, shown as the record's error): listed `unclaimed` for an operator.
/// Part of the event's transaction, like [`processed`].
pub fn unclaimed(id: &EventId, kind: &str, at: DateTime<Utc>, why: &str) -> Write {
    let ops = vec![
        Op::set("processed_at", at),
        Op::set("error", why.to_owned()),
        Op::remove("lock_until"),
    ];
    Write::Update {
        key: key(id),
        ops: settled(id, kind, at, state::UNCLAIMED, ops),
        cond: None,
    }
}

/// An attempt failed with `error`. Never hides that an earlier attempt succeeded.
pub fn failed(id: &EventId, kind: &str, at: DateTime<Utc>, error: &str) -> Write {
    let ops = vec![Op::set("error", error.to_owned()), Op::add("attempts", 1)];
    let not_processed = Cond::Or(vec![
        Cond::missing("status"),
        Cond::one_of(
            "status",
            &[state::IN_PROGRESS, state::QUEUED, state::FAILED],
        ),
    ]);
    Write::Update {
        key: key(id),
        ops: settled(id, kind, at, state::FAILED, ops),
        cond: Some(not_processed),
    }
}

/// Erasure of the account the event concerns: its payload (Stripe's object, with the
/// customer's email, name and address) is removed; id, type, state, times and error stay.
/// A replay then fetches the event from Stripe, as for a payload too large to keep.
pub fn scrubbed(id: &EventId) -> Write {
    Write::Update {
        key: key(id),
        ops: vec![
            Op::remove("payload"),
            Op::set("payload_omitted", true),
            Op::set("payload_erased", true),
        ],
        // Only a record that still holds one: a second erasure counts what arrived since.
        cond: Some(Cond::present("payload")),
    }
}

/// A stored event record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub received_at: Option<String>,
    pub processed_at: Option<String>,
    pub error: Option<String>,
    /// The API version Stripe rendered the event in, as intake recorded it.
    pub api_version: Option<String>,
    /// The redacted payload, when it was small enough to keep.
    pub payload: Option<String>,
    /// Where the admin list's cursor stands for this record.
    pub cursor: Option<String>,
    /// Until when an `in_progress` claim holds (Unix seconds).
    pub lock_until: Option<i64>,
}

impl EventRecord {
    pub fn from_item(item: &Item) -> Option<Self> {
        let text = |name: &str| item.str(name).map(str::to_owned);
        Some(Self {
            id: item.str(PK)?.strip_prefix("EVENT#")?.to_owned(),
            kind: item.str("type").unwrap_or_default().to_owned(),
            status: item.str("status").unwrap_or(state::QUEUED).to_owned(),
            received_at: text("received_at"),
            processed_at: text("processed_at"),
            error: text("error"),
            api_version: text("api_version"),
            payload: text("payload"),
            cursor: text(GSI1_SK).or_else(|| text(GSI3_SK)),
            lock_until: item.num("lock_until"),
        })
    }

    /// Claimed by a delivery that never finished (its lock expired) and not settled since:
    /// the event may never have reached the queue.
    pub fn is_stuck(&self, now_secs: i64) -> bool {
        self.status == state::IN_PROGRESS && self.lock_until.is_none_or(|until| until < now_secs)
    }

    /// The state an operator sees: an event still being handed over lists as queued.
    pub fn listed_state(&self) -> &str {
        if self.status == state::IN_PROGRESS {
            state::QUEUED
        } else {
            &self.status
        }
    }
}

pub async fn load(table: &dyn Table, id: &EventId) -> Result<Option<EventRecord>, StoreError> {
    Ok(table
        .get(&key(id))
        .await?
        .as_ref()
        .and_then(EventRecord::from_item))
}

/// One page of the records in `state`, newest first, after `cursor`.
pub async fn list(
    table: &dyn Table,
    state: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<(Vec<EventRecord>, Option<String>), StoreError> {
    let Page { items, next } = table
        .query_index(&EVENTS_BY_STATE, &index_pk(state), limit, cursor)
        .await?;
    Ok((
        items.iter().filter_map(EventRecord::from_item).collect(),
        next,
    ))
}

/// One page of the records of one ordering group (see [`account_index_pk`]), newest
/// first, after `cursor`.
pub async fn of_account(
    table: &dyn Table,
    group: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<(Vec<EventRecord>, Option<String>), StoreError> {
    let Page { items, next } = table
        .query_index(&EVENTS_BY_ACCOUNT, &account_index_pk(group), limit, cursor)
        .await?;
    Ok((
        items.iter().filter_map(EventRecord::from_item).collect(),
        next,
    ))
}

/// The span every log line about one event carries: its id and type, and the user and
/// checkout session it concerns (from our metadata, when the object has it).
pub fn span(event: &Event) -> tracing::Span {
    let refs = event.refs();
    let user = refs.user().unwrap_or("");
    let session = refs.id().filter(|id| id.starts_with("cs_")).unwrap_or("");
    tracing::info_span!("event", event_id = %event.id, event_type = %event.kind, user = %user, session = %session)
}
