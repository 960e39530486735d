//! Features as the catalog names them (`docs/features.md`): on/off features, limits, and
//! metered allowances that reset, with the rule for units beyond the allowance; and what
//! each plan (and the `free` entry, for accounts without a plan) grants of them.
//!
//! Everything here is checked when the catalog is parsed, at cold start: a catalog that
//! names an unknown feature, a metered feature without a reset, or a Stripe-metered
//! overage without its meter's event name never serves a request.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The seed's free uses: the `free` entry's metered `usage` feature (`FREE_USES` units,
/// never reset, then credits). `POST /api/billing/usage` tracks it.
pub const USAGE: &str = "usage";

/// A feature id from the catalog (`ai_messages`): lower snake case, like a plan id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeatureId(String);

impl FeatureId {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        ok.then(|| Self(raw.to_owned()))
    }
    pub fn usage() -> Self {
        Self(USAGE.to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FeatureId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// When a metered allowance starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reset {
    /// The subscription's current period as Stripe holds it (the calendar month without one).
    Period,
    /// The calendar month in UTC.
    Month,
    Never,
}

/// What happens to units beyond a metered allowance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overage {
    /// Refused (402).
    Block,
    /// Paid with the account's credits, `credit_cost` per unit.
    Credits { credit_cost: i64 },
    /// Reported to the Stripe Billing Meter named by `event_name`, billed by the plan's
    /// metered price.
    StripeMeter { event_name: String },
}

impl Overage {
    pub fn name(&self) -> &'static str {
        match self {
            Overage::Block => "block",
            Overage::Credits { .. } => "credits",
            Overage::StripeMeter { .. } => "stripe_meter",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureKind {
    /// On or off; on also while Stripe's entitlement summary lists `stripe_lookup_key`.
    Boolean {
        stripe_lookup_key: Option<String>,
    },
    /// A number the app compares its own count with; per seat, times the subscription's seats.
    Limit {
        per_seat: bool,
    },
    Metered {
        reset: Reset,
        overage: Overage,
    },
}

impl FeatureKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            FeatureKind::Boolean { .. } => "boolean",
            FeatureKind::Limit { .. } => "limit",
            FeatureKind::Metered { .. } => "metered",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    pub id: FeatureId,
    pub name: String,
    pub kind: FeatureKind,
}

/// What one plan grants of one feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureGrant {
    On,
    Limit(i64),
    Included(i64),
}

/// A plan's (or the `free` entry's) grants, by feature.
pub type Grants = BTreeMap<FeatureId, FeatureGrant>;

/// A feature as the catalog file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub reset: Option<Reset>,
    #[serde(default)]
    pub overage: Option<String>,
    #[serde(default)]
    pub credit_cost: Option<i64>,
    #[serde(default)]
    pub event_name: Option<String>,
    #[serde(default)]
    pub per_seat: bool,
    #[serde(default)]
    pub stripe_lookup_key: Option<String>,
}

/// Why a catalog's features are refused, said so that the operator can fix the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FeatureError(pub String);

fn refuse<T>(why: String) -> Result<T, FeatureError> {
    Err(FeatureError(why))
}

impl FeatureFile {
    pub fn check(self, raw_id: &str) -> Result<Feature, FeatureError> {
        let Some(id) = FeatureId::parse(raw_id) else {
            return refuse(format!(
                "feature id {raw_id:?} must be lower snake case (a-z, 0-9, _)"
            ));
        };
        let metered_only = self.reset.is_some()
            || self.overage.is_some()
            || self.credit_cost.is_some()
            || self.event_name.is_some();
        let kind = match self.kind.as_str() {
            "boolean" if !metered_only && !self.per_seat => FeatureKind::Boolean {
                stripe_lookup_key: self.stripe_lookup_key.filter(|k| !k.trim().is_empty()),
            },
            "limit" if !metered_only && self.stripe_lookup_key.is_none() => FeatureKind::Limit {
                per_seat: self.per_seat,
            },
            "boolean" | "limit" => {
                return refuse(format!(
                    "feature {id}: reset, overage, credit_cost and event_name are for metered \
                     features; per_seat for limits; stripe_lookup_key for booleans"
                ));
            }
            "metered" => self.metered(&id)?,
            other => {
                return refuse(format!(
                    "feature {id}: type {other:?} is not boolean, limit or metered"
                ));
            }
        };
        Ok(Feature {
            name: self.name.unwrap_or_else(|| id.to_string()),
            id,
            kind,
        })
    }

    fn metered(&self, id: &FeatureId) -> Result<FeatureKind, FeatureError> {
        if self.per_seat || self.stripe_lookup_key.is_some() {
            return refuse(format!(
                "feature {id}: per_seat and stripe_lookup_key are not for metered features"
            ));
        }
        let Some(reset) = self.reset else {
            return refuse(format!(
                "feature {id}: a metered feature needs reset (period, month or never)"
            ));
        };
        let overage = match self.overage.as_deref().unwrap_or("block") {
            "block" => Overage::Block,
            "credits" => match self.credit_cost.unwrap_or(1) {
                cost if cost >= 1 => Overage::Credits { credit_cost: cost },
                _ => return refuse(format!("feature {id}: credit_cost must be at least 1")),
            },
            "stripe_meter" => match self.event_name.as_deref().map(str::trim) {
                Some(name) if !name.is_empty() && name.len() <= 100 => Overage::StripeMeter {
                    event_name: name.to_owned(),
                },
                _ => {
                    return refuse(format!(
                        "feature {id}: a stripe_meter overage needs the meter's event_name"
                    ));
                }
            },
            other => {
                return refuse(format!(
                    "feature {id}: overage {other:?} is not block, credits or stripe_meter"
                ));
            }
        };
        if self.credit_cost.is_some() && !matches!(overage, Overage::Credits { .. }) {
            return refuse(format!(
                "feature {id}: credit_cost is only for a credits overage"
            ));
        }
        if self.event_name.is_some() && !matches!(overage, Overage::StripeMeter { .. }) {
            return refuse(format!(
                "feature {id}: event_name is only for a stripe_meter overage"
            ));
        }
        Ok(FeatureKind::Metered { reset, overage })
    }
}

/// Reads what a plan (named `owner` in errors) grants: `true` for a boolean, a count for a
/// limit or a metered allowance.
pub fn parse_grants(
    owner: &str,
    raw: &BTreeMap<String, Value>,
    features: &BTreeMap<FeatureId, Feature>,
) -> Result<Grants, FeatureError> {
    let mut grants = Grants::new();
    for (name, value) in raw {
        let Some(feature) = FeatureId::parse(name).and_then(|id| features.get(&id)) else {
            return refuse(format!(
                "{owner} grants feature {name:?}, which the catalog's features do not name"
            ));
        };
        let count = value.as_i64().filter(|n| *n >= 0);
        let grant = match (&feature.kind, value.as_bool(), count) {
            (FeatureKind::Boolean { .. }, Some(true), _) => FeatureGrant::On,
            (FeatureKind::Limit { .. }, _, Some(n)) => FeatureGrant::Limit(n),
            (FeatureKind::Metered { .. }, _, Some(n)) => FeatureGrant::Included(n),
            (kind, ..) => {
                let want = match kind {
                    FeatureKind::Boolean { .. } => "true",
                    _ => "a whole number ≥ 0",
                };
                return refuse(format!(
                    "{owner} grants {name} {value}: a {} feature takes {want}",
                    kind.type_name()
                ));
            }
        };
        grants.insert(feature.id.clone(), grant);
    }
    Ok(grants)
}

/// The `stripe_meter` feature a plan's metered price bills: a plan (`plan`) that grants
/// such a feature names a metered price (a subscription's, one per plan), and a metered
/// price bills exactly one such feature the plan grants.
pub fn metered_price_feature(
    plan: &str,
    subscription: bool,
    metered_price: Option<&str>,
    grants: &Grants,
    features: &BTreeMap<FeatureId, Feature>,
) -> Result<Option<FeatureId>, FeatureError> {
    let bad = |why: String| refuse(format!("plan {plan}: {why}"));
    let metered: Vec<&FeatureId> = grants
        .keys()
        .filter(|f| {
            matches!(
                features.get(*f).map(|f| &f.kind),
                Some(FeatureKind::Metered {
                    overage: Overage::StripeMeter { .. },
                    ..
                })
            )
        })
        .collect();
    match (metered_price, metered.as_slice()) {
        (None, []) => Ok(None),
        (None, [f, ..]) => bad(format!(
            "grants {f}, a stripe_meter feature, but names no metered_price to bill it"
        )),
        (Some(_), _) if !subscription => bad("only subscriptions have a metered_price".into()),
        (Some(_), []) => bad("has a metered_price but grants no stripe_meter feature".into()),
        (Some(price), [f]) if is_unit_amount_decimal(price) => Ok(Some((*f).clone())),
        (Some(price), [_]) => bad(format!(
            "metered_price {price:?} must be a positive decimal of minor units with at most 12 \
             decimal places (\"0.1\")"
        )),
        (Some(_), _) => {
            bad("grants more than one stripe_meter feature; a plan has one metered_price".into())
        }
    }
}

/// Stripe's `unit_amount_decimal`: digits, at most one point and 12 decimal places, above 0.
fn is_unit_amount_decimal(raw: &str) -> bool {
    let (whole, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !whole.is_empty()
        && digits(whole)
        && digits(frac)
        && frac.len() <= 12
        && !(raw.contains('.') && frac.is_empty())
        && raw.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(json: &str) -> Result<Feature, FeatureError> {
        serde_json::from_str::<FeatureFile>(json)
            .unwrap()
            .check("f")
    }

    #[test]
    fn a_metered_feature_without_a_reset_is_refused_saying_why() {
        let err = feature(r#"{"type":"metered","overage":"block"}"#).unwrap_err();
        assert!(err.0.contains("needs reset"), "{err}");
    }

    #[test]
    fn a_stripe_meter_overage_without_an_event_name_is_refused() {
        let err =
            feature(r#"{"type":"metered","reset":"period","overage":"stripe_meter"}"#).unwrap_err();
        assert!(err.0.contains("event_name"), "{err}");
        let ok = feature(
            r#"{"type":"metered","reset":"period","overage":"stripe_meter","event_name":"calls"}"#,
        )
        .unwrap();
        assert_eq!(
            ok.kind,
            FeatureKind::Metered {
                reset: Reset::Period,
                overage: Overage::StripeMeter {
                    event_name: "calls".into()
                }
            }
        );
    }

    #[test]
    fn a_credits_overage_costs_one_credit_a_unit_unless_the_catalog_says_more() {
        let f = feature(r#"{"type":"metered","reset":"never","overage":"credits"}"#).unwrap();
        assert_eq!(
            f.kind,
            FeatureKind::Metered {
                reset: Reset::Never,
                overage: Overage::Credits { credit_cost: 1 }
            }
        );
        assert!(
            feature(r#"{"type":"metered","reset":"never","overage":"credits","credit_cost":0}"#)
                .is_err()
        );
        assert!(feature(r#"{"type":"boolean","reset":"never"}"#).is_err());
        assert!(feature(r#"{"type":"quota"}"#).is_err());
    }

    #[test]
    fn a_grant_of_an_unknown_feature_or_of_the_wrong_shape_is_refused() {
        let mut features = BTreeMap::new();
        let f = feature(r#"{"type":"limit"}"#).unwrap();
        features.insert(f.id.clone(), f);
        let grants = |json: &str| {
            let raw: BTreeMap<String, Value> = serde_json::from_str(json).unwrap();
            parse_grants("plan p", &raw, &features)
        };
        assert_eq!(
            grants(r#"{"f": 10}"#).unwrap()[&FeatureId::parse("f").unwrap()],
            FeatureGrant::Limit(10)
        );
        assert!(
            grants(r#"{"g": 10}"#)
                .unwrap_err()
                .0
                .contains("do not name")
        );
        assert!(grants(r#"{"f": true}"#).is_err());
        assert!(grants(r#"{"f": -1}"#).is_err());
    }
}
