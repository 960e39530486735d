//! Usage metering (`POST /api/billing/usage`): free uses first, then credits, atomically.
//!
//! Each attempt is one transaction: the profile's counters change under a condition that
//! makes overdrawing impossible, and the caller's idempotency record is put in the same
//! transaction, so a key consumes once and its answer is stored with it. When all free uses
//! are gone (the common case) the condition is `credits >= units`, which concurrent calls
//! can all satisfy without pinning exact values; a call that splits between free uses and
//! credits pins the values it read and retries on a race.

use crate::clock::rfc3339;
use crate::ids::UserId;
use crate::keys;
use crate::metrics::{self, Unit, names};
use crate::runtime::Services;
use crate::store::{Cond, Item, ItemExt, Op, StoreError, Write};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a usage key is remembered (its record expires through the table's TTL).
pub const KEY_TTL_SECS: i64 = 30 * 24 * 3600;
pub const MAX_UNITS: i64 = 1_000_000;
const MAX_ATTEMPTS: usize = 100;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageRequest {
    pub units: i64,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageAllowed {
    pub allowed: bool,
    pub free_uses_remaining: i64,
    pub balance: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("not enough free uses or credits for {units} units")]
    PaymentRequired { units: i64, plan_id: Option<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn answer_of(item: &Item) -> Option<UsageAllowed> {
    Some(UsageAllowed {
        allowed: true,
        free_uses_remaining: item.num("free_uses_remaining")?,
        balance: item.num("balance")?,
    })
}

fn validate(req: &UsageRequest) -> Result<(), UsageError> {
    if !(1..=MAX_UNITS).contains(&req.units) {
        return Err(UsageError::InvalidRequest(format!(
            "units must be 1 to {MAX_UNITS}"
        )));
    }
    let key = &req.idempotency_key;
    if key.is_empty() || key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(UsageError::InvalidRequest(
            "idempotency_key must be 1 to 128 printable characters".into(),
        ));
    }
    Ok(())
}

/// Pins a counter to the value read (a missing counter reads as zero).
fn pinned(attr: &str, read: i64, present: bool) -> Cond {
    if present {
        Cond::eq(attr, read)
    } else {
        Cond::missing(attr)
    }
}

pub async fn consume(
    services: &Services,
    user: &UserId,
    req: UsageRequest,
) -> Result<UsageAllowed, UsageError> {
    validate(&req)?;
    let free_total = services.config.free_uses;
    let usage_key = keys::usage(user, &req.idempotency_key);
    for attempt in 0..MAX_ATTEMPTS {
        if let Some(done) = services
            .table
            .get(&usage_key)
            .await?
            .as_ref()
            .and_then(answer_of)
        {
            return Ok(done);
        }
        let profile = services.table.get(&keys::profile(user)).await?;
        let used = profile.as_ref().and_then(|p| p.num("free_uses_used"));
        let credits = profile.as_ref().and_then(|p| p.num("credits"));
        let (used_n, credits_n) = (used.unwrap_or(0), credits.unwrap_or(0));
        let free_left = (free_total - used_n).max(0);
        let from_free = req.units.min(free_left);
        let from_credits = req.units - from_free;
        if from_credits > credits_n {
            metrics::emit("usage", names::USAGE_DENIED, 1.0, Unit::Count);
            let shortfall = from_credits - credits_n;
            let plan = services
                .config
                .catalog
                .cheapest_covering(shortfall)
                .map(|p| p.id.to_string());
            return Err(UsageError::PaymentRequired {
                units: req.units,
                plan_id: plan,
            });
        }
        let cond = if from_free == 0 {
            // Free uses are spent: any balance that covers the units will do.
            let spent = if free_total == 0 {
                Cond::Or(vec![
                    Cond::missing("free_uses_used"),
                    Cond::ge("free_uses_used", 0),
                ])
            } else {
                Cond::ge("free_uses_used", free_total)
            };
            Cond::And(vec![Cond::ge("credits", from_credits), spent])
        } else if from_credits == 0 {
            // Enough free uses left, whatever the exact count.
            let mut enough = vec![Cond::lt("free_uses_used", free_total - req.units + 1)];
            if free_total >= req.units {
                enough.push(Cond::missing("free_uses_used"));
            }
            Cond::Or(enough)
        } else {
            Cond::And(vec![
                pinned("free_uses_used", used_n, used.is_some()),
                pinned("credits", credits_n, credits.is_some()),
            ])
        };
        // Free uses only count up to the total, so `free_uses_used` never passes it.
        let answer = UsageAllowed {
            allowed: true,
            free_uses_remaining: free_left - from_free,
            balance: credits_n - from_credits,
        };
        let now = services.clock.now();
        let mut ops = vec![
            Op::set_if_missing("created_at", rfc3339(now)),
            Op::set("updated_at", rfc3339(now)),
        ];
        if from_free > 0 {
            ops.push(Op::add("free_uses_used", from_free));
        }
        if from_credits > 0 {
            ops.push(Op::add("credits", -from_credits));
        }
        let mut record = Item::new();
        record.insert("units".into(), req.units.into());
        record.insert(
            "free_uses_remaining".into(),
            answer.free_uses_remaining.into(),
        );
        record.insert("balance".into(), answer.balance.into());
        record.insert("at".into(), rfc3339(now).into());
        record.insert(
            keys::TTL_ATTR.into(),
            (now.timestamp() + KEY_TTL_SECS).into(),
        );
        let writes = vec![
            Write::Update {
                key: keys::profile(user),
                ops,
                cond: Some(cond),
            },
            Write::Put {
                key: usage_key.clone(),
                item: record,
                cond: Some(Cond::ItemNotExists),
            },
        ];
        match services.table.transact(writes).await {
            Ok(()) => return Ok(answer),
            Err(StoreError::TransactionConditionFailed(_) | StoreError::Conflict) => {
                // Lost a race (or the key was used meanwhile: the next round returns it).
                let jitter =
                    2 + (attempt as u64 * 7 + u64::from(now.timestamp_subsec_micros())) % 20;
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}
