//! `POST /api/billing/admin/refund`: an operator refunds a purchase through Stripe, with
//! an audit item. The credits are taken back by `charge.refunded` when Stripe sends it, by
//! the same rule as a refund made in the dashboard, so there is one clawback path.

use crate::app::Services;
use crate::domain::identity::Identity;
use crate::domain::ids::{PaymentIntentId, PurchaseId, SessionId, UserId};
use crate::store::StoreError;
use crate::store::records::purchase::{self, PurchaseRow};
use crate::store::records::{checkout, payment_intent, refund};
use crate::stripe::api::{NewRefund, StripeError};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const MAX_REASON_CHARS: usize = 500;

/// A refund an operator asks for, parsed where the request enters (`inbound::commands`).
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub purchase: NamedPurchase,
    pub amount: Option<i64>,
    pub reason: String,
}

/// The purchase a refund names: by the Checkout Session that sold it, or by its
/// PaymentIntent (a purchase made with Stripe Elements, or a session's payment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedPurchase {
    Session(SessionId),
    PaymentIntent(PaymentIntentId),
}

impl std::fmt::Display for NamedPurchase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamedPurchase::Session(s) => s.fmt(f),
            NamedPurchase::PaymentIntent(pi) => pi.fmt(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundOutcome {
    pub refund_id: String,
    pub amount: i64,
    pub currency: String,
    /// What is left to refund after this one.
    pub remaining: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("no paid purchase is recorded for {0}")]
    UnknownPurchase(String),
    #[error("purchase {0} is already fully refunded")]
    AlreadyRefunded(String),
    #[error("the amount is above the {remaining} that remains to refund")]
    AmountTooLarge { remaining: i64 },
    #[error("Stripe is not configured")]
    StripeUnavailable,
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The purchase the request names, and its account.
async fn find(
    services: &Services,
    req: &RefundRequest,
) -> Result<(UserId, PurchaseId, PurchaseRow), RefundError> {
    let table = services.table.as_ref();
    let named = match &req.purchase {
        NamedPurchase::Session(sid) => checkout::owner(table, sid)
            .await?
            .map(|user| (user, PurchaseId::from(sid))),
        NamedPurchase::PaymentIntent(pi) => payment_intent::purchase_of(table, pi).await?,
    };
    let unknown = || RefundError::UnknownPurchase(req.purchase.to_string());
    let (user, id) = named.ok_or_else(unknown)?;
    let row = purchase::load(table, &user, &id)
        .await?
        .ok_or_else(unknown)?;
    if row.status == "failed" || row.payment_intent.is_none() {
        return Err(unknown());
    }
    Ok((user, id, row))
}

/// One Stripe idempotency key per purchase and amount: a retried click refunds once.
fn idempotency_key(purchase: &PurchaseId, amount: i64) -> String {
    let digest = Sha256::digest(format!("refund\n{purchase}\n{amount}").as_bytes());
    format!("refund-{}", hex::encode(&digest[..16]))
}

pub async fn refund(
    services: &Services,
    operator: &Identity,
    req: RefundRequest,
) -> Result<RefundOutcome, RefundError> {
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(RefundError::InvalidRequest(format!(
            "reason must be 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    if req.amount.is_some_and(|a| a < 1) {
        return Err(RefundError::InvalidRequest(
            "amount must be at least 1".into(),
        ));
    }
    let (user, id, row) = find(services, &req).await?;
    let table = services.table.as_ref();
    let ours = refund::total(table, &user, &id).await?;
    let remaining = (row.amount - row.amount_refunded.max(ours)).max(0);
    if remaining == 0 {
        return Err(RefundError::AlreadyRefunded(id.to_string()));
    }
    let amount = req.amount.unwrap_or(remaining);
    if amount > remaining {
        return Err(RefundError::AmountTooLarge { remaining });
    }
    let stripe = services
        .stripe
        .as_ref()
        .ok_or(RefundError::StripeUnavailable)?;
    let pi = row.payment_intent.as_deref().unwrap_or_default();
    let asked = NewRefund {
        payment_intent: pi,
        amount,
        purchase: id.as_str(),
        operator: &operator.user,
    };
    let refunded = stripe
        .refund_purchase(&asked, &idempotency_key(&id, amount))
        .await?;
    let now = services.clock.now();
    let audit = refund::Audit {
        refund_id: &refunded.id,
        operator: &operator.user,
        reason,
        amount: refunded.amount,
        at: now,
    };
    match table.apply(refund::audit(&user, &id, &audit)).await {
        // The same Stripe refund (a retried click): recorded already.
        Ok(()) | Err(StoreError::ConditionFailed) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(purchase = %id, refund = %refunded.id, amount = refunded.amount, "operator refund");
    Ok(RefundOutcome {
        refund_id: refunded.id,
        amount: refunded.amount,
        currency: row.currency,
        remaining: (remaining - refunded.amount).max(0),
    })
}
