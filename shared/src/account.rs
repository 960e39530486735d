//! The account read model (`GET /api/billing/account`) and the public billing status.
//!
//! `tier` is derived at read time, never stored: `paid` while a subscription keeps it
//! (`trialing`, `active`, `past_due`) or while `credit_until` is in the future.

use crate::catalog::Mode;
use crate::clock::rfc3339;
use crate::config::Config;
use crate::fulfil::TIER_KEEPING;
use crate::ids::UserId;
use crate::keys::{self, PURCHASE_PREFIX, SK, SUB_PREFIX};
use crate::runtime::Services;
use crate::store::{Item, ItemExt, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountView {
    pub user_id: String,
    pub tier: &'static str,
    pub plan_id: Option<String>,
    pub subscription: Option<SubscriptionView>,
    pub credits: CreditsView,
    pub credit_until: Option<String>,
    pub purchases: Vec<PurchaseView>,
    pub referral: ReferralView,
    /// The last invoice whose payment failed, until a later invoice is paid.
    pub payment_problem: Option<PaymentProblemView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentProblemView {
    pub invoice_id: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionView {
    pub id: String,
    pub status: String,
    pub plan_id: Option<String>,
    pub current_period_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreditsView {
    pub balance: i64,
    pub free_uses_remaining: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurchaseView {
    pub plan_id: String,
    pub session_id: String,
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

fn subscription_view(item: &Item) -> Option<SubscriptionView> {
    Some(SubscriptionView {
        id: item.str(SK)?.strip_prefix(SUB_PREFIX)?.to_owned(),
        status: item.str("status")?.to_owned(),
        plan_id: item.str("plan_id").map(str::to_owned),
        current_period_end: epoch_rfc3339(item.num("current_period_end")),
        cancel_at_period_end: item.boolean("cancel_at_period_end").unwrap_or(false),
        trial_end: epoch_rfc3339(item.num("trial_end")),
    })
}

fn purchase_view(item: &Item) -> Option<PurchaseView> {
    Some(PurchaseView {
        plan_id: item.str("plan_id")?.to_owned(),
        session_id: item.str("session_id")?.to_owned(),
        amount: item.num("amount")?,
        currency: item.str("currency")?.to_owned(),
        status: item.str("status")?.to_owned(),
        at: item.str("at")?.to_owned(),
    })
}

/// Builds the view from one partition's items. Pure, so its rules are unit-tested.
pub fn account_view(
    user: &UserId,
    items: &[Item],
    free_uses: i64,
    now: DateTime<Utc>,
) -> AccountView {
    let profile = items.iter().find(|i| i.str(SK) == Some("PROFILE"));
    let num = |name: &str| profile.and_then(|p| p.num(name));
    let text = |name: &str| profile.and_then(|p| p.str(name)).map(str::to_owned);

    // The subscription that matters: one that keeps the tier, else the latest by version.
    let subscription = items
        .iter()
        .filter(|i| i.str(SK).is_some_and(|sk| sk.starts_with(SUB_PREFIX)))
        .max_by_key(|i| {
            let keeps = i.str("status").is_some_and(|s| TIER_KEEPING.contains(&s));
            (keeps, i.str("version").unwrap_or_default().to_owned())
        });
    let sub_keeps_tier =
        subscription.is_some_and(|s| s.str("status").is_some_and(|st| TIER_KEEPING.contains(&st)));
    let credit_until = text("credit_until")
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    let credit_active = credit_until.is_some_and(|t| t > now);

    let mut purchases: Vec<PurchaseView> = items
        .iter()
        .filter(|i| i.str(SK).is_some_and(|sk| sk.starts_with(PURCHASE_PREFIX)))
        .filter_map(purchase_view)
        .collect();
    purchases.sort_by(|a, b| b.at.cmp(&a.at));

    AccountView {
        user_id: user.to_string(),
        tier: if sub_keeps_tier || credit_active {
            "paid"
        } else {
            "free"
        },
        plan_id: if sub_keeps_tier {
            subscription
                .and_then(|s| s.str("plan_id"))
                .map(str::to_owned)
        } else {
            None
        },
        subscription: subscription.and_then(subscription_view),
        credits: CreditsView {
            balance: num("credits").unwrap_or(0),
            free_uses_remaining: (free_uses - num("free_uses_used").unwrap_or(0)).max(0),
        },
        credit_until: credit_until.map(rfc3339),
        purchases,
        referral: ReferralView {
            code: text("referral_code"),
            referred_by: text("referred_by"),
            conversions: num("conversions").unwrap_or(0),
        },
        payment_problem: text("payment_problem_invoice").map(|invoice_id| PaymentProblemView {
            invoice_id,
            at: text("payment_problem_at").unwrap_or_default(),
        }),
    }
}

pub async fn account(services: &Services, user: &UserId) -> Result<AccountView, StoreError> {
    // Every account has a referral code; it is created the first time it is needed.
    crate::referral::ensure_code(services, user).await?;
    let items = services.table.query(&keys::user_pk(user), "").await?;
    Ok(account_view(
        user,
        &items,
        services.config.free_uses,
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
                (true, Some(_), _) => "checkout_session",
                (_, _, Some(_)) => "payment_link",
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
