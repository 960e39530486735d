//! The HTTP edge shared by every function: identity from the authorizer's claims, JSON
//! responses, and the one place where an error becomes a status and a public message.

use crate::domain::catalog::SeatsError;
pub use crate::domain::identity::Identity;
use crate::domain::ids::InvalidId;
use crate::store::StoreError;
use crate::stripe::api::StripeError;
use crate::stripe::signature::SignatureError;
use crate::usecases::account::AccountError;
use crate::usecases::admin::{AdminError, RefundError};
use crate::usecases::cancel::LifecycleError;
use crate::usecases::checkout::CheckoutError;
use crate::usecases::features::FeatureError;
use crate::usecases::fulfil::FulfilError;
use crate::usecases::intake::IntakeError;
use crate::usecases::invoices::InvoicesError;
use crate::usecases::purchases::PurchaseError;
use crate::usecases::referral::ReferralError;
use crate::usecases::switch::SwitchError;
use crate::usecases::usage::UsageError;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

/// An error as callers see it: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Top-level fields beside `error`, e.g. a 402's `"purchase": {"plan_id"}`.
    pub extra: Vec<(&'static str, serde_json::Value)>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}
#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Vec::new(),
        }
    }
    pub fn unauthenticated() -> Self {
        Self::new(401, "unauthenticated", "a valid bearer token is required")
    }
    pub fn not_found() -> Self {
        Self::new(404, "not_found", "no such route")
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "method_not_allowed",
            "this route does not take that method",
        )
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    /// A failure of ours; the cause is logged here and never shown.
    fn internal(code: &'static str, message: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, code, "request failed");
        Self::new(503, code, message)
    }
    pub fn into_response(self) -> Response<Body> {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        let mut value = serde_json::to_value(&body).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            for (name, extra) in self.extra {
                map.insert(name.to_owned(), extra);
            }
        }
        json(self.status, &value)
    }
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        let code = match e.kind {
            "session id" => "invalid_session_id",
            "plan id" => "unknown_plan",
            _ => "invalid_request",
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(
            "store_unavailable",
            "the billing store is unavailable; try again",
            &e,
        )
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::InvalidCursor => Self::bad_request("invalid_request", e.to_string()),
            AccountError::Store(e) => e.into(),
        }
    }
}

impl From<IntakeError> for ApiError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::NotConfigured => Self::internal(
                "billing_unavailable",
                "webhook intake is not configured",
                &e,
            ),
            IntakeError::PayloadTooLarge => Self::new(413, "payload_too_large", e.to_string()),
            IntakeError::MissingSignature => Self::bad_request("missing_signature", e.to_string()),
            IntakeError::InvalidSignature(SignatureError::BadTimestamp) => Self::bad_request(
                "invalid_signature",
                "the signature's timestamp is outside the tolerance",
            ),
            IntakeError::InvalidSignature(_) => {
                Self::bad_request("invalid_signature", "no valid signature for this payload")
            }
            IntakeError::InvalidPayload(_) => {
                Self::bad_request("invalid_payload", "the body is not a Stripe event")
            }
            // 503 so that Stripe retries it until the key's mode agrees (usecases::intake).
            IntakeError::ModeMismatch { .. } => Self::new(503, "mode_mismatch", e.to_string()),
            IntakeError::InProgress => Self::new(
                409,
                "in_progress",
                "another delivery of this event is being handled; retry",
            ),
            IntakeError::Store(ref inner) => Self::internal(
                "store_unavailable",
                "the event could not be recorded; retry",
                inner,
            ),
            IntakeError::Queue(ref inner) => Self::internal(
                "queue_unavailable",
                "the event could not be queued; retry",
                inner,
            ),
        }
    }
}

impl From<FulfilError> for ApiError {
    fn from(e: FulfilError) -> Self {
        match e {
            FulfilError::Store(inner) => inner.into(),
            other => Self::new(422, "fulfilment_failed", other.to_string()),
        }
    }
}

impl From<StripeError> for ApiError {
    fn from(e: StripeError) -> Self {
        tracing::error!(error = %e, "Stripe call failed");
        // Only Stripe's user-facing message crosses to the caller, never its internal one.
        Self::new(502, "stripe_error", e.user_message())
    }
}

impl From<SeatsError> for ApiError {
    fn from(e: SeatsError) -> Self {
        match e {
            SeatsError::NotPerSeat(_) => Self::bad_request("quantity_not_allowed", e.to_string()),
            SeatsError::OutOfRange { .. } => Self::bad_request("invalid_quantity", e.to_string()),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::Seats(inner) => inner.into(),
            CheckoutError::InvalidBody(_) | CheckoutError::InvalidQuantity => {
                Self::bad_request("invalid_request", e.to_string())
            }
            CheckoutError::UnknownPlan(_) => Self::bad_request("unknown_plan", e.to_string()),
            CheckoutError::InvalidRedirect => Self::bad_request("invalid_redirect", e.to_string()),
            CheckoutError::AlreadySubscribed(_) | CheckoutError::OtherPlanLive { .. } => {
                Self::new(409, "already_subscribed", e.to_string())
            }
            CheckoutError::Unavailable(what) => Self::new(
                503,
                "billing_unavailable",
                format!(
                    "online payment is not available for {what}; request a manual invoice instead \
                     (plans paid that way show \"via\": \"manual\" in GET /api/billing/status)"
                ),
            ),
            CheckoutError::NoCustomer => Self::new(404, "no_customer", e.to_string()),
            CheckoutError::Stripe(inner) => inner.into(),
            CheckoutError::Store(inner) => inner.into(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::InvalidRequest(m) => Self::bad_request("invalid_request", m),
            AdminError::UnknownEvent(_) => Self::new(404, "unknown_event", e.to_string()),
            AdminError::UnknownUser(_) => Self::new(404, "unknown_user", e.to_string()),
            AdminError::NotReplayable(..) => Self::new(409, "not_replayable", e.to_string()),
            AdminError::StripeUnavailable => {
                Self::new(503, "billing_unavailable", "Stripe is not configured")
            }
            AdminError::Stripe(inner) => inner.into(),
            AdminError::Store(inner) => inner.into(),
        }
    }
}

impl From<PurchaseError> for ApiError {
    fn from(e: PurchaseError) -> Self {
        match e {
            PurchaseError::InvalidBody(_) | PurchaseError::InvalidQuantity => {
                Self::bad_request("invalid_request", e.to_string())
            }
            PurchaseError::UnknownPlan(_) => Self::bad_request("unknown_plan", e.to_string()),
            PurchaseError::AddressRequired => Self::bad_request("address_required", e.to_string()),
            PurchaseError::UnsupportedPlan(_) => {
                Self::bad_request("unsupported_plan", e.to_string())
            }
            PurchaseError::Unavailable(_) => Self::new(503, "billing_unavailable", e.to_string()),
            PurchaseError::Stripe(inner) => inner.into(),
            PurchaseError::Store(inner) => inner.into(),
        }
    }
}

impl From<RefundError> for ApiError {
    fn from(e: RefundError) -> Self {
        match e {
            RefundError::InvalidRequest(m) => Self::bad_request("invalid_request", m),
            RefundError::UnknownPurchase(_) => Self::new(404, "unknown_purchase", e.to_string()),
            RefundError::AlreadyRefunded(_) => Self::new(409, "already_refunded", e.to_string()),
            RefundError::AmountTooLarge { .. } => {
                Self::bad_request("invalid_amount", e.to_string())
            }
            RefundError::StripeUnavailable => {
                Self::new(503, "billing_unavailable", "Stripe is not configured")
            }
            RefundError::Stripe(inner) => inner.into(),
            RefundError::Store(inner) => inner.into(),
        }
    }
}

impl From<UsageError> for ApiError {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::InvalidRequest(m) => Self::bad_request("invalid_request", m),
            UsageError::PaymentRequired { ref plan_id, .. } => {
                let mut err = Self::new(402, "payment_required", e.to_string());
                err.extra = vec![("purchase", serde_json::json!({ "plan_id": plan_id }))];
                err
            }
            UsageError::Store(inner) => inner.into(),
        }
    }
}

impl From<FeatureError> for ApiError {
    fn from(e: FeatureError) -> Self {
        match e {
            FeatureError::InvalidRequest(m) => Self::bad_request("invalid_request", m),
            FeatureError::UnknownFeature(_) => Self::new(404, "unknown_feature", e.to_string()),
            FeatureError::NotMetered(_) => Self::bad_request("not_metered", e.to_string()),
            FeatureError::PaymentRequired { ref hints, .. } => {
                let hints = vec![
                    (
                        "upgrade",
                        serde_json::to_value(&hints.upgrade).unwrap_or_default(),
                    ),
                    (
                        "purchase",
                        serde_json::to_value(&hints.purchase).unwrap_or_default(),
                    ),
                ];
                let mut err = Self::new(402, "payment_required", e.to_string());
                err.extra = hints;
                err
            }
            FeatureError::Store(inner) => inner.into(),
        }
    }
}

impl From<SwitchError> for ApiError {
    fn from(e: SwitchError) -> Self {
        match e {
            SwitchError::InvalidBody(_) => Self::bad_request("invalid_request", e.to_string()),
            SwitchError::UnknownPlan(_) => Self::bad_request("unknown_plan", e.to_string()),
            SwitchError::NotASubscriptionPlan(_) => {
                Self::bad_request("unsupported_plan", e.to_string())
            }
            SwitchError::NoSubscription => Self::new(404, "no_subscription", e.to_string()),
            SwitchError::AlreadySubscribed(_) => {
                Self::new(409, "already_subscribed", e.to_string())
            }
            SwitchError::Seats(inner) => inner.into(),
            SwitchError::Unavailable(what) => CheckoutError::Unavailable(what).into(),
            SwitchError::Stripe(inner) => inner.into(),
            SwitchError::Store(inner) => inner.into(),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::InvalidBody(_) => Self::bad_request("invalid_request", e.to_string()),
            LifecycleError::NoSubscription => Self::new(404, "no_subscription", e.to_string()),
            LifecycleError::NotCanceling => Self::new(409, "not_canceling", e.to_string()),
            LifecycleError::Unavailable => {
                Self::new(503, "billing_unavailable", "Stripe is not configured")
            }
            LifecycleError::Stripe(inner) => inner.into(),
            LifecycleError::Store(inner) => inner.into(),
        }
    }
}

impl From<InvoicesError> for ApiError {
    fn from(e: InvoicesError) -> Self {
        match e {
            InvoicesError::InvalidRequest(m) => Self::bad_request("invalid_request", m),
            InvoicesError::Unavailable => {
                Self::new(503, "billing_unavailable", "Stripe is not configured")
            }
            InvoicesError::Stripe(inner) => inner.into(),
            InvoicesError::Store(inner) => inner.into(),
        }
    }
}

impl From<ReferralError> for ApiError {
    fn from(e: ReferralError) -> Self {
        let code = match e {
            ReferralError::InvalidRequest(_) => "invalid_request",
            ReferralError::SelfReferral => "self_referral",
            ReferralError::UnknownCode => "unknown_code",
            ReferralError::AlreadyReferred => "already_referred",
            ReferralError::AlreadyPaid => "already_paid",
            ReferralError::Store(inner) => return inner.into(),
        };
        Self::bad_request(code, e.to_string())
    }
}

/// A JSON response. Every response says `no-store`: none of them may be cached.
pub fn json<T: Serialize + ?Sized>(status: u16, body: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Body::from(bytes))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// Runs a handler body and turns its error into the contract's error response.
pub fn respond<T: Serialize>(result: Result<(u16, T), ApiError>) -> Response<Body> {
    match result {
        Ok((status, body)) => json(status, &body),
        Err(e) => e.into_response(),
    }
}

/// A header as text, if present and printable.
pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// One query string parameter.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}
