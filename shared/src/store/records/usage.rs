//! One usage call, by the caller's idempotency key (scoped to the caller and, for a
//! feature other than the seed's `usage`, to the feature): put in the same transaction as
//! the spend, so a key consumes once and its answer is stored with it.

use super::item;
use crate::domain::features::{FeatureId, USAGE};
use crate::domain::ids::UserId;
use crate::store::schema::{TTL_ATTR, user_pk};
use crate::store::{Cond, ItemExt, Key, StoreError, Table, Write};
use chrono::{DateTime, Utc};

/// How long a usage key is remembered (its record expires through the table's TTL).
pub const KEY_TTL_SECS: i64 = 30 * 24 * 3600;

pub fn key(user: &UserId, idempotency_key: &str) -> Key {
    Key::new(user_pk(user), format!("USAGE#{idempotency_key}"))
}

/// The seed's `usage` feature shares the keys of `POST /api/billing/usage`; another
/// feature's keys are its own (a space never occurs in a caller's key, so none collide).
fn feature_key(user: &UserId, feature: &FeatureId, idempotency_key: &str) -> Key {
    if feature.as_str() == USAGE {
        key(user, idempotency_key)
    } else {
        Key::new(user_pk(user), format!("USAGE#{feature} {idempotency_key}"))
    }
}

/// What a feature track answered, stored as the JSON it answered.
pub fn tracked(
    user: &UserId,
    feature: &FeatureId,
    idempotency_key: &str,
    seed: Answer,
    answer_json: String,
    at: DateTime<Utc>,
    now_secs: i64,
) -> Write {
    Write::Put {
        key: feature_key(user, feature, idempotency_key),
        item: item([
            ("units", seed.units.into()),
            ("free_uses_remaining", seed.free_uses_remaining.into()),
            ("balance", seed.balance.into()),
            ("answer", answer_json.into()),
            ("at", at.into()),
            (TTL_ATTR, (now_secs + KEY_TTL_SECS).into()),
        ]),
        cond: Some(Cond::ItemNotExists),
    }
}

/// A feature track's earlier answer under the key: the JSON it answered when the feature
/// route made it, else (a key first used by `POST /api/billing/usage`) the seed's answer.
pub async fn load_tracked(
    table: &dyn Table,
    user: &UserId,
    feature: &FeatureId,
    idempotency_key: &str,
) -> Result<Option<(Answer, Option<String>)>, StoreError> {
    let item = table
        .get(&feature_key(user, feature, idempotency_key))
        .await?;
    Ok(item.as_ref().and_then(|i| {
        let answer = Answer {
            units: i.num("units").unwrap_or(0),
            free_uses_remaining: i.num("free_uses_remaining")?,
            balance: i.num("balance")?,
        };
        Some((answer, i.str("answer").map(str::to_owned)))
    }))
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
    at: DateTime<Utc>,
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
