//! The audit item of an operator's grant: who granted what to whom, and why.

use super::item;
use crate::domain::clock::{parse_rfc3339, rfc3339};
use crate::domain::ids::UserId;
use crate::store::schema::user_pk;
use crate::store::{Cond, Item, ItemExt, Key, Page, StoreError, Table, Write};
use chrono::{DateTime, Utc};

const PREFIX: &str = "GRANT#";

pub fn key(user: &UserId, at: DateTime<Utc>, grant_id: &str) -> Key {
    Key::new(user_pk(user), format!("{PREFIX}{}#{grant_id}", rfc3339(at)))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit<'a> {
    pub grant_id: &'a str,
    pub operator: &'a UserId,
    pub reason: &'a str,
    pub days: i64,
    pub credits: i64,
    pub at: DateTime<Utc>,
    pub credit_until_after: Option<DateTime<Utc>>,
    /// A feature turned on, or given `units` more of.
    pub feature: Option<&'a str>,
    pub units: Option<i64>,
}

/// Written in the grant's own transaction; one per grant id.
pub fn audit(user: &UserId, a: &Audit<'_>) -> Write {
    let mut item = item([
        ("grant_id", a.grant_id.into()),
        ("operator", a.operator.to_string().into()),
        ("reason", a.reason.into()),
        ("days", a.days.into()),
        ("credits", a.credits.into()),
        ("at", a.at.into()),
    ]);
    if let Some(u) = a.credit_until_after {
        item.insert("credit_until_after".into(), u.into());
    }
    if let Some(f) = a.feature {
        item.insert("feature".into(), f.into());
    }
    if let Some(n) = a.units {
        item.insert("units".into(), n.into());
    }
    Write::Put {
        key: key(user, a.at, a.grant_id),
        item,
        cond: Some(Cond::ItemNotExists),
    }
}

/// The once-only marker of a grant made with an idempotency key: a retried request (an
/// ambiguous commit, a timeout) finds it and answers the first grant instead of granting
/// twice. It holds what the first grant answered.
pub fn once_key(user: &UserId, grant_id: &str) -> Key {
    Key::new(user_pk(user), format!("GRANTKEY#{grant_id}"))
}

/// What a keyed grant answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub days: i64,
    pub credits: i64,
    pub credit_until: Option<DateTime<Utc>>,
}

/// Put in the grant's own transaction: only once per key.
pub fn once(user: &UserId, grant_id: &str, g: &Granted) -> Write {
    let mut it = item([("days", g.days.into()), ("credits", g.credits.into())]);
    if let Some(u) = g.credit_until {
        it.insert("credit_until".into(), u.into());
    }
    Write::Put {
        key: once_key(user, grant_id),
        item: it,
        cond: Some(Cond::ItemNotExists),
    }
}

pub async fn load_once(
    table: &dyn Table,
    user: &UserId,
    grant_id: &str,
) -> Result<Option<Granted>, StoreError> {
    Ok(table
        .get(&once_key(user, grant_id))
        .await?
        .map(|i| Granted {
            days: i.num("days").unwrap_or(0),
            credits: i.num("credits").unwrap_or(0),
            credit_until: i.str("credit_until").and_then(parse_rfc3339),
        }))
}

/// A stored grant audit item, as an operator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub grant_id: String,
    pub operator: String,
    pub reason: String,
    pub days: i64,
    pub credits: i64,
    pub at: String,
    pub feature: Option<String>,
    pub units: Option<i64>,
}

impl GrantRow {
    fn from_item(i: &Item) -> Option<Self> {
        Some(Self {
            grant_id: i.str("grant_id")?.to_owned(),
            operator: i.str("operator").unwrap_or_default().to_owned(),
            reason: i.str("reason").unwrap_or_default().to_owned(),
            days: i.num("days").unwrap_or(0),
            credits: i.num("credits").unwrap_or(0),
            at: i.str("at").unwrap_or_default().to_owned(),
            feature: i.str("feature").map(str::to_owned),
            units: i.num("units"),
        })
    }
}

/// Up to `limit` of the account's grants, newest first (their sort key starts with the
/// time), after `cursor`: reads the page, however many grants the account has.
pub async fn latest(
    table: &dyn Table,
    user: &UserId,
    limit: usize,
    cursor: Option<&str>,
) -> Result<(Vec<GrantRow>, Option<String>), StoreError> {
    let Page { items, next } = table
        .query_page(&user_pk(user), PREFIX, limit, cursor)
        .await?;
    Ok((items.iter().filter_map(GrantRow::from_item).collect(), next))
}
