//! An account's profile: credits, free uses, `credit_until`, its Stripe customer, referral
//! state and the last payment problem. Every change is one [`ProfileChange`]: the ops and
//! the conditions that make it safe against a concurrent change of the same account.

use super::pinned;
use crate::domain::ids::{CustomerId, InvoiceId, UserId};
use crate::store::schema::user_pk;
use crate::store::{Cond, Item, ItemExt, Key, Op, StoreError, Table, Write};

pub const SORT_KEY: &str = "PROFILE";

/// The attributes an account's entitlements are read from: a change of any of them is
/// an entitlement change ([`super::entitlements::stamped`]).
pub const ENTITLEMENT_ATTRS: &[&str] = &["credits", "free_uses_used", "credit_until"];

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
            payment_problem_kind: text("payment_problem_kind"),
            payment_problem_url: text("payment_problem_url"),
        }
    }

    pub fn balance(&self) -> i64 {
        self.credits.unwrap_or(0)
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
    pub fn new(user: &UserId, now: &str) -> Self {
        Self {
            key: key(user),
            ops: vec![Op::set_if_missing("created_at", now.to_owned())],
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

    pub fn touched(self, now: &str) -> Self {
        self.op(Op::set("updated_at", now.to_owned()))
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

    pub fn payment_problem(self, problem: &PaymentProblem<'_>, at: &str) -> Self {
        let change = self
            .op(Op::set(
                "payment_problem_invoice",
                problem.invoice.to_string(),
            ))
            .op(Op::set("payment_problem_at", at.to_owned()))
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
    pub fn first_payment(self, at: &str) -> Self {
        self.op(Op::set_if_missing("first_paid_at", at.to_owned()))
    }

    /// Moves `credit_until` to `until` from the value read (`read`), so two extensions
    /// at once both count: the second one plans again.
    pub fn extend_credit_until(self, until: String, read: Option<&str>) -> Self {
        self.op(Op::set("credit_until", until))
            .when(pinned("credit_until", read.map(Into::into)))
    }

    /// The referred buyer's reward, once per account, and what earned it.
    pub fn referral_rewarded(self, at: &str, source: Option<&str>) -> Self {
        let change = self
            .op(Op::set("referral_rewarded_at", at.to_owned()))
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
