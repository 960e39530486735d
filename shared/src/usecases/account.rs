//! The account read model (`GET /api/billing/account`) and the public billing status
//! (`docs/api.md`, "GET /api/billing/account" and "GET /api/billing/status").
//!
//! `tier` is derived at read time, never stored: `paid` while a subscription keeps it
//! (`trialing`, `active`, `past_due`) or while `credit_until` is in the future.
//!
//! A read costs what it shows, however long the account's history: the profile, the
//! subscriptions and one page of the latest purchases (from their index), never the usage
//! idempotency records or the grant audit items that share the account's partition.

use crate::app::Services;
use crate::app::config::Config;
use crate::domain::allowance::FeatureView;
use crate::domain::catalog::Mode;
use crate::domain::clock::rfc3339;
use crate::domain::entitlement::Tier;
use crate::domain::ids::UserId;
use crate::store::StoreError;
use crate::store::records::profile::{self, Profile};
use crate::store::records::purchase::{self, PurchaseRow};
use crate::store::records::subscription::{self, SubscriptionRow};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// How many purchases one account read shows.
pub const PURCHASES_PAGE: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("purchases_cursor must be the purchases_next of an earlier answer")]
    InvalidCursor,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountView {
    pub user_id: String,
    pub tier: Tier,
    pub plan_id: Option<String>,
    pub subscription: Option<SubscriptionView>,
    pub credits: CreditsView,
    pub credit_until: Option<String>,
    /// The latest purchases, newest first, [`PURCHASES_PAGE`] at most.
    pub purchases: Vec<PurchaseView>,
    /// Pass as `purchases_cursor` for older purchases; null when there are none.
    pub purchases_next: Option<String>,
    pub referral: ReferralView,
    /// The last invoice whose payment failed, until a later invoice is paid.
    pub payment_problem: Option<PaymentProblemView>,
    /// The account's features, as `GET /api/billing/entitlements` shows them.
    pub features: BTreeMap<String, FeatureView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentProblemView {
    /// `payment_failed` (update the payment method) or `action_required` (confirm the
    /// payment, 3-D Secure).
    pub kind: String,
    pub invoice_id: String,
    /// Stripe's hosted invoice page, where the customer pays or confirms; null when Stripe
    /// gave none.
    pub invoice_url: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionView {
    pub id: String,
    pub status: String,
    pub plan_id: Option<String>,
    pub current_period_end: Option<String>,
    pub cancel_at_period_end: bool,
    /// When a scheduled cancellation ends the subscription (RFC 3339), else null.
    pub cancel_at: Option<String>,
    pub trial_end: Option<String>,
    /// Seats: 1 unless the plan is sold per seat.
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreditsView {
    pub balance: i64,
    pub free_uses_remaining: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurchaseView {
    pub plan_id: String,
    /// The Checkout Session that sold it; `null` for a purchase made with Stripe Elements.
    pub session_id: Option<String>,
    /// Set for a purchase made with Stripe Elements (keyed by its PaymentIntent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_intent_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferralView {
    pub code: Option<String>,
    pub referred_by: Option<String>,
    pub conversions: i64,
}

fn epoch_rfc3339(secs: Option<i64>) -> Option<String> {
    secs.and_then(|s| DateTime::from_timestamp(s, 0))
        .map(rfc3339)
}

/// A subscription as the account shows it (also what a plan switch answers).
pub fn subscription_view(row: &SubscriptionRow) -> SubscriptionView {
    SubscriptionView {
        id: row.id.clone(),
        status: row.status.as_str().to_owned(),
        plan_id: row.plan_id.clone(),
        current_period_end: epoch_rfc3339(row.current_period_end),
        cancel_at_period_end: row.cancel_at_period_end,
        cancel_at: epoch_rfc3339(row.cancel_at),
        trial_end: epoch_rfc3339(row.trial_end),
        quantity: row.quantity,
    }
}

fn purchase_view(row: &PurchaseRow) -> PurchaseView {
    PurchaseView {
        plan_id: row.plan_id.clone(),
        session_id: Some(row.session_id.clone()).filter(|s| s.starts_with("cs_")),
        payment_intent_id: Some(row.session_id.clone()).filter(|s| s.starts_with("pi_")),
        amount: row.amount,
        currency: row.currency.clone(),
        status: row.status.as_str().to_owned(),
        at: row.at.clone(),
    }
}

/// Builds the view from the account's records. Pure, so its rules are unit-tested.
pub fn account_view(
    user: &UserId,
    profile: &Profile,
    subscriptions: &[SubscriptionRow],
    purchases: (&[PurchaseRow], Option<String>),
    config: &Config,
    now: DateTime<Utc>,
) -> AccountView {
    let features = crate::usecases::features::Account::from_rows(profile.clone(), subscriptions)
        .features(&config.catalog, now)
        .all();
    // The seed's free uses are the `usage` feature's allowance.
    let free_uses_remaining = features
        .get(crate::domain::features::USAGE)
        .and_then(|f| f.remaining)
        .unwrap_or(0);
    // The subscription that matters: one that keeps the tier, else the latest by version.
    let subscription = subscriptions
        .iter()
        .max_by_key(|s| (s.status.keeps_tier(), s.version.clone()));
    let sub_keeps_tier = subscription.is_some_and(|s| s.status.keeps_tier());
    let credit_until = profile.credit_until_time();
    let credit_active = credit_until.is_some_and(|t| t > now);

    AccountView {
        user_id: user.to_string(),
        tier: if sub_keeps_tier || credit_active {
            Tier::Paid
        } else {
            Tier::Free
        },
        plan_id: subscription
            .filter(|_| sub_keeps_tier)
            .and_then(|s| s.plan_id.clone()),
        subscription: subscription.map(subscription_view),
        credits: CreditsView {
            balance: profile.balance(),
            free_uses_remaining,
        },
        credit_until: credit_until.map(rfc3339),
        purchases: purchases.0.iter().map(purchase_view).collect(),
        purchases_next: purchases.1,
        referral: ReferralView {
            code: profile.referral_code.clone(),
            referred_by: profile.referred_by.clone(),
            conversions: profile.conversions.unwrap_or(0),
        },
        payment_problem: profile.payment_problem_invoice.clone().map(|invoice_id| {
            PaymentProblemView {
                kind: profile
                    .payment_problem_kind
                    .clone()
                    .unwrap_or_else(|| "payment_failed".into()),
                invoice_id,
                invoice_url: profile.payment_problem_url.clone(),
                at: profile.payment_problem_at.clone().unwrap_or_default(),
            }
        }),
        features,
    }
}

/// The account with its latest purchases.
pub async fn account(services: &Services, user: &UserId) -> Result<AccountView, AccountError> {
    account_page(services, user, None).await
}

/// The account with the page of purchases after `purchases_cursor`.
pub async fn account_page(
    services: &Services,
    user: &UserId,
    purchases_cursor: Option<&str>,
) -> Result<AccountView, AccountError> {
    let cursor = purchases_cursor.filter(|c| !c.is_empty());
    // A cursor is `<at>#<session>` as the purchase index sorts it.
    if cursor.is_some_and(|c| c.len() > 300 || !c.contains('#')) {
        return Err(AccountError::InvalidCursor);
    }
    let table = services.table.as_ref();
    let (mut profile, subscriptions, purchases) = tokio::try_join!(
        profile::load(table, user),
        subscription::list(table, user),
        purchase::latest(table, user, PURCHASES_PAGE, cursor),
    )?;
    // Every account has a referral code; it is created the first time it is needed.
    if profile.as_ref().is_none_or(|p| p.referral_code.is_none()) {
        let code = crate::usecases::referral::ensure_code(services, user).await?;
        profile.get_or_insert_with(Profile::default).referral_code = Some(code);
    }
    Ok(account_view(
        user,
        &profile.unwrap_or_default(),
        &subscriptions,
        (&purchases.0, purchases.1),
        &services.config,
        services.clock.now(),
    ))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanStatus {
    pub name: String,
    pub mode: Mode,
    pub amount: i64,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    pub available: bool,
    pub via: &'static str,
    /// Shown only for a plan sold per seat, with the most seats it sells.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub per_seat: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_quantity: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BillingStatus {
    pub stripe_configured: bool,
    pub checkout_enabled: bool,
    pub portal_enabled: bool,
    pub plans: BTreeMap<String, PlanStatus>,
}

/// `GET /api/billing/status`: what can be bought and how, with no id, key or link target.
pub fn billing_status(config: &Config) -> BillingStatus {
    let configured = config.stripe_configured();
    let plans: BTreeMap<String, PlanStatus> = config
        .catalog
        .plans()
        .map(|p| {
            let via = match (configured, &p.price_id, &p.payment_link) {
                (true, Some(_), _) if p.checkout_ready() => "checkout_session",
                // A link is only handed out with a reference the stack can sign.
                (_, _, Some(_)) if !config.reference_secrets.is_empty() => "payment_link",
                _ => "manual",
            };
            let status = PlanStatus {
                name: p.name.clone(),
                mode: p.mode,
                amount: p.amount,
                currency: p.currency.clone(),
                interval: p.interval.clone(),
                available: via != "manual",
                via,
                per_seat: p.per_seat,
                max_quantity: p.per_seat.then(|| p.max_seats()),
            };
            (p.id.to_string(), status)
        })
        .collect();
    BillingStatus {
        stripe_configured: configured,
        checkout_enabled: plans.values().any(|p| p.available),
        portal_enabled: configured,
        plans,
    }
}
