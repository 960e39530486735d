//! Usage metering (`POST /api/billing/usage`, `../shared/API.md`): free uses first, then
//! credits, atomically.
//!
//! Each attempt is one transaction: the profile's spend (whose condition makes overdrawing
//! impossible, [`ProfileChange::spend`]) and the caller's idempotency record, so a key
//! consumes once and its answer is stored with it. A lost race plans again from fresh reads.

use crate::domain::clock::rfc3339;
use crate::domain::ids::UserId;
use crate::edge::metrics::{self, Unit, names};
use crate::edge::runtime::Services;
use crate::store::StoreError;
use crate::store::records::profile::{self, ProfileChange};
use crate::store::records::usage::{self as usage_key, Answer};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use usage_key::KEY_TTL_SECS;
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

fn allowed(answer: Answer) -> UsageAllowed {
    UsageAllowed {
        allowed: true,
        free_uses_remaining: answer.free_uses_remaining,
        balance: answer.balance,
    }
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

pub async fn consume(
    services: &Services,
    user: &UserId,
    req: UsageRequest,
) -> Result<UsageAllowed, UsageError> {
    validate(&req)?;
    let table = services.table.as_ref();
    let free_total = services.config.free_uses;
    let key = req.idempotency_key.as_str();
    for attempt in 0..MAX_ATTEMPTS {
        if let Some(done) = usage_key::load(table, user, key).await? {
            return Ok(allowed(done));
        }
        let read = profile::load(table, user).await?.unwrap_or_default();
        let free_left = (free_total - read.free_uses_used.unwrap_or(0)).max(0);
        let from_free = req.units.min(free_left);
        let from_credits = req.units - from_free;
        if from_credits > read.balance() {
            metrics::emit("usage", names::USAGE_DENIED, 1.0, Unit::Count);
            let shortfall = from_credits - read.balance();
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
        let answer = Answer {
            units: req.units,
            free_uses_remaining: free_left - from_free,
            balance: read.balance() - from_credits,
        };
        let now = services.clock.now();
        let at = rfc3339(now);
        let spend = ProfileChange::new(user, &at).touched(&at).spend(
            from_free,
            from_credits,
            free_total,
            &read,
        );
        let writes = vec![
            spend.write(),
            usage_key::recorded(user, key, answer, &at, now.timestamp()),
        ];
        match table.transact(writes).await {
            Ok(()) => return Ok(allowed(answer)),
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
