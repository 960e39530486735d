//! An account's features as the rules read them (`docs/features.md`): what its plan (or the
//! `free` entry) grants, what the operator and Stripe's entitlement summary add, and for a
//! metered feature the units used in the current period. Pure: the use cases read the
//! records once and ask these rules, so a check and a track decide alike.
//!
//! Allowances reset lazily: units are stored with the period they were used in, and units
//! of an earlier period read as zero. The period of a `period` feature is the subscription's
//! current period as Stripe holds it (identified by its end), so a plan switch that keeps the
//! period keeps the units used in it.

use crate::domain::catalog::Catalog;
use crate::domain::clock::rfc3339;
use crate::domain::features::{Feature, FeatureGrant, FeatureId, FeatureKind, Overage, Reset};
use crate::domain::ids::PlanId;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What an account's records hold about its features.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredFeatures {
    /// Units drawn from a metered allowance, with the period they were drawn in (`None` for
    /// a feature that never resets).
    pub used: BTreeMap<FeatureId, (i64, Option<String>)>,
    /// Boolean features an operator turned on.
    pub turned_on: BTreeSet<FeatureId>,
    /// The lookup keys of Stripe's latest active entitlement summary for the customer.
    pub stripe_lookup_keys: BTreeSet<String>,
}

/// The subscription that sets the plan and the period, as the account holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanPeriod<'a> {
    pub plan_id: Option<&'a str>,
    pub current_period_end: Option<i64>,
    pub quantity: i64,
}

/// The period units are counted in now, and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// `None` for an allowance that never resets.
    pub id: Option<String>,
    pub resets_at: Option<DateTime<Utc>>,
}

fn next_month(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single()
}

pub fn period(reset: Reset, sub: &PlanPeriod<'_>, now: DateTime<Utc>) -> Period {
    let month = || Period {
        id: Some(format!("m{:04}-{:02}", now.year(), now.month())),
        resets_at: next_month(now),
    };
    match (reset, sub.current_period_end) {
        (Reset::Never, _) => Period {
            id: None,
            resets_at: None,
        },
        (Reset::Period, Some(end)) => Period {
            id: Some(format!("p{end}")),
            resets_at: DateTime::from_timestamp(end, 0),
        },
        (Reset::Period, None) | (Reset::Month, _) => month(),
    }
}

/// One feature as the API shows it (`GET /api/billing/entitlements`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureView {
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: bool,
    pub limit: Option<i64>,
    pub included: Option<i64>,
    pub used: Option<i64>,
    pub remaining: Option<i64>,
    pub resets_at: Option<String>,
    pub overage: Option<String>,
}

/// A metered feature's state now: what the view shows and what a track decides from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metered {
    pub granted: bool,
    pub included: i64,
    /// Units drawn in the current period (negative after an operator granted extra units).
    pub used: i64,
    pub period: Period,
    /// The period stored with the units, when it is not the current one (a reset is due).
    pub stale_period: Option<Option<String>>,
    pub overage: Overage,
    /// A `stripe_meter` overage can be billed: the account's plan names the metered price
    /// for this feature and the account has a Stripe customer to bill.
    pub meter_billed: bool,
}

impl Metered {
    pub fn remaining(&self) -> i64 {
        (self.included - self.used).max(0)
    }
}

pub struct Features<'a> {
    pub catalog: &'a Catalog,
    pub stored: &'a StoredFeatures,
    pub sub: PlanPeriod<'a>,
    /// The account's Stripe customer, which a `stripe_meter` overage is billed to.
    pub customer: Option<&'a str>,
    pub now: DateTime<Utc>,
}

impl Features<'_> {
    fn grant(&self, id: &FeatureId) -> Option<FeatureGrant> {
        self.catalog.grants(self.sub.plan_id).get(id).copied()
    }

    pub fn boolean_on(&self, feature: &Feature) -> bool {
        let FeatureKind::Boolean { stripe_lookup_key } = &feature.kind else {
            return false;
        };
        self.grant(&feature.id) == Some(FeatureGrant::On)
            || self.stored.turned_on.contains(&feature.id)
            || stripe_lookup_key
                .as_ref()
                .is_some_and(|k| self.stored.stripe_lookup_keys.contains(k))
    }

    pub fn limit(&self, feature: &Feature) -> Option<i64> {
        let FeatureKind::Limit { per_seat } = feature.kind else {
            return None;
        };
        match self.grant(&feature.id) {
            Some(FeatureGrant::Limit(n)) if per_seat => Some(n * self.sub.quantity.max(1)),
            Some(FeatureGrant::Limit(n)) => Some(n),
            _ => None,
        }
    }

    pub fn metered(&self, feature: &Feature) -> Option<Metered> {
        let FeatureKind::Metered { reset, overage } = &feature.kind else {
            return None;
        };
        let grant = self.grant(&feature.id);
        let period = period(*reset, &self.sub, self.now);
        let (stored_used, stored_period) = self
            .stored
            .used
            .get(&feature.id)
            .cloned()
            .unwrap_or((0, None));
        let current = stored_period == period.id || *reset == Reset::Never;
        let meter_billed = matches!(overage, Overage::StripeMeter { .. })
            && self.customer.is_some()
            && self
                .sub
                .plan_id
                .and_then(|p| PlanId::parse(p).ok())
                .and_then(|p| self.catalog.get(&p))
                .and_then(|p| p.metered_feature.as_ref())
                .is_some_and(|billed| *billed == feature.id);
        Some(Metered {
            granted: matches!(grant, Some(FeatureGrant::Included(_))),
            included: match grant {
                Some(FeatureGrant::Included(n)) => n,
                _ => 0,
            },
            used: if current { stored_used } else { 0 },
            stale_period: (!current).then_some(stored_period),
            period,
            overage: overage.clone(),
            meter_billed,
        })
    }

    pub fn view(&self, feature: &Feature) -> FeatureView {
        let mut view = FeatureView {
            kind: feature.kind.type_name().to_owned(),
            enabled: false,
            limit: None,
            included: None,
            used: None,
            remaining: None,
            resets_at: None,
            overage: None,
        };
        match &feature.kind {
            FeatureKind::Boolean { .. } => view.enabled = self.boolean_on(feature),
            FeatureKind::Limit { .. } => {
                view.limit = self.limit(feature);
                view.enabled = view.limit.is_some_and(|n| n > 0);
            }
            FeatureKind::Metered { .. } => {
                if let Some(m) = self.metered(feature) {
                    view.enabled = m.granted;
                    view.included = Some(m.included);
                    view.used = Some(m.used.max(0));
                    view.remaining = Some(m.remaining());
                    view.resets_at = m.period.resets_at.map(rfc3339);
                    view.overage = Some(m.overage.name().to_owned());
                }
            }
        }
        view
    }

    pub fn all(&self) -> BTreeMap<String, FeatureView> {
        self.catalog
            .features()
            .map(|f| (f.id.to_string(), self.view(f)))
            .collect()
    }
}

/// How a track of `units` splits between the allowance and the overage rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Track {
    Allowed {
        from_allowance: i64,
        /// Credits the units beyond the allowance cost.
        credits: i64,
        /// Units beyond the allowance reported to the Stripe meter (billed after the fact).
        metered: i64,
    },
    /// The allowance and the overage rule do not cover it; `credits_short` more credits would.
    Refused { credits_short: Option<i64> },
}

pub fn decide_track(m: &Metered, balance: i64, units: i64) -> Track {
    if !m.granted {
        return Track::Refused {
            credits_short: None,
        };
    }
    let from_allowance = units.min(m.remaining());
    let over = units - from_allowance;
    match m.overage {
        _ if over == 0 => Track::Allowed {
            from_allowance,
            credits: 0,
            metered: 0,
        },
        Overage::Credits { credit_cost } if over * credit_cost <= balance => Track::Allowed {
            from_allowance,
            credits: over * credit_cost,
            metered: 0,
        },
        // Billed by Stripe after the fact: allowed, and reported once the track commits.
        Overage::StripeMeter { .. } if m.meter_billed => Track::Allowed {
            from_allowance,
            credits: 0,
            metered: over,
        },
        Overage::Credits { credit_cost } => Track::Refused {
            credits_short: Some(over * credit_cost - balance),
        },
        Overage::Block | Overage::StripeMeter { .. } => Track::Refused {
            credits_short: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_month_allowance_resets_on_the_first_of_the_next_month_in_utc() {
        let p = period(
            Reset::Month,
            &PlanPeriod::default(),
            at("2026-12-31T23:59:59Z"),
        );
        assert_eq!(p.id.as_deref(), Some("m2026-12"));
        assert_eq!(p.resets_at, Some(at("2027-01-01T00:00:00Z")));
    }

    #[test]
    fn a_period_allowance_follows_the_subscriptions_period_and_the_month_without_one() {
        let sub = PlanPeriod {
            plan_id: Some("pro_monthly"),
            current_period_end: Some(1_800_000_000),
            quantity: 1,
        };
        let now = at("2026-12-05T00:00:00Z");
        assert_eq!(
            period(Reset::Period, &sub, now).id.as_deref(),
            Some("p1800000000")
        );
        assert_eq!(
            period(Reset::Period, &PlanPeriod::default(), now)
                .id
                .as_deref(),
            Some("m2026-12")
        );
        assert_eq!(period(Reset::Never, &sub, now).id, None);
    }

    fn metered(included: i64, used: i64, overage: Overage) -> Metered {
        Metered {
            granted: true,
            included,
            used,
            period: Period {
                id: None,
                resets_at: None,
            },
            stale_period: None,
            overage,
            meter_billed: true,
        }
    }

    #[test]
    fn units_come_from_the_allowance_first_then_from_the_overage_rule() {
        let credits = Overage::Credits { credit_cost: 5 };
        assert_eq!(
            decide_track(&metered(10, 8, credits.clone()), 100, 4),
            Track::Allowed {
                from_allowance: 2,
                credits: 10,
                metered: 0
            }
        );
        assert_eq!(
            decide_track(&metered(10, 10, credits), 7, 2),
            Track::Refused {
                credits_short: Some(3)
            }
        );
        assert_eq!(
            decide_track(&metered(10, 9, Overage::Block), 1000, 2),
            Track::Refused {
                credits_short: None
            }
        );
    }

    #[test]
    fn units_beyond_a_stripe_meter_allowance_are_allowed_and_metered_only_when_billable() {
        let meter = Overage::StripeMeter {
            event_name: "api_calls".into(),
        };
        assert_eq!(
            decide_track(&metered(10, 8, meter.clone()), 0, 5),
            Track::Allowed {
                from_allowance: 2,
                credits: 0,
                metered: 3
            }
        );
        let unbilled = Metered {
            meter_billed: false,
            ..metered(10, 10, meter)
        };
        assert_eq!(
            decide_track(&unbilled, 1000, 1),
            Track::Refused {
                credits_short: None
            }
        );
    }
}
