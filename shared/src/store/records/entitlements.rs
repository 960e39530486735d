//! The entitlement outbox: one item per account (`USER#<sub>` / `ENTITLEMENTS`) whose
//! `version` goes up by one in the same transaction as every committed change of the
//! account's entitlements (credits, free uses, `credit_until`, a subscription's state), with
//! the `cause` of that change (the Stripe event id or the operation).
//!
//! The table's stream carries each new version to the publisher, which publishes
//! `billing.entitlements.changed` (`usecases::entitlement_events`): a stream record exists
//! exactly when the transaction committed, and a redelivered record carries the same
//! version. [`stamped`] is the one place that decides what counts as such a change, so a use
//! case only passes its writes through it before committing them.

use super::{profile, subscription};
use crate::domain::ids::UserId;
use crate::store::schema::{PK, SK, user_pk};
use crate::store::{Item, ItemExt, Key, Op, StoreError, Table, Write};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// The outbox item's sort key (the stream filter of `template.yaml` matches it).
pub const SORT_KEY: &str = "ENTITLEMENTS";
const USER_PREFIX: &str = "USER#";

pub fn key(user: &UserId) -> Key {
    Key::new(user_pk(user), SORT_KEY)
}

/// Whether `write` changes an entitlement of the account whose partition it is in.
fn changes_entitlements(write: &Write) -> bool {
    let key = write.key();
    if !key.pk.starts_with(USER_PREFIX) {
        return false;
    }
    match write {
        Write::Update { ops, .. } if key.sk == profile::SORT_KEY => ops.iter().any(|op| {
            let attr = match op {
                Op::Set(a, _) | Op::SetIfMissing(a, _) | Op::Add(a, _) | Op::Remove(a) => a,
            };
            profile::is_entitlement_attr(attr)
        }),
        Write::Put { .. } | Write::Update { .. } | Write::Delete { .. } => {
            key.sk.starts_with(subscription::PREFIX)
        }
        Write::Check { .. } => false,
    }
}

/// `writes` plus, for each account whose entitlements they change, the outbox write that
/// makes the version go up by one and names `cause`. Appended after the given writes, so a
/// caller's indices of cancelled conditions keep their meaning.
pub fn stamped(mut writes: Vec<Write>, cause: &str, now: DateTime<Utc>) -> Vec<Write> {
    let users: BTreeSet<String> = writes
        .iter()
        .filter(|w| changes_entitlements(w))
        .map(|w| w.key().pk.clone())
        .collect();
    writes.extend(users.into_iter().map(|pk| Write::Update {
        key: Key::new(pk, SORT_KEY),
        ops: vec![
            Op::add("version", 1),
            Op::set("cause", cause.to_owned()),
            Op::set("updated_at", now),
        ],
        cond: None,
    }));
    writes
}

/// `writes` plus the outbox write for `user`, whether or not they change an attribute that
/// [`stamped`] counts: for a use case that decides itself that its change is an entitlement
/// change (a track that uses up an allowance).
pub fn stamped_for(
    mut writes: Vec<Write>,
    user: &UserId,
    cause: &str,
    now: DateTime<Utc>,
) -> Vec<Write> {
    let pk = user_pk(user);
    if writes
        .iter()
        .any(|w| w.key().pk == pk && w.key().sk == SORT_KEY)
    {
        return writes;
    }
    let mut stamped = stamped(writes.clone(), cause, now);
    if stamped.len() == writes.len() {
        writes.push(Write::Update {
            key: key(user),
            ops: vec![
                Op::add("version", 1),
                Op::set("cause", cause.to_owned()),
                Op::set("updated_at", now),
            ],
            cond: None,
        });
        stamped = writes;
    }
    stamped
}

/// One committed version of an account's entitlements, as the outbox item (or its stream
/// record's new image) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxVersion {
    pub user: UserId,
    pub version: i64,
    pub cause: String,
}

impl OutboxVersion {
    /// `None` for any item that is not a versioned outbox item.
    pub fn from_item(item: &Item) -> Option<Self> {
        if item.str(SK)? != SORT_KEY {
            return None;
        }
        let user = item.str(PK)?.strip_prefix(USER_PREFIX)?;
        Some(Self {
            user: UserId::parse(user).ok()?,
            version: item.num("version")?,
            cause: item.str("cause").unwrap_or_default().to_owned(),
        })
    }
}

/// The account's current outbox version, if any change was ever committed.
pub async fn load(table: &dyn Table, user: &UserId) -> Result<Option<OutboxVersion>, StoreError> {
    Ok(table
        .get(&key(user))
        .await?
        .as_ref()
        .and_then(OutboxVersion::from_item))
}
