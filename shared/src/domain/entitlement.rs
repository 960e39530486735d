//! Entitlement rules that hold wherever they are stored: a subscription's status, and the
//! tier an account has.

use serde::Serialize;

/// A subscription's status, by Stripe's names. A status this project does not know (one a
/// newer API version adds) is [`SubscriptionStatus::Unrecognized`]: it keeps no paid tier,
/// is stored and shown as `unrecognized`, and never fails the event that carries it
/// (docs/decisions.md, "A subscription status we do not know").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    /// A status Stripe sent that is none of the above.
    Unrecognized,
}

impl SubscriptionStatus {
    /// The status Stripe (or a stored row) names `name`; any other name is `Unrecognized`.
    pub fn parse(name: &str) -> Self {
        match name {
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "unpaid" => Self::Unpaid,
            "paused" => Self::Paused,
            _ => Self::Unrecognized,
        }
    }

    /// Stripe's name for the status (`unrecognized` for one it named otherwise).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
            Self::Unrecognized => "unrecognized",
        }
    }

    /// Whether a subscription in this status keeps the paid tier: it is trialing, active,
    /// or past due while Stripe retries the payment.
    pub const fn keeps_tier(self) -> bool {
        matches!(self, Self::Trialing | Self::Active | Self::PastDue)
    }

    /// Whether the subscription has ended for good.
    pub const fn has_ended(self) -> bool {
        matches!(self, Self::Canceled | Self::IncompleteExpired)
    }
}

impl std::fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an account has: `paid` while a subscription keeps the tier or bought credit time
/// lasts, else `free`. Derived when read, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Paid,
}

impl Tier {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Paid => "paid",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tier compares with its name, as the JSON answers write it.
impl PartialEq<&str> for Tier {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRIPE_STATUSES: [&str; 8] = [
        "incomplete",
        "incomplete_expired",
        "trialing",
        "active",
        "past_due",
        "canceled",
        "unpaid",
        "paused",
    ];

    #[test]
    fn every_stripe_status_round_trips() {
        for name in STRIPE_STATUSES {
            let status = SubscriptionStatus::parse(name);
            assert_ne!(status, SubscriptionStatus::Unrecognized, "{name}");
            assert_eq!(status.as_str(), name);
        }
    }

    #[test]
    fn only_trialing_active_and_past_due_keep_the_paid_tier() {
        let keeping: Vec<&str> = STRIPE_STATUSES
            .into_iter()
            .filter(|s| SubscriptionStatus::parse(s).keeps_tier())
            .collect();
        assert_eq!(keeping, ["trialing", "active", "past_due"]);
    }

    #[test]
    fn a_status_from_a_newer_api_version_is_unrecognized_and_keeps_no_tier() {
        let status = SubscriptionStatus::parse("on_hold");
        assert_eq!(status, SubscriptionStatus::Unrecognized);
        assert!(!status.keeps_tier());
        assert!(!status.has_ended());
        assert_eq!(status.as_str(), "unrecognized");
    }

    #[test]
    fn a_tier_is_written_as_today() {
        assert_eq!(serde_json::to_string(&Tier::Paid).unwrap(), r#""paid""#);
        assert_eq!(serde_json::to_string(&Tier::Free).unwrap(), r#""free""#);
    }
}
