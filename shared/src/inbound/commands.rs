//! Requests parsed into commands where they enter: a body or query as the caller sent it
//! (the wire shape, private here) becomes the use case's command, whose ids are already
//! typed. A use case never sees a raw id string.
//!
//! A plan id that is not even well formed names no plan: it is refused here with the use
//! case's own "no plan" error (400 `unknown_plan`, `there is no plan "…"`), the answer a
//! well-formed id the catalog does not hold gets from the use case, so the contract sees one
//! error for both.

use crate::domain::ids::{
    EventId, InvalidId, InvoiceId, PaymentIntentId, PlanId, SessionId, UserId,
};
use crate::usecases::admin::{
    AdminError, DEFAULT_LIMIT, EventsQuery, GrantRequest, LISTED_STATES, MAX_LIMIT, NamedPurchase,
    ReconcileRequest, RefundError, RefundRequest, ReplayRequest,
};
use crate::usecases::checkout::{CheckoutError, StartCheckout};
use crate::usecases::invoices::{InvoicesError, InvoicesPage, page_size};
use crate::usecases::purchases::{BuyerAddress, PurchaseError, StartPurchase};
use crate::usecases::switch::{SwitchError, SwitchPlan};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// `POST /api/billing/checkout`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    plan_id: String,
    #[serde(default)]
    quantity: Option<i64>,
    #[serde(default)]
    success_path: Option<String>,
    #[serde(default)]
    cancel_path: Option<String>,
}

pub fn start_checkout(body: &[u8]) -> Result<StartCheckout, CheckoutError> {
    let b: CheckoutBody =
        serde_json::from_slice(body).map_err(|e| CheckoutError::InvalidBody(e.to_string()))?;
    Ok(StartCheckout {
        plan: PlanId::parse(&b.plan_id).map_err(|_| CheckoutError::UnknownPlan(b.plan_id))?,
        quantity: b.quantity,
        success_path: b.success_path,
        cancel_path: b.cancel_path,
    })
}

/// `POST /api/billing/purchases`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurchaseBody {
    plan_id: String,
    #[serde(default)]
    quantity: Option<i64>,
    #[serde(default)]
    address: Option<BuyerAddress>,
}

pub fn start_purchase(body: &[u8]) -> Result<StartPurchase, PurchaseError> {
    let b: PurchaseBody =
        serde_json::from_slice(body).map_err(|e| PurchaseError::InvalidBody(e.to_string()))?;
    Ok(StartPurchase {
        plan: PlanId::parse(&b.plan_id).map_err(|_| PurchaseError::UnknownPlan(b.plan_id))?,
        quantity: b.quantity,
        address: b.address,
    })
}

/// `POST /api/billing/subscription`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    #[serde(default)]
    plan_id: Option<String>,
    #[serde(default)]
    quantity: Option<i64>,
}

pub fn switch_plan(body: &[u8]) -> Result<SwitchPlan, SwitchError> {
    let b: SwitchBody =
        serde_json::from_slice(body).map_err(|e| SwitchError::InvalidBody(e.to_string()))?;
    Ok(SwitchPlan {
        plan: b.plan_id.map(switch_target).transpose()?,
        quantity: b.quantity,
    })
}

/// `GET /api/billing/subscription/preview?plan_id=&quantity=`: the switch's fields, as text.
pub fn preview(
    plan_id: Option<String>,
    quantity: Option<String>,
) -> Result<SwitchPlan, SwitchError> {
    let quantity = quantity
        .map(|q| {
            q.parse::<i64>()
                .map_err(|_| SwitchError::InvalidBody("quantity must be a whole number".into()))
        })
        .transpose()?;
    Ok(SwitchPlan {
        plan: plan_id.map(switch_target).transpose()?,
        quantity,
    })
}

fn switch_target(raw: String) -> Result<PlanId, SwitchError> {
    PlanId::parse(&raw).map_err(|_| SwitchError::UnknownPlan(raw))
}

/// `GET /api/billing/invoices?limit=&starting_after=`.
pub fn invoices(
    limit: Option<String>,
    starting_after: Option<String>,
) -> Result<InvoicesPage, InvoicesError> {
    let limit = page_size(limit.as_deref())?;
    let starting_after = starting_after
        .map(|raw| {
            InvoiceId::parse(&raw).map_err(|_| {
                InvoicesError::InvalidRequest(
                    "starting_after must be the id of an invoice of an earlier page".into(),
                )
            })
        })
        .transpose()?;
    Ok(InvoicesPage {
        limit,
        starting_after,
    })
}

/// An operator's body that does not parse: 400 `invalid_request`, as every admin route.
fn admin_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body)
        .map_err(|e| AdminError::InvalidRequest(format!("the body is not valid: {e}")))
}

/// `POST /api/billing/admin/replay`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    event_id: String,
}

pub fn replay(body: &[u8]) -> Result<ReplayRequest, AdminError> {
    let b: ReplayBody = admin_body(body)?;
    Ok(ReplayRequest {
        event: EventId::parse(&b.event_id).map_err(invalid_id)?,
    })
}

/// `POST /api/billing/admin/grant`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    user_id: String,
    #[serde(default)]
    days: Option<i64>,
    #[serde(default)]
    credits: Option<i64>,
    reason: String,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    units: Option<i64>,
}

pub fn grant(body: &[u8]) -> Result<GrantRequest, AdminError> {
    let b: GrantBody = admin_body(body)?;
    Ok(GrantRequest {
        user: UserId::parse(&b.user_id).map_err(invalid_id)?,
        days: b.days,
        credits: b.credits,
        reason: b.reason,
        idempotency_key: b.idempotency_key,
        feature: b.feature,
        units: b.units,
    })
}

/// `POST /api/billing/admin/refund`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    payment_intent_id: Option<String>,
    #[serde(default)]
    amount: Option<i64>,
    reason: String,
}

pub fn refund(body: &[u8]) -> Result<RefundRequest, RefundError> {
    let b: RefundBody = serde_json::from_slice(body)
        .map_err(|e| RefundError::InvalidRequest(format!("the body is not valid: {e}")))?;
    let invalid = |e: InvalidId| RefundError::InvalidRequest(e.to_string());
    let purchase = match (b.session_id, b.payment_intent_id) {
        (Some(s), None) => NamedPurchase::Session(SessionId::parse(&s).map_err(invalid)?),
        (None, Some(p)) => {
            NamedPurchase::PaymentIntent(PaymentIntentId::parse(&p).map_err(invalid)?)
        }
        _ => {
            return Err(RefundError::InvalidRequest(
                "name the purchase by exactly one of session_id and payment_intent_id".into(),
            ));
        }
    };
    Ok(RefundRequest {
        purchase,
        amount: b.amount,
        reason: b.reason,
    })
}

/// `GET /api/billing/admin/events?state=&limit=&cursor=`: an empty parameter is an absent one.
pub fn list_events(
    state: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
) -> Result<EventsQuery, AdminError> {
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let state = match given(state) {
        None => None,
        Some(s) => Some(
            LISTED_STATES
                .iter()
                .copied()
                .find(|listed| *listed == s)
                .ok_or_else(|| {
                    AdminError::InvalidRequest(format!(
                        "state must be one of {LISTED_STATES:?}, not {s:?}"
                    ))
                })?,
        ),
    };
    let limit = match given(limit) {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| AdminError::InvalidRequest(format!("limit must be 1 to {MAX_LIMIT}")))?,
    };
    Ok(EventsQuery {
        state,
        limit,
        cursor: given(cursor),
    })
}

/// `POST /api/billing/admin/reconcile`'s body (empty: the last 30 days).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileBody {
    /// RFC 3339 or Unix seconds.
    #[serde(default)]
    since: Option<serde_json::Value>,
    /// RFC 3339 or Unix seconds.
    #[serde(default)]
    until: Option<serde_json::Value>,
    #[serde(default)]
    cursor: Option<String>,
}

pub fn reconcile(body: &[u8]) -> Result<ReconcileRequest, AdminError> {
    let b: ReconcileBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReconcileBody::default()
    } else {
        admin_body(body)?
    };
    Ok(ReconcileRequest {
        since: time(b.since, "since")?,
        until: time(b.until, "until")?,
        cursor: b.cursor.filter(|c| !c.is_empty()),
    })
}

/// A time an operator may write as RFC 3339 or as Unix seconds.
fn time(raw: Option<serde_json::Value>, name: &str) -> Result<Option<DateTime<Utc>>, AdminError> {
    let invalid = || AdminError::InvalidRequest(format!("{name} must be RFC 3339 or Unix seconds"));
    match raw {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .map(Some)
            .ok_or_else(invalid),
        Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(&s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

/// A malformed id in an operator's body: `invalid_request`, naming the kind of id.
fn invalid_id(e: InvalidId) -> AdminError {
    AdminError::InvalidRequest(e.to_string())
}
