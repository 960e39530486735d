//! `POST /api/billing/admin/grant`: days of access and/or credits, and/or a feature (units of
//! a metered feature for its current period, or a boolean feature turned on), with an audit
//! record of who granted what and why, in the same transaction as the grant.

use super::{AdminError, MAX_GRANT_CREDITS, MAX_GRANT_DAYS};
use crate::app::Services;
use crate::domain::clock::rfc3339;
use crate::domain::features::{Feature, FeatureKind};
use crate::domain::identity::Identity;
use crate::domain::ids::UserId;
use crate::store::StoreError;
use crate::store::records::entitlements;
use crate::store::records::grant;
use crate::store::records::profile::ProfileChange;
use chrono::Duration as Days;
use serde::Serialize;

/// A grant an operator asks for, parsed where the request enters (`inbound::commands`).
#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub user: UserId,
    pub days: Option<i64>,
    pub credits: Option<i64>,
    pub reason: String,
    /// Makes a retried request grant once: the same key for the same user answers the
    /// first grant again.
    pub idempotency_key: Option<String>,
    /// A feature of the catalog: a boolean one is turned on; a metered one gets `units`
    /// more in its current period.
    pub feature: Option<String>,
    pub units: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantOutcome {
    pub grant_id: String,
    pub user_id: String,
    pub days: i64,
    pub credits: i64,
    pub credit_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<i64>,
}

/// The feature a grant names, checked: a boolean one (no units) or a metered one with 1 to
/// [`MAX_GRANT_CREDITS`] units.
fn granted_feature<'a>(
    services: &'a Services,
    req: &GrantRequest,
) -> Result<Option<(&'a Feature, i64)>, AdminError> {
    let invalid = |m: String| Err(AdminError::InvalidRequest(m));
    let Some(id) = req.feature.as_deref() else {
        return match req.units {
            Some(_) => invalid("units are granted of a feature: name it in feature".into()),
            None => Ok(None),
        };
    };
    let Some(feature) = services.config.catalog.feature(id) else {
        return invalid(format!(
            "the catalog names no feature {:?}",
            id.chars().take(64).collect::<String>()
        ));
    };
    match (&feature.kind, req.units) {
        (FeatureKind::Boolean { .. }, None) => Ok(Some((feature, 0))),
        (FeatureKind::Metered { .. }, Some(n)) if (1..=MAX_GRANT_CREDITS).contains(&n) => {
            Ok(Some((feature, n)))
        }
        (FeatureKind::Metered { .. }, _) => {
            invalid(format!("grant 1 to {MAX_GRANT_CREDITS} units of {id}"))
        }
        (FeatureKind::Boolean { .. }, Some(_)) => {
            invalid(format!("{id} is on or off: grant it without units"))
        }
        (FeatureKind::Limit { .. }, _) => invalid(format!(
            "{id} is a limit, which plans set; grant a plan's days instead"
        )),
    }
}

/// `POST /api/billing/admin/grant`: days of access and/or credits, with an audit record of
/// who granted what and why, in the same transaction as the grant.
pub async fn grant(
    services: &Services,
    operator: &Identity,
    req: GrantRequest,
) -> Result<GrantOutcome, AdminError> {
    let invalid = |m: &str| AdminError::InvalidRequest(m.to_owned());
    let user = req.user.clone();
    let days = req.days.unwrap_or(0);
    let credits = req.credits.unwrap_or(0);
    let feature = granted_feature(services, &req)?;
    if !(0..=MAX_GRANT_DAYS).contains(&days)
        || !(0..=MAX_GRANT_CREDITS).contains(&credits)
        || (days + credits == 0 && feature.is_none())
    {
        return Err(invalid(
            "grant 1 to 3650 days and/or 1 to 10000000 credits and/or a feature",
        ));
    }
    let feature_id = feature.map(|(f, _)| f.id.to_string());
    let units = feature.map(|(_, n)| n).filter(|n| *n > 0);
    let reason = req.reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(invalid("a reason of 1 to 500 characters is required"));
    }
    let table = services.table.as_ref();
    let key = req.idempotency_key.as_deref();
    if key.is_some_and(|k| k.is_empty() || k.len() > 255) {
        return Err(invalid("an idempotency_key of 1 to 255 characters"));
    }
    let grant_id = match key {
        // Derived from the user and the key, so a retry names the same grant.
        Some(k) => {
            use sha2::{Digest, Sha256};
            hex::encode(&Sha256::digest(format!("{user}\n{k}").as_bytes())[..16])
        }
        None => uuid::Uuid::new_v4().simple().to_string(),
    };
    let first = |g: grant::Granted| GrantOutcome {
        grant_id: grant_id.clone(),
        user_id: user.to_string(),
        days: g.days,
        credits: g.credits,
        credit_until: g.credit_until.map(rfc3339),
        feature: feature_id.clone(),
        units,
    };
    if key.is_some()
        && let Some(done) = grant::load_once(table, &user, &grant_id).await?
    {
        return Ok(first(done));
    }
    for _ in 0..5 {
        let now = services.clock.now();
        let account = crate::usecases::features::read(services, &user).await?;
        let current = account.profile.credit_until.clone();
        let mut change = ProfileChange::new(&user, now).touched(now);
        if credits > 0 {
            change = change.add_credits(credits);
        }
        match feature {
            Some((f, 0)) => change = change.turn_on(&f.id),
            Some((f, n)) => {
                if let Some(m) = account.features(&services.config.catalog, now).metered(f) {
                    change = change.grant_units(&f.id, &m, n);
                }
            }
            None => {}
        }
        let mut until = account.profile.credit_until_time();
        if days > 0 {
            let base = account
                .profile
                .credit_until_time()
                .filter(|t| *t > now)
                .unwrap_or(now);
            let new = base + Days::days(days);
            // Pinned to what was read, so two grants at once both count.
            change = change.extend_credit_until(new, current.as_deref());
            until = Some(new);
        }
        let audit = grant::Audit {
            grant_id: &grant_id,
            operator: &operator.user,
            reason,
            days,
            credits,
            at: now,
            credit_until_after: until,
            feature: feature_id.as_deref(),
            units,
        };
        let mut writes = vec![change.write(), grant::audit(&user, &audit)];
        if key.is_some() {
            let granted = grant::Granted {
                days,
                credits,
                credit_until: until,
            };
            writes.push(grant::once(&user, &grant_id, &granted));
        }
        let cause = format!("grant:{grant_id}");
        // A grant of a feature changes what the account may do, whatever attribute it sets.
        let writes = match feature {
            Some(_) => entitlements::stamped_for(writes, &user, &cause, now),
            None => entitlements::stamped(writes, &cause, now),
        };
        match table.transact(writes).await {
            Ok(()) => {
                tracing::info!(operator = %operator.user, user = %user, days, credits, grant_id, "grant applied");
                return Ok(GrantOutcome {
                    grant_id,
                    user_id: user.to_string(),
                    days,
                    credits,
                    credit_until: until.map(rfc3339),
                    feature: feature_id,
                    units,
                });
            }
            // The keyed grant landed before (a retry after an ambiguous commit): answer it.
            Err(StoreError::TransactionConditionFailed(failed)) if failed.contains(&2) => {
                if let Some(done) = grant::load_once(table, &user, &grant_id).await? {
                    return Ok(first(done));
                }
            }
            Err(StoreError::TransactionConditionFailed(_) | StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}
