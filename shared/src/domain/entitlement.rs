//! Entitlement rules that hold wherever they are stored.

/// Subscription statuses that keep the paid tier.
pub const TIER_KEEPING: &[&str] = &["trialing", "active", "past_due"];

/// Whether a subscription in `status` keeps the paid tier.
pub fn keeps_tier(status: &str) -> bool {
    TIER_KEEPING.contains(&status)
}
