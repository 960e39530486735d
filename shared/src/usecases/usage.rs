//! Usage metering (`POST /api/billing/usage`, `docs/api.md`): free uses first, then
//! credits, atomically; and its check (`GET /api/billing/usage?units=n`), which answers
//! the same decision ([`decide`]) from the same read and consumes nothing.
//!
//! Each attempt is one transaction: the profile's spend (whose condition makes overdrawing
//! impossible, [`ProfileChange::spend`]) and the caller's idempotency record, so a key
//! consumes once and its answer is stored with it. A lost race plans again from fresh reads.

use crate::domain::catalog::{Catalog, Grant};
use crate::domain::clock::rfc3339;
use crate::domain::ids::UserId;
use crate::edge::metrics::{self, Unit, names};
use crate::edge::runtime::Services;
use crate::store::StoreError;
use crate::store::records::entitlements;
use crate::store::records::profile::{self, Profile, ProfileChange};
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

/// What `GET /api/billing/usage` answers: what the consume call would answer now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageCheck {
    pub allowed: bool,
    pub free_uses_remaining: i64,
    pub balance: i64,
    pub purchase: Option<PackHint>,
}

/// The cheapest credit pack that covers a shortfall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackHint {
    pub plan_id: String,
    pub amount: i64,
    pub currency: String,
    pub credits: i64,
}

/// The one rule both calls apply to an account as read: free uses first, then credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed {
        from_free: i64,
        from_credits: i64,
        answer: Answer,
    },
    /// Not enough: `shortfall` more credits would cover it.
    Short { shortfall: i64 },
}

pub fn decide(read: &Profile, free_total: i64, units: i64) -> Decision {
    let free_left = (free_total - read.free_uses_used.unwrap_or(0)).max(0);
    let from_free = units.min(free_left);
    let from_credits = units - from_free;
    if from_credits > read.balance() {
        return Decision::Short {
            shortfall: from_credits - read.balance(),
        };
    }
    Decision::Allowed {
        from_free,
        from_credits,
        answer: Answer {
            units,
            free_uses_remaining: free_left - from_free,
            balance: read.balance() - from_credits,
        },
    }
}

fn cheapest_pack(catalog: &Catalog, shortfall: i64) -> Option<PackHint> {
    let plan = catalog.cheapest_covering(shortfall)?;
    let Grant::Credits(credits) = plan.grant() else {
        return None;
    };
    Some(PackHint {
        plan_id: plan.id.to_string(),
        amount: plan.amount,
        currency: plan.currency.clone(),
        credits,
    })
}

/// Parses `units` of the check's query as the consume call's body would be checked.
pub fn parse_units(raw: Option<&str>) -> Result<i64, UsageError> {
    raw.and_then(|u| u.trim().parse::<i64>().ok())
        .filter(|u| (1..=MAX_UNITS).contains(u))
        .ok_or_else(|| UsageError::InvalidRequest(format!("units must be 1 to {MAX_UNITS}")))
}

/// `GET /api/billing/usage?units=n`: the consume call's answer for `units` now, with the
/// cheapest pack covering a shortfall; reads only.
pub async fn check(
    services: &Services,
    user: &UserId,
    units: i64,
) -> Result<UsageCheck, UsageError> {
    let read = profile::load(services.table.as_ref(), user)
        .await?
        .unwrap_or_default();
    let free_total = services.config.free_uses;
    Ok(match decide(&read, free_total, units) {
        Decision::Allowed { answer, .. } => UsageCheck {
            allowed: true,
            free_uses_remaining: answer.free_uses_remaining,
            balance: answer.balance,
            purchase: None,
        },
        Decision::Short { shortfall } => UsageCheck {
            allowed: false,
            free_uses_remaining: (free_total - read.free_uses_used.unwrap_or(0)).max(0),
            balance: read.balance(),
            purchase: cheapest_pack(&services.config.catalog, shortfall),
        },
    })
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
        let (from_free, from_credits, answer) = match decide(&read, free_total, req.units) {
            Decision::Allowed {
                from_free,
                from_credits,
                answer,
            } => (from_free, from_credits, answer),
            Decision::Short { shortfall } => {
                metrics::emit("usage", names::USAGE_DENIED, 1.0, Unit::Count);
                let plan = cheapest_pack(&services.config.catalog, shortfall).map(|p| p.plan_id);
                return Err(UsageError::PaymentRequired {
                    units: req.units,
                    plan_id: plan,
                });
            }
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
        let writes = entitlements::stamped(writes, &format!("usage:{key}"), &at);
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
