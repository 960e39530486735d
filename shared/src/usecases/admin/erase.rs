//! `POST /api/billing/admin/users/{user_id}/erase`: erases a user's personal data while the
//! financial records keep their amounts, ids and audit trail (docs/decisions.md, "Erasure").
//!
//! What the stack holds that is personal: the Stripe objects inside the user's event
//! payloads (the customer's email, name, address, phone). Everything else is ids, amounts,
//! states and the operators' audit, which the money trail needs. So an erasure removes the
//! payload of every event of the account (its Stripe customer's and its own), then records
//! who erased, when and why. It is idempotent: run again, it scrubs what arrived since and
//! answers the first erasure's record. Stripe's own copy of the customer is the team's to
//! delete in Stripe (the stack never deletes anything at Stripe).

use super::AdminError;
use crate::app::Services;
use crate::domain::clock::rfc3339;
use crate::domain::identity::Identity;
use crate::domain::ids::{EventId, UserId};
use crate::store::StoreError;
use crate::store::records::erasure::{self, Erasure};
use crate::store::records::{event, profile};
use crate::stripe::user_group;
use serde::{Deserialize, Serialize};

/// How many event records one index page of the walk reads.
const WALK_PAGE: usize = 100;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EraseOutcome {
    pub user_id: String,
    /// When the account was first erased, by whom and why.
    pub erased_at: String,
    pub erased_by: String,
    pub reason: String,
    /// Event payloads removed by this call (0 when nothing arrived since the last one).
    pub events_scrubbed: i64,
}

pub async fn erase(
    services: &Services,
    operator: &Identity,
    user: &UserId,
    req: EraseRequest,
) -> Result<EraseOutcome, AdminError> {
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AdminError::InvalidRequest(
            "a reason of 1 to 500 characters is required".into(),
        ));
    }
    let table = services.table.as_ref();
    let customer = profile::load(table, user)
        .await?
        .and_then(|p| p.customer_id);
    let mut groups = vec![user_group(user.as_str())];
    groups.extend(customer);
    let mut scrubbed = 0;
    for group in &groups {
        scrubbed += scrub_group(services, group).await?;
    }
    let first = erasure::load(table, user).await?;
    if first.is_none() && scrubbed == 0 && !known(services, user).await? {
        return Err(AdminError::UnknownUser(format!("with id {user}")));
    }
    let record = match first {
        Some(done) => done,
        None => {
            let new = Erasure {
                operator: operator.user.to_string(),
                reason: reason.to_owned(),
                at: services.clock.now(),
                events_scrubbed: scrubbed,
            };
            match table.apply(erasure::recorded(user, &new)).await {
                Ok(()) => new,
                // Another erasure of the same account landed first: answer it.
                Err(StoreError::ConditionFailed) => erasure::load(table, user)
                    .await?
                    .ok_or(StoreError::Conflict)?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    tracing::info!(operator = %operator.user, user = %user, scrubbed, "personal data erased");
    Ok(EraseOutcome {
        user_id: user.to_string(),
        erased_at: rfc3339(record.at),
        erased_by: record.operator,
        reason: record.reason,
        events_scrubbed: scrubbed,
    })
}

/// Removes the payload of every event of one ordering group; answers how many.
async fn scrub_group(services: &Services, group: &str) -> Result<i64, AdminError> {
    let table = services.table.as_ref();
    let mut cursor: Option<String> = None;
    let mut scrubbed = 0;
    loop {
        let (page, next) = event::of_account(table, group, WALK_PAGE, cursor.as_deref()).await?;
        for record in page {
            let Ok(id) = EventId::parse(&record.id) else {
                continue;
            };
            match table.apply(event::scrubbed(&id)).await {
                Ok(()) => scrubbed += 1,
                // Scrubbed before, or expired by its TTL since the index listed it.
                Err(StoreError::ConditionFailed) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(scrubbed),
        }
    }
}

/// Whether the stack holds anything of the account (an erasure of nobody is a typo).
async fn known(services: &Services, user: &UserId) -> Result<bool, AdminError> {
    let cursors = super::UserCursors::default();
    match super::user_view(services, user, &cursors).await {
        Ok(_) => Ok(true),
        Err(AdminError::UnknownUser(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
