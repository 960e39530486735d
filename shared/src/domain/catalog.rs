//! The plan catalog: what can be bought and what it grants.
//!
//! The offers live in `catalog.json` beside this file (compiled in; a deployment replaces it
//! with `CATALOG_JSON`, the template's `CatalogJson` parameter, or a file at `CATALOG_PATH`);
//! each plan's Stripe price id or Payment Link comes from the environment
//! (`STRIPE_PRICE_<PLAN_ID>`, `STRIPE_LINK_<PLAN_ID>`), so one catalog serves test and live.

use crate::domain::ids::PlanId;
use serde::{Deserialize, Serialize};
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
    /// Whether its checkouts take promotion codes; unset: subscriptions do, credit packs
    /// do not (a 100%-off code would hand out credits), services do
    /// ([`Plan::promotion_codes_allowed`]).
    #[serde(default)]
    pub allow_promotion_codes: Option<bool>,
    /// Filled from the environment, never from the file.
    #[serde(skip)]
    pub price_id: Option<String>,
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
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    plans: BTreeMap<PlanId, Plan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    plans: Vec<Plan>,
}

impl Catalog {
    /// Parses a catalog and fills price ids and links through `env` (a lookup by name).
    pub fn parse(json: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, CatalogError> {
        let file: CatalogFile = serde_json::from_str(json)?;
        let mut plans = BTreeMap::new();
        for mut plan in file.plans {
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
            let suffix = plan.env_suffix();
            let non_empty = |name: String| env(&name).filter(|v| !v.trim().is_empty());
            plan.price_id = non_empty(format!("STRIPE_PRICE_{suffix}"));
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
                .chain([plan.price_id.as_ref().map(|p| format!("price:{p}"))]);
            for name in names.flatten() {
                if let Some(other) = seen.insert(name, &plan.id) {
                    return Err(CatalogError::Shared(other.to_string(), plan.id.to_string()));
                }
            }
        }
        Ok(Self { plans })
    }

    /// Whether `id` names a plan, as the compact `STRIPE_PRICES`/`STRIPE_LINKS` lists do
    /// (case-insensitively, by the plan's environment name).
    pub fn names(&self, id: &str) -> bool {
        self.plans
            .values()
            .any(|p| p.env_suffix().eq_ignore_ascii_case(id))
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
mod tests {
    use super::*;

    fn default_catalog() -> Catalog {
        Catalog::parse(DEFAULT_CATALOG, |_| None).unwrap()
    }

    #[test]
    fn the_default_catalog_holds_the_seed_offers() {
        let catalog = default_catalog();
        let expect = [
            ("deposit_500", 50000, Grant::Purchase),
            ("hourly_1h", 12500, Grant::Purchase),
            (
                "retainer",
                99900,
                Grant::Tier {
                    credits_per_period: 0,
                },
            ),
            ("credits_starter", 1000, Grant::Credits(1000)),
            ("credits_basic", 4500, Grant::Credits(5500)),
            ("credits_pro", 10000, Grant::Credits(13500)),
            ("credits_business", 22500, Grant::Credits(35000)),
            ("credits_enterprise", 70000, Grant::Credits(120000)),
            ("uses_20", 500, Grant::Credits(20)),
        ];
        for (id, amount, grant) in expect {
            let plan = catalog.get(&PlanId::parse(id).unwrap()).unwrap();
            assert_eq!((plan.amount, plan.grant()), (amount, grant), "{id}");
        }
        let annual = catalog.get(&PlanId::parse("pro_annual").unwrap()).unwrap();
        assert_eq!(
            (annual.trial_days, annual.interval.as_deref()),
            (Some(14), Some("year"))
        );
        assert!(
            catalog
                .get(&PlanId::parse("pro_monthly").unwrap())
                .is_some()
        );
    }

    #[test]
    fn price_ids_and_links_come_from_the_environment() {
        let catalog = Catalog::parse(DEFAULT_CATALOG, |name| match name {
            "STRIPE_PRICE_CREDITS_STARTER" => Some("price_123".into()),
            "STRIPE_LINK_DEPOSIT_500" => Some("https://buy.stripe.com/x".into()),
            "STRIPE_PRICE_HOURLY_1H" => Some("  ".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            catalog.by_price("price_123").unwrap().id.as_str(),
            "credits_starter"
        );
        let deposit = catalog.get(&PlanId::parse("deposit_500").unwrap()).unwrap();
        assert_eq!(
            deposit.payment_link.as_deref(),
            Some("https://buy.stripe.com/x")
        );
        let hourly = catalog.get(&PlanId::parse("hourly_1h").unwrap()).unwrap();
        assert_eq!(hourly.price_id, None, "a blank variable configures nothing");
    }

    #[test]
    fn a_catalog_with_a_duplicate_or_inconsistent_plan_is_refused() {
        let dup = r#"{"plans":[{"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd"},
                               {"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd"}]}"#;
        assert!(matches!(
            Catalog::parse(dup, |_| None),
            Err(CatalogError::Duplicate(_))
        ));
        let no_interval = r#"{"plans":[{"id":"a","name":"A","mode":"subscription","amount":1,"currency":"usd"}]}"#;
        assert!(matches!(
            Catalog::parse(no_interval, |_| None),
            Err(CatalogError::Inconsistent(..))
        ));
        let typo = r#"{"plans":[{"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd","credit":5}]}"#;
        assert!(matches!(
            Catalog::parse(typo, |_| None),
            Err(CatalogError::Invalid(_))
        ));
    }

    #[test]
    fn a_per_seat_plan_takes_one_to_its_max_quantity_of_seats_and_scales_its_limits() {
        let catalog = default_catalog();
        let team = catalog
            .get(&PlanId::parse("team_monthly").unwrap())
            .unwrap();
        assert!(team.per_seat);
        assert_eq!(team.check_seats(1), Ok(()));
        assert_eq!(team.check_seats(team.max_seats()), Ok(()));
        for bad in [0, -1, team.max_seats() + 1] {
            assert!(
                matches!(team.check_seats(bad), Err(SeatsError::OutOfRange { .. })),
                "{bad}"
            );
        }
        assert_eq!(team.seat_limit(10, 3), 30);
        let pro = catalog.get(&PlanId::parse("pro_monthly").unwrap()).unwrap();
        assert_eq!(pro.check_seats(1), Ok(()));
        assert!(matches!(pro.check_seats(2), Err(SeatsError::NotPerSeat(_))));
        assert_eq!(
            pro.seat_limit(10, 3),
            10,
            "a plan not per seat keeps its limit"
        );
    }

    #[test]
    fn seats_belong_to_subscriptions_and_max_quantity_to_per_seat_plans() {
        for plan in [
            r#"{"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd","per_seat":true}"#,
            r#"{"id":"a","name":"A","mode":"subscription","interval":"month","amount":1,"currency":"usd","max_quantity":5}"#,
            r#"{"id":"a","name":"A","mode":"subscription","interval":"month","amount":1,"currency":"usd","per_seat":true,"max_quantity":0}"#,
        ] {
            let json = format!(r#"{{"plans":[{plan}]}}"#);
            assert!(
                matches!(
                    Catalog::parse(&json, |_| None),
                    Err(CatalogError::Inconsistent(..))
                ),
                "{plan}"
            );
        }
    }

    #[test]
    fn credit_packs_take_no_promotion_codes_unless_their_entry_says_so() {
        let catalog = default_catalog();
        let allowed = |id: &str| {
            catalog
                .get(&PlanId::parse(id).unwrap())
                .unwrap()
                .promotion_codes_allowed()
        };
        assert!(!allowed("uses_20") && !allowed("credits_starter"));
        assert!(allowed("pro_monthly") && allowed("pro_annual"));
        let unset = r#"{"plans":[{"id":"p","name":"P","mode":"payment","amount":1,"currency":"usd","credits":5},
                                 {"id":"s","name":"S","mode":"subscription","amount":1,"currency":"usd","interval":"month"},
                                 {"id":"q","name":"Q","mode":"payment","amount":1,"currency":"usd","credits":5,"allow_promotion_codes":true}]}"#;
        let c = Catalog::parse(unset, |_| None).unwrap();
        let of = |id: &str| {
            c.get(&PlanId::parse(id).unwrap())
                .unwrap()
                .promotion_codes_allowed()
        };
        assert_eq!((of("p"), of("s"), of("q")), (false, true, true));
        let not_a_flag = r#"{"plans":[{"id":"p","name":"P","mode":"payment","amount":1,"currency":"usd","allow_promotion_codes":"yes"}]}"#;
        assert!(matches!(
            Catalog::parse(not_a_flag, |_| None),
            Err(CatalogError::Invalid(_))
        ));
    }

    #[test]
    fn the_cheapest_covering_pack_is_suggested() {
        let catalog = default_catalog();
        assert_eq!(catalog.cheapest_covering(1).unwrap().id.as_str(), "uses_20");
        assert_eq!(
            catalog.cheapest_covering(21).unwrap().id.as_str(),
            "credits_starter"
        );
        assert_eq!(
            catalog.cheapest_covering(6000).unwrap().id.as_str(),
            "credits_pro"
        );
        assert!(catalog.cheapest_covering(1_000_000).is_none());
    }
}
