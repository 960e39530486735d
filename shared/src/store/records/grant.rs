//! The audit item of an operator's grant: who granted what to whom, and why.

use super::item;
use crate::domain::ids::UserId;
use crate::store::schema::user_pk;
use crate::store::{Cond, Key, Write};

pub fn key(user: &UserId, at: &str, grant_id: &str) -> Key {
    Key::new(user_pk(user), format!("GRANT#{at}#{grant_id}"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit<'a> {
    pub grant_id: &'a str,
    pub operator: &'a UserId,
    pub reason: &'a str,
    pub days: i64,
    pub credits: i64,
    pub at: &'a str,
    pub credit_until_after: Option<&'a str>,
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
    Write::Put {
        key: key(user, a.at, a.grant_id),
        item,
        cond: Some(Cond::ItemNotExists),
    }
}
