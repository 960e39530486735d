//! Usage metering (`POST /api/billing/usage`, `docs/api.md`): free uses first, then
//! credits, atomically; and its check (`GET /api/billing/usage?units=n`), which answers
//! the same decision from the same read and consumes nothing.
//!
//! The seed's rule is a feature now: the free uses are the `free` entry's metered `usage`
//! feature (`FREE_USES` units, never reset, then one credit a unit), so both calls are a
//! track and a check of that feature ([`features`]) answered in the seed's shape.

use crate::app::Services;
use crate::domain::allowance::{Track, decide_track};
use crate::domain::features::{Feature, USAGE};
use crate::domain::ids::UserId;
use crate::metrics::Metric;
use crate::store::StoreError;
use crate::store::records::usage::{self as usage_key, Answer};
pub use crate::usecases::features::PackHint;
use crate::usecases::features::{
    self, FeatureError, TrackRequest, cheapest_pack, validate_key, validate_units,
};
use serde::{Deserialize, Serialize};

pub use crate::usecases::features::MAX_UNITS;
pub use usage_key::KEY_TTL_SECS;

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

/// Parses `units` of the check's query as the consume call's body would be checked.
pub fn parse_units(raw: Option<&str>) -> Result<i64, UsageError> {
    raw.and_then(|u| u.trim().parse::<i64>().ok())
        .filter(|u| (1..=MAX_UNITS).contains(u))
        .ok_or_else(|| UsageError::InvalidRequest(format!("units must be 1 to {MAX_UNITS}")))
}

/// The seed's `usage` feature, which every catalog has (`Catalog::parse` adds it).
fn usage_feature(services: &Services) -> Result<&Feature, UsageError> {
    services
        .config
        .catalog
        .feature(USAGE)
        .ok_or_else(|| UsageError::InvalidRequest("the catalog has no usage feature".into()))
}

/// `GET /api/billing/usage?units=n`: the consume call's answer for `units` now, with the
/// cheapest pack covering a shortfall; reads only.
pub async fn check(
    services: &Services,
    user: &UserId,
    units: i64,
) -> Result<UsageCheck, UsageError> {
    let feature = usage_feature(services)?;
    let account = features::read(services, user).await?;
    let catalog = &services.config.catalog;
    let balance = account.profile.balance();
    let Some(m) = account
        .features(catalog, services.clock.now())
        .metered(feature)
    else {
        return Err(UsageError::InvalidRequest("usage is not metered".into()));
    };
    Ok(match decide_track(&m, balance, units) {
        Track::Allowed {
            from_allowance,
            credits,
            ..
        } => UsageCheck {
            allowed: true,
            free_uses_remaining: m.remaining() - from_allowance,
            balance: balance - credits,
            purchase: None,
        },
        Track::Refused { credits_short } => UsageCheck {
            allowed: false,
            free_uses_remaining: m.remaining(),
            balance,
            purchase: credits_short.and_then(|s| cheapest_pack(catalog, s)),
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

/// `POST /api/billing/usage`: a track of the seed's `usage` feature, answered as the seed
/// answers (free uses remaining and the balance after it; 402 naming a pack).
pub async fn consume(
    services: &Services,
    user: &UserId,
    req: UsageRequest,
) -> Result<UsageAllowed, UsageError> {
    validate_units(req.units).map_err(UsageError::InvalidRequest)?;
    validate_key(&req.idempotency_key).map_err(UsageError::InvalidRequest)?;
    let feature = usage_feature(services)?;
    let track = TrackRequest {
        units: req.units,
        idempotency_key: req.idempotency_key,
    };
    match features::track_units(services, user, feature, &track).await {
        Ok((_, answer)) => Ok(allowed(answer)),
        Err(FeatureError::PaymentRequired { hints, .. }) => {
            services.metrics.record(Metric::UsageDenied);
            Err(UsageError::PaymentRequired {
                units: req.units,
                plan_id: hints.purchase.map(|p| p.plan_id),
            })
        }
        Err(FeatureError::Store(e)) => Err(e.into()),
        Err(other) => Err(UsageError::InvalidRequest(other.to_string())),
    }
}
