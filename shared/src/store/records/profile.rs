//! An account's profile: credits, free uses, `credit_until`, its Stripe customer, referral
//! state and the last payment problem. Every change is one [`ProfileChange`]: the ops and
//! the conditions that make it safe against a concurrent change of the same account.

use super::pinned;
use crate::domain::allowance::{Metered, StoredFeatures};
use crate::domain::clock::parse_rfc3339;
use crate::domain::features::{FeatureId, USAGE};
use crate::domain::ids::{CustomerId, InvoiceId, UserId};
use crate::store::schema::user_pk;
use crate::store::{Cond, Item, ItemExt, Key, Op, StoreError, Table, Value, Write};
use chrono::{DateTime, Utc};

pub const SORT_KEY: &str = "PROFILE";

/// The attributes an account's entitlements are read from: a change of any of them is
/// an entitlement change ([`super::entitlements::stamped`]).
pub const ENTITLEMENT_ATTRS: &[&str] = &["credits", "free_uses_used", "credit_until"];

/// Whether a change of `attr` changes what the account is entitled to: the attributes
/// above, a boolean feature an operator turned on, and Stripe's entitlement summary. Units
/// drawn from a metered allowance other than the seed's free uses are not: a track decides
/// itself when it changes whether a feature is allowed.
pub fn is_entitlement_attr(attr: &str) -> bool {
    ENTITLEMENT_ATTRS.contains(&attr) || attr.starts_with(ON_PREFIX) || attr == STRIPE_FEATURES
}

const USED_PREFIX: &str = "used_";
const PERIOD_PREFIX: &str = "period_";
const ON_PREFIX: &str = "on_";
/// Stripe's active entitlement summary for the customer: its lookup keys, space-separated,
/// and the `created` time of the event that set them (a later summary replaces an earlier).
const STRIPE_FEATURES: &str = "stripe_features";
const STRIPE_FEATURES_AT: &str = "stripe_features_at";

/// The units a metered feature drew from its allowance. The seed's `usage` feature keeps
/// the attribute the free uses always had, so accounts written before features read the same.
fn used_attr(feature: &FeatureId) -> String {
    if feature.as_str() == USAGE {
        "free_uses_used".to_owned()
    } else {
        format!("{USED_PREFIX}{feature}")
    }
}

fn period_attr(feature: &FeatureId) -> String {
    format!("{PERIOD_PREFIX}{feature}")
}

fn stored_features(item: &Item) -> StoredFeatures {
    let mut stored = StoredFeatures::default();
    let feature = |name: &str, prefix: &str| name.strip_prefix(prefix).and_then(FeatureId::parse);
    for (name, value) in item {
        if let (Some(f), Some(used)) = (feature(name, USED_PREFIX), value.as_i64()) {
            let period = item.str(&period_attr(&f)).map(str::to_owned);
            stored.used.insert(f, (used, period));
        } else if let (Some(f), Some(true)) = (feature(name, ON_PREFIX), value.as_bool()) {
            stored.turned_on.insert(f);
        }
    }
    if let Some(used) = item.num("free_uses_used") {
        stored.used.insert(FeatureId::usage(), (used, None));
    }
    stored.stripe_lookup_keys = item
        .str(STRIPE_FEATURES)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    stored
}

pub fn key(user: &UserId) -> Key {
    Key::new(user_pk(user), SORT_KEY)
}

/// A stored profile; every attribute may be missing on a new account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub credits: Option<i64>,
    pub free_uses_used: Option<i64>,
    pub customer_id: Option<String>,
    pub credit_until: Option<String>,
    pub referral_code: Option<String>,
    pub referred_by: Option<String>,
    pub referrer_user_id: Option<String>,
    pub referral_rewarded_at: Option<String>,
    /// What earned the reward: `subscription:<sub_id>` when a first active subscription did
    /// (a checkout's reward is recorded on its payment's ledger instead).
    pub referral_reward_source: Option<String>,
    pub first_paid_at: Option<String>,
    pub conversions: Option<i64>,
    pub payment_problem_invoice: Option<String>,
    pub payment_problem_at: Option<String>,
    /// Metered units, operator-enabled features and Stripe's entitlement summary.
    pub features: StoredFeatures,
    /// [`ProblemKind::as_str`]; missing on problems recorded before kinds were.
    pub payment_problem_kind: Option<String>,
    pub payment_problem_url: Option<String>,
}

/// Why the account's last invoice is not paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The charge was declined: the customer updates their payment method.
    PaymentFailed,
    /// The payment needs the customer (3-D Secure): they confirm it on the invoice page.
    ActionRequired,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::PaymentFailed => "payment_failed",
            ProblemKind::ActionRequired => "action_required",
        }
    }
}

/// A payment problem as the account shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentProblem<'a> {
    pub kind: ProblemKind,
    pub invoice: &'a InvoiceId,
    /// The invoice's hosted page, when Stripe gave one.
    pub url: Option<&'a str>,
}

impl Profile {
    pub fn from_item(item: &Item) -> Self {
        let text = |name: &str| item.str(name).map(str::to_owned);
        Self {
            credits: item.num("credits"),
            free_uses_used: item.num("free_uses_used"),
            customer_id: text("customer_id"),
            credit_until: text("credit_until"),
            referral_code: text("referral_code"),
            referred_by: text("referred_by"),
            referrer_user_id: text("referrer_user_id"),
            referral_rewarded_at: text("referral_rewarded_at"),
            referral_reward_source: text("referral_reward_source"),
            first_paid_at: text("first_paid_at"),
            conversions: item.num("conversions"),
            payment_problem_invoice: text("payment_problem_invoice"),
            payment_problem_at: text("payment_problem_at"),
            features: stored_features(item),
            payment_problem_kind: text("payment_problem_kind"),
            payment_problem_url: text("payment_problem_url"),
        }
    }

    pub fn balance(&self) -> i64 {
        self.credits.unwrap_or(0)
    }

    /// `credit_until` as a time (none when unset or unreadable); the stored text stays in
    /// [`Profile::credit_until`], which a change pins to what it read.
    pub fn credit_until_time(&self) -> Option<DateTime<Utc>> {
        parse_rfc3339(self.credit_until.as_deref()?)
    }
}

pub async fn load(table: &dyn Table, user: &UserId) -> Result<Option<Profile>, StoreError> {
    Ok(table
        .get(&key(user))
        .await?
        .as_ref()
        .map(Profile::from_item))
}

/// What one use case changes on a profile, built up and then written once.
#[derive(Debug, Clone)]
#[must_use]
pub struct ProfileChange {
    key: Key,
    ops: Vec<Op>,
    conds: Vec<Cond>,
}

impl ProfileChange {
    /// A change that creates the profile (stamping `created_at`) when it is missing.
    pub fn new(user: &UserId, now: DateTime<Utc>) -> Self {
        Self {
            key: key(user),
            ops: vec![Op::set_if_missing("created_at", now)],
            conds: Vec::new(),
        }
    }

    /// A change that applies only to a profile that exists.
    pub fn existing(user: &UserId) -> Self {
        Self {
            key: key(user),
            ops: Vec::new(),
            conds: vec![Cond::ItemExists],
        }
    }

    fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    fn when(mut self, cond: Cond) -> Self {
        self.conds.push(cond);
        self
    }

    pub fn touched(self, now: DateTime<Utc>) -> Self {
        self.op(Op::set("updated_at", now))
    }

    pub fn add_credits(self, credits: i64) -> Self {
        self.op(Op::add("credits", credits))
    }

    /// Takes credits back, pinned to the balance read, so a concurrent spend makes the
    /// caller plan again rather than overdraw.
    pub fn take_credits(self, credits: i64, read: &Option<Profile>) -> Self {
        let balance = read.as_ref().and_then(|p| p.credits);
        self.op(Op::add("credits", -credits))
            .when(pinned("credits", balance.map(Into::into)))
    }

    /// Links the account's Stripe customer once: a later session naming this account with
    /// another customer (a gift, or someone else's Payment Link) never relinks it.
    pub fn link_customer(self, customer: &CustomerId) -> Self {
        self.op(Op::set_if_missing("customer_id", customer.to_string()))
    }

    pub fn payment_problem(self, problem: &PaymentProblem<'_>, at: DateTime<Utc>) -> Self {
        let change = self
            .op(Op::set(
                "payment_problem_invoice",
                problem.invoice.to_string(),
            ))
            .op(Op::set("payment_problem_at", at))
            .op(Op::set("payment_problem_kind", problem.kind.as_str()));
        match problem.url {
            Some(url) => change.op(Op::set("payment_problem_url", url.to_owned())),
            None => change.op(Op::remove("payment_problem_url")),
        }
    }

    pub fn payment_problem_cleared(self) -> Self {
        self.op(Op::remove("payment_problem_invoice"))
            .op(Op::remove("payment_problem_at"))
            .op(Op::remove("payment_problem_kind"))
            .op(Op::remove("payment_problem_url"))
    }

    /// Stamps the first payment, once; a referral can no longer be claimed after it.
    pub fn first_payment(self, at: DateTime<Utc>) -> Self {
        self.op(Op::set_if_missing("first_paid_at", at))
    }

    /// Moves `credit_until` to `until` from the value read (`read`), so two extensions
    /// at once both count: the second one plans again.
    pub fn extend_credit_until(self, until: DateTime<Utc>, read: Option<&str>) -> Self {
        self.op(Op::set("credit_until", until))
            .when(pinned("credit_until", read.map(Into::into)))
    }

    /// The referred buyer's reward, once per account, and what earned it.
    pub fn referral_rewarded(self, at: DateTime<Utc>, source: Option<&str>) -> Self {
        let change = self
            .op(Op::set("referral_rewarded_at", at))
            .when(Cond::missing("referral_rewarded_at"));
        match source {
            Some(s) => change.op(Op::set("referral_reward_source", s.to_owned())),
            None => change,
        }
    }

    /// One more referred account has paid.
    pub fn referral_conversion(self) -> Self {
        self.op(Op::add("conversions", 1))
    }

    /// A conversion counted again (`true`) or taken back with its payment (`false`).
    pub fn referral_conversion_counted(self, counted: bool) -> Self {
        self.op(Op::add("conversions", if counted { 1 } else { -1 }))
    }

    /// The account's referral code, set only once.
    pub fn referral_code(self, code: &str) -> Self {
        self.op(Op::set("referral_code", code.to_owned()))
            .when(Cond::missing("referral_code"))
    }

    /// The account was referred by `code` (owned by `owner`): only before a first payment
    /// and only once.
    pub fn referred(self, code: &str, owner: &UserId) -> Self {
        self.op(Op::set("referred_by", code.to_owned()))
            .op(Op::set("referrer_user_id", owner.to_string()))
            .when(Cond::missing("referred_by"))
            .when(Cond::missing("first_paid_at"))
    }

    /// Spends `from_free` free uses (of `free_total`) and `from_credits` credits, under a
    /// condition that makes overdrawing impossible. When all free uses are gone (the common
    /// case) the condition is `credits >= units`, which concurrent calls can all satisfy
    /// without pinning exact values; a spend that splits between free uses and credits pins
    /// the values it read. Free uses only count up to the total.
    pub fn spend(self, from_free: i64, from_credits: i64, free_total: i64, read: &Profile) -> Self {
        let cond = if from_free == 0 {
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
            let mut enough = vec![Cond::lt("free_uses_used", free_total - from_free + 1)];
            if free_total >= from_free {
                enough.push(Cond::missing("free_uses_used"));
            }
            Cond::Or(enough)
        } else {
            Cond::And(vec![
                pinned("free_uses_used", read.free_uses_used.map(Into::into)),
                pinned("credits", read.credits.map(Into::into)),
            ])
        };
        let mut change = self.when(cond);
        if from_free > 0 {
            change = change.op(Op::add("free_uses_used", from_free));
        }
        if from_credits > 0 {
            change = change.op(Op::add("credits", -from_credits));
        }
        change
    }

    /// Draws `from_allowance` units of `feature` from its allowance (state `m` as read) and
    /// spends `credits` for the units beyond it, under conditions that make overdrawing
    /// either impossible whatever runs at the same time. In the common cases (all units
    /// inside the allowance, or the allowance spent) the conditions hold for every
    /// concurrent track that fits, so they do not retry each other; a track that splits
    /// pins the units it read, and one that starts a new period pins the stored period.
    pub fn track(
        self,
        feature: &FeatureId,
        m: &Metered,
        from_allowance: i64,
        credits: i64,
    ) -> Self {
        let used = used_attr(feature);
        let period = period_attr(feature);
        let mut change = self;
        if let Some(stale) = &m.stale_period {
            change = change
                .when(pinned(&period, stale.clone().map(Into::into)))
                .op(Op::set(&period, m.period.id.clone().unwrap_or_default()))
                .op(Op::set(&used, from_allowance));
        } else {
            if let Some(p) = &m.period.id {
                change = change.when(Cond::eq(&period, p.clone()));
            }
            let or_missing = |cond: Cond, missing_ok: bool| match missing_ok {
                true => Cond::Or(vec![cond, Cond::missing(&used)]),
                false => cond,
            };
            let over = credits > 0;
            let cond = if !over {
                // Enough of the allowance left, whatever the exact count.
                let limit = m.included - from_allowance + 1;
                or_missing(Cond::lt(&used, limit), limit > 0)
            } else if from_allowance == 0 {
                // The allowance is spent, whatever the exact count.
                or_missing(Cond::ge(&used, m.included), m.included <= 0)
            } else {
                or_missing(Cond::eq(&used, m.used), m.used == 0)
            };
            change = change.when(cond);
            if from_allowance > 0 {
                change = change.op(Op::add(&used, from_allowance));
            }
        }
        if credits > 0 {
            change = change
                .when(Cond::ge("credits", credits))
                .op(Op::add("credits", -credits));
        }
        change
    }

    /// An operator's grant of `units` more of a metered feature in its current period
    /// (state `m` as read): the units drawn go down, so what is left goes up.
    pub fn grant_units(self, feature: &FeatureId, m: &Metered, units: i64) -> Self {
        let used = used_attr(feature);
        let period = period_attr(feature);
        match &m.stale_period {
            Some(stale) => self
                .when(pinned(&period, stale.clone().map(Into::into)))
                .op(Op::set(&period, m.period.id.clone().unwrap_or_default()))
                .op(Op::set(&used, -units)),
            None => {
                let change = match &m.period.id {
                    Some(p) => self.when(Cond::eq(&period, p.clone())),
                    None => self,
                };
                change.op(Op::add(&used, -units))
            }
        }
    }

    /// An operator turns a boolean feature on for the account.
    pub fn turn_on(self, feature: &FeatureId) -> Self {
        self.op(Op::set(&format!("{ON_PREFIX}{feature}"), true))
    }

    /// Stripe's active entitlement summary as of `created`, unless a later one is applied.
    pub fn stripe_features(self, lookup_keys: &[String], created: i64) -> Self {
        self.op(Op::set(STRIPE_FEATURES, Value::S(lookup_keys.join(" "))))
            .op(Op::set(STRIPE_FEATURES_AT, created))
            .when(Cond::Or(vec![
                Cond::missing(STRIPE_FEATURES_AT),
                Cond::lt(STRIPE_FEATURES_AT, created),
            ]))
    }

    pub fn write(self) -> Write {
        let cond = match self.conds.len() {
            0 => None,
            1 => self.conds.into_iter().next(),
            _ => Some(Cond::And(self.conds)),
        };
        Write::Update {
            key: self.key,
            ops: self.ops,
            cond,
        }
    }
}
