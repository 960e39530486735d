//! `entitlements.active_entitlement_summary.updated`: the features Stripe's dashboard attaches
//! to the customer's Products. A boolean feature whose catalog entry names a Stripe
//! `lookup_key` is on while the latest summary lists it, in addition to what the plan grants.
//!
//! The summary replaces the one stored, unless a later one (by the event's `created`) is
//! stored already: that condition is the guard, so any delivery order ends in the latest.

use super::{Ctx, FulfilError, Planned};
use crate::domain::ids::CustomerId;
use crate::store::records::profile::ProfileChange;
use crate::stripe::objects::ActiveEntitlementSummary;

pub(super) async fn summary_updated(
    ctx: &Ctx<'_>,
    summary: &ActiveEntitlementSummary,
) -> Result<Planned, FulfilError> {
    let customer = CustomerId::parse(&summary.customer).map_err(FulfilError::invalid)?;
    let user = ctx.user_of(None, Some(&customer)).await?;
    let keys: Vec<String> = summary
        .entitlements
        .data
        .iter()
        .map(|e| e.lookup_key.clone())
        .filter(|k| !k.is_empty() && !k.contains(char::is_whitespace))
        .collect();
    let change = ProfileChange::existing(&user).stripe_features(&keys, ctx.event.created);
    Ok(ctx.plan(vec![change.write()]))
}
