//! `POST /api/billing/admin/grant`: days of access and/or credits, with an audit record of
//! who granted what and why, in the same transaction as the grant.

use super::{AdminError, MAX_GRANT_CREDITS, MAX_GRANT_DAYS};
use crate::domain::clock::rfc3339;
use crate::domain::identity::Identity;
use crate::domain::ids::UserId;
use crate::edge::runtime::Services;
use crate::store::StoreError;
use crate::store::records::entitlements;
use crate::store::records::grant;
use crate::store::records::profile::{self, ProfileChange};
use chrono::{DateTime, Duration as Days, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub user_id: String,
    #[serde(default)]
    pub days: Option<i64>,
    #[serde(default)]
    pub credits: Option<i64>,
    pub reason: String,
    /// Makes a retried request grant once: the same key for the same user answers the
    /// first grant again.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantOutcome {
    pub grant_id: String,
    pub user_id: String,
    pub days: i64,
    pub credits: i64,
    pub credit_until: Option<String>,
}

/// `POST /api/billing/admin/grant`: days of access and/or credits, with an audit record of
/// who granted what and why, in the same transaction as the grant.
pub async fn grant(
    services: &Services,
    operator: &Identity,
    req: GrantRequest,
) -> Result<GrantOutcome, AdminError> {
    let invalid = |m: &str| AdminError::InvalidRequest(m.to_owned());
    let user =
        UserId::parse(&req.user_id).map_err(|e| AdminError::InvalidRequest(e.to_string()))?;
    let days = req.days.unwrap_or(0);
    let credits = req.credits.unwrap_or(0);
    if !(0..=MAX_GRANT_DAYS).contains(&days)
        || !(0..=MAX_GRANT_CREDITS).contains(&credits)
        || days + credits == 0
    {
        return Err(invalid("grant 1 to 3650 days and/or 1 to 10000000 credits"));
    }
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
        credit_until: g.credit_until,
    };
    if key.is_some()
        && let Some(done) = grant::load_once(table, &user, &grant_id).await?
    {
        return Ok(first(done));
    }
    for _ in 0..5 {
        let now = services.clock.now();
        let at = rfc3339(now);
        let current = profile::load(table, &user)
            .await?
            .and_then(|p| p.credit_until);
        let mut change = ProfileChange::new(&user, &at).touched(&at);
        if credits > 0 {
            change = change.add_credits(credits);
        }
        let mut until = current.clone();
        if days > 0 {
            let base = current
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .filter(|t| *t > now)
                .unwrap_or(now);
            let new = rfc3339(base + Days::days(days));
            // Pinned to what was read, so two grants at once both count.
            change = change.extend_credit_until(new.clone(), current.as_deref());
            until = Some(new);
        }
        let audit = grant::Audit {
            grant_id: &grant_id,
            operator: &operator.user,
            reason,
            days,
            credits,
            at: &at,
            credit_until_after: until.as_deref(),
        };
        let mut writes = vec![change.write(), grant::audit(&user, &audit)];
        if key.is_some() {
            let granted = grant::Granted {
                days,
                credits,
                credit_until: until.clone(),
            };
            writes.push(grant::once(&user, &grant_id, &granted));
        }
        let writes = entitlements::stamped(writes, &format!("grant:{grant_id}"), &at);
        match table.transact(writes).await {
            Ok(()) => {
                tracing::info!(operator = %operator.user, user = %user, days, credits, grant_id, "grant applied");
                return Ok(GrantOutcome {
                    grant_id,
                    user_id: user.to_string(),
                    days,
                    credits,
                    credit_until: until,
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
