//! The plan catalog: what can be bought and what it grants.
//!
//! The offers live in `catalog.json` beside this file (compiled in; a deployment replaces it
//! with `CATALOG_JSON`, the template's `CatalogJson` parameter, or a file at `CATALOG_PATH`);
//! each plan's Stripe price id or Payment Link comes from the environment
//! (`STRIPE_PRICE_<PLAN_ID>`, `STRIPE_LINK_<PLAN_ID>`), so one catalog serves test and live.

use crate::domain::features::{
    self, Feature, FeatureError, FeatureFile, FeatureGrant, FeatureId, FeatureKind, Grants,
    Overage, Reset,
};
use crate::domain::ids::PlanId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const DEFAULT_CATALOG: &str = include_str!("catalog.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Payment,
    Subscription,
}

/// What a plan gives its buyer, derived from its mode and credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// A subscription: the paid tier while it lasts, plus credits per paid period.
    Tier { credits_per_period: i64 },
    /// A credit pack: credits per unit bought.
    Credits(i64),
    /// A service: a recorded purchase and nothing else.
    Purchase,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    pub mode: Mode,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub trial_days: Option<u32>,
    /// A subscription billed per seat: checkout and switches take a `quantity` (seats), and
    /// per-seat `limit` features scale with it ([`Plan::seat_limit`]).
    #[serde(default)]
    pub per_seat: bool,
    /// The most seats a per-seat plan sells (default [`DEFAULT_MAX_SEATS`]).
    #[serde(default)]
    pub max_quantity: Option<i64>,
    /// Credit packs: credits per unit; subscriptions: credits per paid period.
    #[serde(default)]
    pub credits: i64,
    /// What the plan grants of the catalog's features, as the file writes it.
    #[serde(default, rename = "features")]
    features_file: BTreeMap<String, Value>,
    /// The same, checked against the catalog's features.
    #[serde(skip)]
    pub features: Grants,
    /// Whether its checkouts take promotion codes; unset: subscriptions do, credit packs
    /// do not (a 100%-off code would hand out credits), services do
    /// ([`Plan::promotion_codes_allowed`]).
    #[serde(default)]
    pub allow_promotion_codes: Option<bool>,
    /// The metered price a subscription to this plan also carries, for the `stripe_meter`
    /// feature it grants: what one unit beyond the allowance costs, in minor units of the
    /// plan's currency, as a decimal (Stripe's `unit_amount_decimal`: `"0.1"` is a tenth of
    /// a cent). Its Stripe price id comes from `STRIPE_PRICE_<PLAN_ID>_METERED`.
    #[serde(default)]
    pub metered_price: Option<String>,
    /// The `stripe_meter` feature the metered price bills (checked at parse).
    #[serde(skip)]
    pub metered_feature: Option<FeatureId>,
    /// Filled from the environment, never from the file.
    #[serde(skip)]
    pub price_id: Option<String>,
    /// The metered price's id (`STRIPE_PRICE_<PLAN_ID>_METERED`), from the environment.
    #[serde(skip)]
    pub metered_price_id: Option<String>,
    #[serde(skip)]
    pub payment_link: Option<String>,
}

impl Plan {
    /// The rules a plan's fields keep beyond their types.
    fn check(&self) -> Result<(), CatalogError> {
        let bad = |why| Err(CatalogError::Inconsistent(self.id.to_string(), why));
        if self.name.trim().is_empty() {
            return bad("name must not be empty");
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return bad("currency must be three lowercase letters (ISO 4217, as Stripe writes it)");
        }
        if self.credits < 0 {
            return bad("credits must not be negative");
        }
        let intervals = ["day", "week", "month", "year"];
        if self
            .interval
            .as_deref()
            .is_some_and(|i| !intervals.contains(&i))
        {
            return bad("interval must be day, week, month or year");
        }
        if self.trial_days.is_some() && self.mode != Mode::Subscription {
            return bad("only subscriptions have trial days");
        }
        if self.per_seat && self.mode != Mode::Subscription {
            return bad("only subscriptions are sold per seat");
        }
        if self.max_quantity.is_some() && !self.per_seat {
            return bad("max_quantity is for per-seat plans");
        }
        if self.max_quantity.is_some_and(|m| m < 1) {
            return bad("max_quantity must be at least 1");
        }
        Ok(())
    }

    /// The most seats one subscription to this plan holds: 1 unless it is per seat.
    pub fn max_seats(&self) -> i64 {
        match self.per_seat {
            true => self.max_quantity.unwrap_or(DEFAULT_MAX_SEATS),
            false => 1,
        }
    }

    /// Whether `quantity` seats of this subscription plan may be bought or switched to.
    pub fn check_seats(&self, quantity: i64) -> Result<(), SeatsError> {
        if !self.per_seat {
            return match quantity {
                1 => Ok(()),
                _ => Err(SeatsError::NotPerSeat(self.id.to_string())),
            };
        }
        match (1..=self.max_seats()).contains(&quantity) {
            true => Ok(()),
            false => Err(SeatsError::OutOfRange {
                plan: self.id.to_string(),
                max: self.max_seats(),
            }),
        }
    }

    /// The hook for per-seat `limit` features: a limit of a per-seat plan counts per seat,
    /// so the account's limit is `limit × seats`; any other plan's limit is as written.
    pub fn seat_limit(&self, limit: i64, seats: i64) -> i64 {
        match self.per_seat {
            true => limit.saturating_mul(seats.max(1)),
            false => limit,
        }
    }

    /// Whether a checkout of this plan lets the buyer enter a promotion code: as the catalog
    /// says, else yes for subscriptions and services and no for credit packs.
    pub fn promotion_codes_allowed(&self) -> bool {
        self.allow_promotion_codes
            .unwrap_or(!matches!(self.grant(), Grant::Credits(_)))
    }

    pub fn grant(&self) -> Grant {
        match self.mode {
            Mode::Subscription => Grant::Tier {
                credits_per_period: self.credits,
            },
            Mode::Payment if self.credits > 0 => Grant::Credits(self.credits),
            Mode::Payment => Grant::Purchase,
        }
    }

    /// `credits_starter` → `CREDITS_STARTER`, the suffix of its environment variables.
    pub fn env_suffix(&self) -> String {
        self.id.as_str().to_ascii_uppercase()
    }
}

impl Plan {
    /// `pro_api` → `PRO_API_METERED`, the suffix of its metered price's variable.
    pub fn metered_env_suffix(&self) -> String {
        format!("{}_METERED", self.env_suffix())
    }

    /// Whether this plan can be sold through Checkout as the catalog describes it: its
    /// price is configured, and so is its metered price when it names one (a subscription
    /// without it would give overage units away unbilled).
    pub fn checkout_ready(&self) -> bool {
        self.price_id.is_some() && (self.metered_price.is_none() || self.metered_price_id.is_some())
    }
}

/// Seats a subscription plan may have when none are asked for.
pub const DEFAULT_MAX_SEATS: i64 = 100;

/// A quantity of seats a plan does not sell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatsError {
    #[error("{0} is not sold per seat; send no quantity for it")]
    NotPerSeat(String),
    #[error("{plan} takes 1 to {max} seats")]
    OutOfRange { plan: String, max: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog is not valid: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error("the catalog names plan {0} twice")]
    Duplicate(String),
    #[error("plan {0}: {1}")]
    Inconsistent(String, &'static str),
    #[error("plans {0} and {1} share a Stripe price or an environment name")]
    Shared(String, String),
    #[error("{0} names {1}, which is not a plan of the catalog")]
    UnknownInList(&'static str, String),
    #[error("{0}")]
    Feature(#[from] FeatureError),
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    plans: BTreeMap<PlanId, Plan>,
    features: BTreeMap<FeatureId, Feature>,
    /// What an account without a plan has (the catalog's `free` entry).
    free: Grants,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    plans: Vec<Plan>,
    #[serde(default)]
    features: BTreeMap<String, FeatureFile>,
    #[serde(default)]
    free: FreeFile,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FreeFile {
    #[serde(default)]
    features: BTreeMap<String, Value>,
}

/// The seed's metered `usage` feature, for a catalog that does not declare it: free uses
/// first (`FREE_USES`, never reset), then one credit a unit.
fn seed_usage_feature() -> Feature {
    Feature {
        id: FeatureId::usage(),
        name: "Uses".into(),
        kind: FeatureKind::Metered {
            reset: Reset::Never,
            overage: Overage::Credits { credit_cost: 1 },
        },
    }
}

impl Catalog {
    /// Parses a catalog and fills price ids and links through `env` (a lookup by name).
    pub fn parse(json: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, CatalogError> {
        let file: CatalogFile = serde_json::from_str(json)?;
        let mut features = BTreeMap::new();
        for (id, raw) in file.features {
            let feature = raw.check(&id)?;
            features.insert(feature.id.clone(), feature);
        }
        let usage = FeatureId::usage();
        let declares_usage = features.contains_key(&usage);
        features
            .entry(usage.clone())
            .or_insert_with(seed_usage_feature);
        let mut free = features::parse_grants("the free entry", &file.free.features, &features)?;
        if !declares_usage {
            free.insert(usage, FeatureGrant::Included(0));
        }
        let mut plans = BTreeMap::new();
        for mut plan in file.plans {
            plan.features = features::parse_grants(
                &format!("plan {}", plan.id),
                &plan.features_file,
                &features,
            )?;
            if plan.amount <= 0 {
                return Err(CatalogError::Inconsistent(
                    plan.id.to_string(),
                    "amount must be positive",
                ));
            }
            if (plan.mode == Mode::Subscription) != plan.interval.is_some() {
                return Err(CatalogError::Inconsistent(
                    plan.id.to_string(),
                    "subscriptions, and only they, have an interval",
                ));
            }
            plan.check()?;
            plan.metered_feature = features::metered_price_feature(
                plan.id.as_str(),
                plan.mode == Mode::Subscription,
                plan.metered_price.as_deref(),
                &plan.features,
                &features,
            )?;
            let suffix = plan.env_suffix();
            let non_empty = |name: String| env(&name).filter(|v| !v.trim().is_empty());
            plan.price_id = non_empty(format!("STRIPE_PRICE_{suffix}"));
            if plan.metered_price.is_some() {
                plan.metered_price_id =
                    non_empty(format!("STRIPE_PRICE_{}", plan.metered_env_suffix()));
            }
            plan.payment_link = non_empty(format!("STRIPE_LINK_{suffix}"));
            let id = plan.id.clone();
            if plans.insert(id.clone(), plan).is_some() {
                return Err(CatalogError::Duplicate(id.to_string()));
            }
        }
        // A price (or an environment name) two plans share would let the first plan in
        // alphabetical order decide what the other's buyers and renewals get.
        let mut seen: BTreeMap<String, &PlanId> = BTreeMap::new();
        for plan in plans.values() {
            let names = [Some(format!("env:{}", plan.env_suffix()))]
                .into_iter()
                .chain([plan.price_id.as_ref().map(|p| format!("price:{p}"))])
                .chain([
                    plan.metered_price
                        .as_ref()
                        .map(|_| format!("env:{}", plan.metered_env_suffix())),
                    plan.metered_price_id.as_ref().map(|p| format!("price:{p}")),
                ]);
            for name in names.flatten() {
                if let Some(other) = seen.insert(name, &plan.id) {
                    return Err(CatalogError::Shared(other.to_string(), plan.id.to_string()));
                }
            }
        }
        Ok(Self {
            plans,
            features,
            free,
        })
    }

    /// Sets the `free` entry's allowance of the seed's `usage` feature (`FREE_USES`), when
    /// the free entry grants it.
    pub fn with_free_uses(mut self, free_uses: i64) -> Self {
        if let Some(grant) = self.free.get_mut(&FeatureId::usage()) {
            *grant = FeatureGrant::Included(free_uses);
        }
        self
    }

    pub fn features(&self) -> impl Iterator<Item = &Feature> {
        self.features.values()
    }

    pub fn feature(&self, id: &str) -> Option<&Feature> {
        FeatureId::parse(id).and_then(|id| self.features.get(&id))
    }

    /// What an account on `plan` has: the `free` entry's grants, overridden feature by
    /// feature by the plan's (a plan that does not name a feature keeps the free grant, so
    /// paying never takes away what free accounts have).
    pub fn grants(&self, plan: Option<&str>) -> Grants {
        let mut grants = self.free.clone();
        if let Some(plan) = plan
            .and_then(|p| PlanId::parse(p).ok())
            .and_then(|p| self.plans.get(&p))
        {
            grants.extend(plan.features.iter().map(|(id, g)| (id.clone(), *g)));
        }
        grants
    }

    /// The cheapest subscription plan that grants more of `feature` than `now` (or turns it
    /// on), for a refusal's upgrade hint.
    pub fn cheapest_upgrade(
        &self,
        feature: &FeatureId,
        now: Option<FeatureGrant>,
    ) -> Option<&Plan> {
        let amount = |g: Option<&FeatureGrant>| match g {
            Some(FeatureGrant::On) => 1,
            Some(FeatureGrant::Limit(n) | FeatureGrant::Included(n)) => *n,
            None => 0,
        };
        let have = amount(now.as_ref());
        self.plans
            .values()
            .filter(|p| p.mode == Mode::Subscription && amount(p.features.get(feature)) > have)
            .min_by_key(|p| p.amount)
    }

    /// Whether `id` names a plan, as the compact `STRIPE_PRICES`/`STRIPE_LINKS` lists do
    /// (case-insensitively, by the plan's environment name).
    pub fn names(&self, id: &str) -> bool {
        self.plans.values().any(|p| {
            p.env_suffix().eq_ignore_ascii_case(id)
                || (p.metered_price.is_some() && p.metered_env_suffix().eq_ignore_ascii_case(id))
        })
    }

    pub fn get(&self, id: &PlanId) -> Option<&Plan> {
        self.plans.get(id)
    }

    pub fn plans(&self) -> impl Iterator<Item = &Plan> {
        self.plans.values()
    }

    /// The plan whose configured Stripe price is `price_id` (for events without our metadata).
    pub fn by_price(&self, price_id: &str) -> Option<&Plan> {
        self.plans
            .values()
            .find(|p| p.price_id.as_deref() == Some(price_id))
    }

    /// The cheapest credit pack that covers `units` credits, for a 402's purchase hint.
    pub fn cheapest_covering(&self, units: i64) -> Option<&Plan> {
        self.plans
            .values()
            .filter(|p| matches!(p.grant(), Grant::Credits(c) if c >= units))
            .min_by_key(|p| p.amount)
    }
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
