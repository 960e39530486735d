//! Publishing `billing.entitlements.changed` (`docs/api.md`, "Entitlement events").
//!
//! Every committed entitlement change raised the account's outbox version in its own
//! transaction ([`entitlements::stamped`]); the table's stream hands each new version to
//! the publisher, which reads the account and publishes it under that version. So:
//! - nothing is published before the commit, and nothing for a transaction that failed
//!   (no stream record exists for it);
//! - a crash or a failed publish hands the record back (the stream mapping retries it) and
//!   it is published again under the same version and id: at least once;
//! - a duplicate Stripe event changes nothing, so it raises no version and publishes nothing.
//!
//! The detail is the account read after the version committed (strongly consistent), built
//! by the account view's own rules ([`account_view`]), so it is never older than its
//! version; a consumer keeps the highest version it has seen.
//!
//! [`entitlements::stamped`]: crate::store::records::entitlements::stamped

use crate::app::Services;
use crate::domain::ids::UserId;
use crate::events::{BusError, Credits, EntitlementsChanged, EventBus};
use crate::store::StoreError;
use crate::store::records::entitlements::OutboxVersion;
use crate::store::records::{profile, subscription};
use crate::usecases::account::account_view;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// The stable id of one version's event.
pub fn event_id(user: &UserId, version: i64) -> String {
    format!("{user}:{version}")
}

/// The event of `version`: the account's entitlements as read now.
pub async fn snapshot(
    services: &Services,
    version: &OutboxVersion,
) -> Result<EntitlementsChanged, StoreError> {
    let table = services.table.as_ref();
    let user = &version.user;
    let (profile, subscriptions) =
        tokio::try_join!(profile::load(table, user), subscription::list(table, user),)?;
    let view = account_view(
        user,
        &profile.unwrap_or_default(),
        &subscriptions,
        (&[], None),
        &services.config,
        services.clock.now(),
    );
    Ok(EntitlementsChanged {
        id: event_id(user, version.version),
        user_id: view.user_id,
        tier: view.tier.as_str().to_owned(),
        plan_id: view.plan_id,
        subscription_status: view.subscription.map(|s| s.status),
        credits: Credits {
            balance: view.credits.balance,
            free_uses_remaining: view.credits.free_uses_remaining,
        },
        credit_until: view.credit_until,
        features: view.features,
        cause: version.cause.clone(),
        version: version.version,
    })
}

/// Publishes the event of one committed version (a stream record's new image).
pub async fn publish(
    services: &Services,
    bus: &dyn EventBus,
    version: &OutboxVersion,
) -> Result<EntitlementsChanged, PublishError> {
    let event = snapshot(services, version).await?;
    bus.publish(&event).await?;
    tracing::info!(user = %version.user, version = version.version, cause = %version.cause, "entitlements published");
    Ok(event)
}

/// Publishes a batch of stream records in order: each is its sequence number and the
/// version its new image shows (`None` for anything but a versioned outbox item, which
/// publishes nothing). Stops at the first failure and names its sequence number: the
/// stream mapping hands the batch back from there, so nothing after it is skipped.
pub async fn publish_in_order(
    services: &Services,
    bus: &dyn EventBus,
    records: Vec<(String, Option<OutboxVersion>)>,
) -> Result<(), (String, PublishError)> {
    for (sequence, version) in records {
        let Some(version) = version else { continue };
        if let Err(e) = publish(services, bus, &version).await {
            tracing::error!(user = %version.user, version = version.version, error = %e, "publishing failed; the stream hands it back");
            return Err((sequence, e));
        }
    }
    Ok(())
}
