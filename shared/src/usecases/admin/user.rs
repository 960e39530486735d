//! `GET /api/billing/admin/users/{user_id}` and the lookup by Stripe customer or checkout
//! session: one user's billing as an operator needs it to answer "I paid and got nothing".
//!
//! Every list that grows with the account's history (purchases, grants, refunds, events)
//! is one page with its own cursor, so a view costs the same number of reads whatever lies
//! beyond the page: the profile, the subscriptions, one page of each list. Unlike the
//! user's own account read it writes nothing (no referral code is created by looking).

use super::AdminError;
use super::events::{EventSummary, summary};
use crate::app::Services;
use crate::domain::clock::rfc3339;
use crate::domain::ids::{CustomerId, SessionId, UserId};
use crate::store::records::erasure;
use crate::store::records::event;
use crate::store::records::grant::{self, GrantRow};
use crate::store::records::profile;
use crate::store::records::purchase;
use crate::store::records::refund::{self, RefundRow};
use crate::store::records::subscription;
use crate::store::records::{checkout, customer};
use crate::stripe::user_group;
use crate::usecases::account::{AccountView, SubscriptionView, account_view, subscription_view};
use serde::Serialize;

/// How many entries of each list one view shows.
pub const USER_PAGE: usize = 20;

/// Where each list of the view continues (the `*_next` of an earlier answer).
#[derive(Debug, Clone, Default)]
pub struct UserCursors {
    pub purchases: Option<String>,
    pub grants: Option<String>,
    pub refunds: Option<String>,
    pub events: Option<String>,
}

/// How an operator finds a user they do not know the id of.
#[derive(Debug, Clone)]
pub enum UserLookup {
    Customer(CustomerId),
    Session(SessionId),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorUserView {
    pub user_id: String,
    /// The account exactly as the user reads it (its `purchases` are this view's page).
    pub account: AccountView,
    pub stripe_customer_id: Option<String>,
    pub subscriptions: Vec<SubscriptionView>,
    pub grants: Vec<GrantView>,
    pub grants_next: Option<String>,
    pub refunds: Vec<RefundView>,
    pub refunds_next: Option<String>,
    /// The webhook events of the account's Stripe customer and of the user, newest first.
    pub events: Vec<EventSummary>,
    pub events_next: Option<String>,
    /// Set once the user's personal data was erased: when, by whom, why.
    pub erasure: Option<ErasureView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureView {
    pub at: String,
    pub operator: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantView {
    pub grant_id: String,
    pub operator: String,
    pub reason: String,
    pub days: i64,
    pub credits: i64,
    pub at: String,
    /// The feature turned on, or given `units` more of (operator grants of features).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundView {
    pub purchase_id: String,
    pub refund_id: String,
    pub operator: String,
    pub reason: String,
    pub amount: i64,
    pub at: String,
}

impl From<GrantRow> for GrantView {
    fn from(g: GrantRow) -> Self {
        Self {
            grant_id: g.grant_id,
            operator: g.operator,
            reason: g.reason,
            days: g.days,
            credits: g.credits,
            at: g.at,
            feature: g.feature,
            units: g.units,
        }
    }
}

impl From<RefundRow> for RefundView {
    fn from(r: RefundRow) -> Self {
        Self {
            purchase_id: r.purchase_id,
            refund_id: r.refund_id,
            operator: r.operator,
            reason: r.reason,
            amount: r.amount,
            at: r.at,
        }
    }
}

/// A cursor must be what an earlier answer gave for that list: bounded, and of its shape.
fn cursor<'a>(
    raw: &'a Option<String>,
    name: &str,
    shape: &str,
) -> Result<Option<&'a str>, AdminError> {
    match raw.as_deref().filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) if c.len() <= 300 && c.starts_with(shape) => Ok(Some(c)),
        Some(_) => Err(AdminError::InvalidRequest(format!(
            "{name}_cursor must be the {name}_next of an earlier answer"
        ))),
    }
}

/// The user an operator asked for by customer or checkout session.
pub async fn find_user(services: &Services, lookup: &UserLookup) -> Result<UserId, AdminError> {
    let table = services.table.as_ref();
    let found = match lookup {
        UserLookup::Customer(c) => customer::user_of(table, c).await?,
        UserLookup::Session(s) => checkout::owner(table, s).await?,
    };
    found.ok_or_else(|| match lookup {
        UserLookup::Customer(c) => AdminError::UnknownUser(format!("linked to customer {c}")),
        UserLookup::Session(s) => AdminError::UnknownUser(format!("recorded for checkout {s}")),
    })
}

/// One user's billing, one page of each list. A user of whom nothing is stored is
/// [`AdminError::UnknownUser`].
pub async fn user_view(
    services: &Services,
    user: &UserId,
    cursors: &UserCursors,
) -> Result<OperatorUserView, AdminError> {
    let purchases_cursor = cursor(&cursors.purchases, "purchases", "")?;
    if purchases_cursor.is_some_and(|c| !c.contains('#')) {
        return Err(AdminError::InvalidRequest(
            "purchases_cursor must be the purchases_next of an earlier answer".into(),
        ));
    }
    let grants_cursor = cursor(&cursors.grants, "grants", "GRANT#")?;
    let refunds_cursor = cursor(&cursors.refunds, "refunds", "REFUND#")?;
    let events_cursor = cursor(&cursors.events, "events", "")?;
    let table = services.table.as_ref();
    let (profile, subscriptions, purchases, grants, refunds, erased) = tokio::try_join!(
        profile::load(table, user),
        subscription::list(table, user),
        purchase::latest(table, user, USER_PAGE, purchases_cursor),
        grant::latest(table, user, USER_PAGE, grants_cursor),
        refund::page(table, user, USER_PAGE, refunds_cursor),
        erasure::load(table, user),
    )?;
    let customer = profile.as_ref().and_then(|p| p.customer_id.clone());
    let (events, events_next) =
        account_events(services, user, customer.as_deref(), events_cursor).await?;
    let nothing_stored = profile.is_none()
        && erased.is_none()
        && subscriptions.is_empty()
        && purchases.0.is_empty()
        && grants.0.is_empty()
        && events.is_empty();
    if nothing_stored
        && [purchases_cursor, grants_cursor, events_cursor]
            .iter()
            .all(Option::is_none)
    {
        return Err(AdminError::UnknownUser(format!("with id {user}")));
    }
    let account = account_view(
        user,
        &profile.unwrap_or_default(),
        &subscriptions,
        (&purchases.0, purchases.1),
        &services.config,
        services.clock.now(),
    );
    Ok(OperatorUserView {
        user_id: user.to_string(),
        account,
        stripe_customer_id: customer,
        subscriptions: subscriptions.iter().map(subscription_view).collect(),
        grants: grants.0.into_iter().map(GrantView::from).collect(),
        grants_next: grants.1,
        refunds: refunds.0.into_iter().map(RefundView::from).collect(),
        refunds_next: refunds.1,
        events,
        events_next,
        erasure: erased.map(|e| ErasureView {
            at: rfc3339(e.at),
            operator: e.operator,
            reason: e.reason,
        }),
    })
}

/// The events of the account's two ordering groups (its customer's, and its own for events
/// that named no customer), merged newest first into one page with one cursor.
async fn account_events(
    services: &Services,
    user: &UserId,
    customer: Option<&str>,
    after: Option<&str>,
) -> Result<(Vec<EventSummary>, Option<String>), AdminError> {
    let table = services.table.as_ref();
    let mut groups = vec![user_group(user.as_str())];
    groups.extend(customer.map(str::to_owned));
    let mut records = Vec::new();
    let mut a_group_has_more = false;
    for group in &groups {
        let (page, next) = event::of_account(table, group, USER_PAGE, after).await?;
        a_group_has_more |= next.is_some();
        records.extend(page);
    }
    records.sort_by(|a, b| b.cursor.cmp(&a.cursor));
    let more = records.len() > USER_PAGE || a_group_has_more;
    records.truncate(USER_PAGE);
    let next = more
        .then(|| records.last().and_then(|r| r.cursor.clone()))
        .flatten();
    Ok((records.iter().map(summary).collect(), next))
}
