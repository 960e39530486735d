//! Features (`docs/features.md`): the caller's entitlements, the check ("may I use `units`
//! of this feature now?", consuming nothing) and the track of a metered feature (take the
//! units from the allowance, then apply the overage rule), idempotent by key.
//!
//! A check is one read round trip (the profile and the subscriptions, read together); a
//! track is one transaction: the profile's change, whose conditions make overdrawing
//! impossible ([`ProfileChange::track`]), and the key's record with the answer. A lost race
//! plans again from fresh reads. Neither reads the usage records, so both cost the same
//! whatever the account's history.

use crate::app::Services;
use crate::domain::allowance::{FeatureView, Features, Metered, PlanPeriod, Track, decide_track};
use crate::domain::catalog::{Catalog, Grant};
use crate::domain::features::{Feature, FeatureId, FeatureKind, Overage, USAGE};
use crate::domain::ids::UserId;
use crate::store::StoreError;
use crate::store::records::entitlements;
use crate::store::records::meter_report::{self, MeterReport};
use crate::store::records::profile::{self, Profile, ProfileChange};
use crate::store::records::subscription::{self, SubscriptionRow};
use crate::store::records::usage::{self as usage_key, Answer};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

const MAX_ATTEMPTS: usize = 100;
/// The most units one call checks or tracks.
pub const MAX_UNITS: i64 = 1_000_000;

/// The cheapest credit pack that covers a shortfall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackHint {
    pub plan_id: String,
    pub amount: i64,
    pub currency: String,
    pub credits: i64,
}

pub fn cheapest_pack(catalog: &Catalog, shortfall: i64) -> Option<PackHint> {
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

pub fn validate_units(units: i64) -> Result<(), String> {
    if (1..=MAX_UNITS).contains(&units) {
        Ok(())
    } else {
        Err(format!("units must be 1 to {MAX_UNITS}"))
    }
}

pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err("idempotency_key must be 1 to 128 printable characters".into());
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the catalog names no feature {0:?}")]
    UnknownFeature(String),
    #[error("{0} is not a metered feature: only metered features track usage")]
    NotMetered(String),
    #[error("{units} units of {feature} are not allowed now")]
    PaymentRequired {
        feature: String,
        units: i64,
        hints: Box<Hints>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a refusal names: the plan that would allow it and/or the pack that would cover it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hints {
    pub upgrade: Option<UpgradeHint>,
    pub purchase: Option<PackHint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeHint {
    pub plan_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub balance: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntitlementsView {
    pub features: BTreeMap<String, FeatureView>,
    pub credits: Balance,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckView {
    pub allowed: bool,
    pub feature: FeatureView,
    pub upgrade: Option<UpgradeHint>,
    pub purchase: Option<PackHint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    pub allowed: bool,
    pub feature: FeatureView,
    pub credits: Balance,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackRequest {
    pub units: i64,
    pub idempotency_key: String,
}

/// The account as the feature rules read it: its profile and the subscription that sets its
/// plan and period (the one that keeps the paid tier; none sets a plan otherwise).
pub struct Account {
    pub profile: Profile,
    subscription: Option<SubscriptionRow>,
}

impl Account {
    pub fn from_rows(profile: Profile, subscriptions: &[SubscriptionRow]) -> Self {
        let subscription = subscriptions
            .iter()
            .filter(|s| s.status.keeps_tier())
            .max_by_key(|s| s.version.clone())
            .cloned();
        Self {
            profile,
            subscription,
        }
    }

    pub fn features<'a>(&'a self, catalog: &'a Catalog, now: DateTime<Utc>) -> Features<'a> {
        Features {
            catalog,
            stored: &self.profile.features,
            sub: PlanPeriod {
                plan_id: self
                    .subscription
                    .as_ref()
                    .and_then(|s| s.plan_id.as_deref()),
                current_period_end: self
                    .subscription
                    .as_ref()
                    .and_then(|s| s.current_period_end),
                quantity: self.subscription.as_ref().map_or(1, |s| s.quantity),
            },
            customer: self.profile.customer_id.as_deref(),
            now,
        }
    }
}

/// One read round trip: the profile and the subscriptions, together.
pub async fn read(services: &Services, user: &UserId) -> Result<Account, StoreError> {
    let table = services.table.as_ref();
    let (profile, subscriptions) =
        tokio::try_join!(profile::load(table, user), subscription::list(table, user))?;
    Ok(Account::from_rows(
        profile.unwrap_or_default(),
        &subscriptions,
    ))
}

fn feature<'a>(catalog: &'a Catalog, id: &str) -> Result<&'a Feature, FeatureError> {
    catalog
        .feature(id)
        .ok_or_else(|| FeatureError::UnknownFeature(id.chars().take(64).collect()))
}

fn upgrade(catalog: &Catalog, account: &Features<'_>, feature: &FeatureId) -> Option<UpgradeHint> {
    let now = catalog.grants(account.sub.plan_id).get(feature).copied();
    catalog.cheapest_upgrade(feature, now).map(|p| UpgradeHint {
        plan_id: p.id.to_string(),
        name: p.name.clone(),
    })
}

/// `GET /api/billing/entitlements`.
pub async fn entitlements(
    services: &Services,
    user: &UserId,
) -> Result<EntitlementsView, FeatureError> {
    let account = read(services, user).await?;
    let features = account.features(&services.config.catalog, services.clock.now());
    Ok(EntitlementsView {
        features: features.all(),
        credits: Balance {
            balance: account.profile.balance(),
        },
    })
}

/// `GET /api/billing/features/{id}/check?units=n`: would `units` be allowed now.
pub async fn check(
    services: &Services,
    user: &UserId,
    feature_id: &str,
    units: i64,
) -> Result<CheckView, FeatureError> {
    let catalog = &services.config.catalog;
    let feature = feature(catalog, feature_id)?;
    let account = read(services, user).await?;
    let features = account.features(catalog, services.clock.now());
    let (allowed, purchase) = match &feature.kind {
        FeatureKind::Boolean { .. } => (features.boolean_on(feature), None),
        FeatureKind::Limit { .. } => (features.limit(feature).is_some_and(|n| units <= n), None),
        FeatureKind::Metered { .. } => {
            let m = metered(&features, feature)?;
            match decide_track(&m, account.profile.balance(), units) {
                Track::Allowed { .. } => (true, None),
                Track::Refused { credits_short } => {
                    (false, credits_short.and_then(|s| cheapest_pack(catalog, s)))
                }
            }
        }
    };
    Ok(CheckView {
        allowed,
        feature: features.view(feature),
        upgrade: (!allowed)
            .then(|| upgrade(catalog, &features, &feature.id))
            .flatten(),
        purchase,
    })
}

fn metered(features: &Features<'_>, feature: &Feature) -> Result<Metered, FeatureError> {
    features
        .metered(feature)
        .ok_or_else(|| FeatureError::NotMetered(feature.id.to_string()))
}

/// The answer of a track that committed: the feature and the balance after it.
fn after(
    account: &Account,
    services: &Services,
    feature: &Feature,
    m: &Metered,
    from_allowance: i64,
    credits: i64,
) -> (Tracked, Profile) {
    let mut profile = account.profile.clone();
    profile.features.used.insert(
        feature.id.clone(),
        (m.used + from_allowance, m.period.id.clone()),
    );
    profile.credits = Some(profile.balance() - credits);
    let later = Account {
        profile,
        subscription: account.subscription.clone(),
    };
    let view = later
        .features(&services.config.catalog, services.clock.now())
        .view(feature);
    let tracked = Tracked {
        allowed: true,
        feature: view,
        credits: Balance {
            balance: later.profile.balance(),
        },
    };
    (tracked, later.profile)
}

/// `POST /api/billing/features/{id}/usage`: tracks `units` of a metered feature.
pub async fn track(
    services: &Services,
    user: &UserId,
    feature_id: &str,
    req: TrackRequest,
) -> Result<Tracked, FeatureError> {
    validate_units(req.units).map_err(FeatureError::InvalidRequest)?;
    validate_key(&req.idempotency_key).map_err(FeatureError::InvalidRequest)?;
    let catalog = &services.config.catalog;
    let feature = feature(catalog, feature_id)?;
    if !matches!(feature.kind, FeatureKind::Metered { .. }) {
        return Err(FeatureError::NotMetered(feature.id.to_string()));
    }
    let (tracked, _) = track_units(services, user, feature, &req).await?;
    Ok(tracked)
}

/// The seed's answer of a track of `usage`: free uses remaining and the balance after it.
pub(crate) fn seed_answer(tracked: &Tracked, units: i64) -> Answer {
    Answer {
        units,
        free_uses_remaining: tracked.feature.remaining.unwrap_or(0),
        balance: tracked.credits.balance,
    }
}

/// Tracks units of a metered feature; the seed's usage route calls it for `usage`.
pub(crate) async fn track_units(
    services: &Services,
    user: &UserId,
    feature: &Feature,
    req: &TrackRequest,
) -> Result<(Tracked, Answer), FeatureError> {
    let table = services.table.as_ref();
    let catalog = &services.config.catalog;
    let key = req.idempotency_key.as_str();
    for attempt in 0..MAX_ATTEMPTS {
        if let Some((seed, json)) = usage_key::load_tracked(table, user, &feature.id, key).await? {
            return Ok(replayed(services, user, feature, seed, json).await?);
        }
        let account = read(services, user).await?;
        let now = services.clock.now();
        let features = account.features(catalog, now);
        let m = metered(&features, feature)?;
        let (from_allowance, credits, metered) =
            match decide_track(&m, account.profile.balance(), req.units) {
                Track::Allowed {
                    from_allowance,
                    credits,
                    metered,
                } => (from_allowance, credits, metered),
                Track::Refused { credits_short } => {
                    return Err(FeatureError::PaymentRequired {
                        feature: feature.id.to_string(),
                        units: req.units,
                        hints: Box::new(Hints {
                            upgrade: upgrade(catalog, &features, &feature.id),
                            purchase: credits_short.and_then(|s| cheapest_pack(catalog, s)),
                        }),
                    });
                }
            };
        let (tracked, _) = after(&account, services, feature, &m, from_allowance, credits);
        let seed = seed_answer(&tracked, req.units);
        let spend = ProfileChange::new(user, now).touched(now).track(
            &feature.id,
            &m,
            from_allowance,
            credits,
        );
        let json = serde_json::to_string(&tracked).unwrap_or_default();
        let mut writes = vec![
            spend.write(),
            usage_key::tracked(user, &feature.id, key, seed, json, now, now.timestamp()),
        ];
        // Units beyond a stripe_meter allowance: the report Stripe is owed commits with them.
        if metered > 0 {
            writes.push(meter_owed(&account, user, feature, key, metered, now)?);
        }
        // A track publishes when it spends credits or uses the allowance up (both change
        // what the account may do); the seed's free uses publish with every use, as before.
        let cause = if feature.id.as_str() == USAGE {
            format!("usage:{key}")
        } else {
            format!("usage:{}:{key}", feature.id)
        };
        let used_up = m.remaining() > 0 && tracked.feature.remaining == Some(0);
        let writes = if used_up {
            entitlements::stamped_for(writes, user, &cause, now)
        } else {
            entitlements::stamped(writes, &cause, now)
        };
        match table.transact(writes).await {
            Ok(()) => return Ok((tracked, seed)),
            Err(StoreError::TransactionConditionFailed(_) | StoreError::Conflict) => {
                let jitter =
                    2 + (attempt as u64 * 7 + u64::from(now.timestamp_subsec_micros())) % 20;
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

/// The record of a Stripe meter report for `units` beyond the allowance, in the track's
/// transaction (`store::records::meter_report`).
fn meter_owed(
    account: &Account,
    user: &UserId,
    feature: &Feature,
    key: &str,
    units: i64,
    now: DateTime<Utc>,
) -> Result<crate::store::Write, FeatureError> {
    let (
        FeatureKind::Metered {
            overage: Overage::StripeMeter { event_name },
            ..
        },
        Some(customer),
    ) = (&feature.kind, account.profile.customer_id.as_deref())
    else {
        return Err(FeatureError::NotMetered(feature.id.to_string()));
    };
    let report = MeterReport {
        user_id: user.to_string(),
        feature: feature.id.to_string(),
        customer: customer.to_owned(),
        event_name: event_name.clone(),
        units,
        identifier: meter_report::identifier(user, &feature.id, key, now.timestamp()),
        at: now.timestamp(),
    };
    meter_report::owed(&report, now)
        .ok_or_else(|| FeatureError::InvalidRequest("idempotency_key cannot name a report".into()))
}

/// The first answer of a key used before. A key the seed's route used first has no stored
/// feature answer: the feature as it is now, with the balance that call left.
async fn replayed(
    services: &Services,
    user: &UserId,
    feature: &Feature,
    seed: Answer,
    json: Option<String>,
) -> Result<(Tracked, Answer), StoreError> {
    if let Some(first) = json.and_then(|j| serde_json::from_str::<Tracked>(&j).ok()) {
        return Ok((first, seed));
    }
    let account = read(services, user).await?;
    let view = account
        .features(&services.config.catalog, services.clock.now())
        .view(feature);
    let tracked = Tracked {
        allowed: true,
        feature: view,
        credits: Balance {
            balance: seed.balance,
        },
    };
    Ok((tracked, seed))
}
