//! The audit item of an erasure of a user's personal data: who erased, when and why, and
//! how many event payloads were scrubbed. One per account; its presence is what makes the
//! account read as erased.

use super::item;
use crate::domain::clock::parse_rfc3339;
use crate::domain::ids::UserId;
use crate::store::schema::user_pk;
use crate::store::{Cond, ItemExt, Key, StoreError, Table, Write};
use chrono::{DateTime, Utc};

pub fn key(user: &UserId) -> Key {
    Key::new(user_pk(user), "ERASURE")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub operator: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    pub events_scrubbed: i64,
}

/// Written once: a second erasure finds the first one's record and answers it.
pub fn recorded(user: &UserId, e: &Erasure) -> Write {
    Write::Put {
        key: key(user),
        item: item([
            ("operator", e.operator.clone().into()),
            ("reason", e.reason.clone().into()),
            ("at", e.at.into()),
            ("events_scrubbed", e.events_scrubbed.into()),
        ]),
        cond: Some(Cond::ItemNotExists),
    }
}

pub async fn load(table: &dyn Table, user: &UserId) -> Result<Option<Erasure>, StoreError> {
    Ok(table.get(&key(user)).await?.map(|i| Erasure {
        operator: i.str("operator").unwrap_or_default().to_owned(),
        reason: i.str("reason").unwrap_or_default().to_owned(),
        at: i.str("at").and_then(parse_rfc3339).unwrap_or_default(),
        events_scrubbed: i.num("events_scrubbed").unwrap_or(0),
    }))
}
