//! One usage call, by the caller's idempotency key (scoped to the caller): put in the same
//! transaction as the spend, so a key consumes once and its answer is stored with it.

use super::item;
use crate::domain::ids::UserId;
use crate::store::schema::{TTL_ATTR, user_pk};
use crate::store::{Cond, ItemExt, Key, StoreError, Table, Write};

/// How long a usage key is remembered (its record expires through the table's TTL).
pub const KEY_TTL_SECS: i64 = 30 * 24 * 3600;

pub fn key(user: &UserId, idempotency_key: &str) -> Key {
    Key::new(user_pk(user), format!("USAGE#{idempotency_key}"))
}

/// What a successful call answered: free uses remaining and the balance after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub units: i64,
    pub free_uses_remaining: i64,
    pub balance: i64,
}

/// Stores the call's answer; fails if the key was used meanwhile.
pub fn recorded(
    user: &UserId,
    idempotency_key: &str,
    answer: Answer,
    at: &str,
    now_secs: i64,
) -> Write {
    Write::Put {
        key: key(user, idempotency_key),
        item: item([
            ("units", answer.units.into()),
            ("free_uses_remaining", answer.free_uses_remaining.into()),
            ("balance", answer.balance.into()),
            ("at", at.into()),
            (TTL_ATTR, (now_secs + KEY_TTL_SECS).into()),
        ]),
        cond: Some(Cond::ItemNotExists),
    }
}

/// The answer stored under the key, if it was used before.
pub async fn load(
    table: &dyn Table,
    user: &UserId,
    idempotency_key: &str,
) -> Result<Option<Answer>, StoreError> {
    let item = table.get(&key(user, idempotency_key)).await?;
    Ok(item.as_ref().and_then(|i| {
        Some(Answer {
            units: i.num("units").unwrap_or(0),
            free_uses_remaining: i.num("free_uses_remaining")?,
            balance: i.num("balance")?,
        })
    }))
}
