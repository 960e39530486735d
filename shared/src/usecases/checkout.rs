//! Taking money: Checkout Sessions (or a Payment Link) and Billing Portal sessions
//! (`docs/api.md`, "POST /api/billing/checkout" and "POST /api/billing/portal").
//!
//! Fulfilment never happens here: a checkout only records that it started
//! (`processing`), and the webhook's completion event grants the plan.

use crate::app::Services;
use crate::domain::catalog::{Mode, Plan, SeatsError};
use crate::domain::checkout_state::CheckoutState;
use crate::domain::identity::Identity;
use crate::domain::ids::{PlanId, SessionId};
use crate::domain::reference;
use crate::store::StoreError;
use crate::store::records::{checkout, profile, subscription};
use crate::stripe::api::{NewCheckout, SessionStatus, StripeApi, StripeError, new_idempotency_key};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const DEFAULT_SUCCESS_PATH: &str = "/billing/success";
pub const DEFAULT_CANCEL_PATH: &str = "/billing/cancel";
pub const DEFAULT_RETURN_PATH: &str = "/billing";
pub const MAX_QUANTITY: i64 = 100;

/// A checkout the caller asks for, parsed where the request enters (`inbound::commands`).
#[derive(Debug, Clone)]
pub struct StartCheckout {
    pub plan: PlanId,
    pub quantity: Option<i64>,
    pub success_path: Option<String>,
    pub cancel_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckoutResponse {
    pub url: String,
    pub session_id: Option<String>,
    pub via: &'static str,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalRequest {
    #[serde(default)]
    pub return_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortalResponse {
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("the request body is not valid: {0}")]
    InvalidBody(String),
    #[error("there is no plan {0:?}")]
    UnknownPlan(String),
    #[error("quantity must be 1 to {MAX_QUANTITY}, and 1 for this plan")]
    InvalidQuantity,
    #[error(transparent)]
    Seats(#[from] SeatsError),
    #[error("redirect paths must be relative: start with a single '/', no scheme, no '//'")]
    InvalidRedirect,
    #[error("you already hold an active subscription to {0}")]
    AlreadySubscribed(String),
    #[error(
        "you already hold a live subscription to {live}; switch it to {wanted} with {}",
        crate::usecases::switch::SWITCH_ROUTE
    )]
    OtherPlanLive { live: String, wanted: String },
    #[error("online payment is not available for {0}")]
    Unavailable(String),
    #[error("there is no Stripe customer for this account yet")]
    NoCustomer,
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A redirect path the caller may choose: relative to `PUBLIC_BASE_URL`, one leading `/`,
/// no scheme, no backslash or control character, so no redirect can leave our origin.
pub fn relative_path(raw: Option<&str>, default: &str) -> Result<String, CheckoutError> {
    let path = raw.unwrap_or(default);
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains("://")
        && !path.contains('\\')
        && path.len() <= 512
        && !path.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(path.to_owned())
    } else {
        Err(CheckoutError::InvalidRedirect)
    }
}

/// The idempotency key for one checkout: derived from the caller's own key when they send
/// one (so their retry returns the same session), else fresh for this call.
fn idempotency_key(user: &str, caller_key: Option<&str>) -> String {
    match caller_key.filter(|k| !k.is_empty() && k.len() <= 255) {
        Some(k) => {
            let digest = Sha256::digest(format!("{user}\n{k}").as_bytes());
            format!("checkout-{}", hex::encode(&digest[..16]))
        }
        None => new_idempotency_key(),
    }
}

/// Refuses a subscription checkout while the caller holds a live subscription (the same
/// plan, or another one: that is a switch, not a second subscription billed beside it), and
/// says whether the account has ever had a subscription (trialing or paid, even one
/// canceled since): then it gets no new trial.
async fn subscription_history(
    services: &Services,
    caller: &Identity,
    plan: &Plan,
) -> Result<bool, CheckoutError> {
    let subs = subscription::list(services.table.as_ref(), &caller.user).await?;
    if let Some(live) = subs.iter().find(|s| s.status.keeps_tier()) {
        let live_plan = live.plan_id.as_deref().unwrap_or("a plan");
        return Err(if live_plan == plan.id.as_str() {
            CheckoutError::AlreadySubscribed(plan.id.to_string())
        } else {
            CheckoutError::OtherPlanLive {
                live: live_plan.to_owned(),
                wanted: plan.id.to_string(),
            }
        });
    }
    Ok(!subs.is_empty())
}

/// Closes the account's open subscription checkout before a new one is created, so that
/// two tabs (two plans, or one plan twice) can never both be paid: Stripe expires the open
/// session, which can then no longer be paid. A session Stripe says is `complete` (its
/// webhook not applied yet), or one we saw paid while the account has no subscription yet,
/// means the account is subscribing already: 409. A retry of the same request (the same
/// Stripe key, so the same session) closes nothing.
async fn close_open_subscription_checkout(
    services: &Services,
    stripe: &dyn StripeApi,
    caller: &Identity,
    plan: &Plan,
    stripe_key: &str,
    had_subscription: bool,
) -> Result<(), CheckoutError> {
    let table = services.table.as_ref();
    let Some(open) = checkout::open_subscription(table, &caller.user).await? else {
        return Ok(());
    };
    if open.stripe_key == stripe_key {
        return Ok(());
    }
    let subscribing = || {
        if open.plan == plan.id.as_str() {
            CheckoutError::AlreadySubscribed(plan.id.to_string())
        } else {
            CheckoutError::OtherPlanLive {
                live: open.plan.clone(),
                wanted: plan.id.to_string(),
            }
        }
    };
    match checkout::state(table, &open.session).await? {
        CheckoutState::Processing => {}
        CheckoutState::Paid | CheckoutState::Fulfilled if !had_subscription => {
            return Err(subscribing());
        }
        _ => return Ok(()),
    }
    match stripe.expire_checkout(open.session.as_str()).await {
        Ok(()) => Ok(()),
        // Stripe has no such session (another account or mode since): nothing can pay it.
        Err(StripeError::NotFound(_)) => Ok(()),
        // Not open any more: completed (paid, webhook on its way) or expired already.
        Err(StripeError::Api { .. }) => {
            match stripe.checkout_status(open.session.as_str()).await? {
                SessionStatus::Complete => Err(subscribing()),
                SessionStatus::Open | SessionStatus::Expired => Ok(()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

async fn known_customer(
    services: &Services,
    caller: &Identity,
) -> Result<Option<String>, StoreError> {
    let found = profile::load(services.table.as_ref(), &caller.user).await?;
    Ok(found.and_then(|p| p.customer_id))
}

/// What one Checkout Session is for.
#[derive(Debug, Clone)]
pub struct SessionSpec<'a> {
    pub plan: &'a Plan,
    pub price_id: &'a str,
    pub quantity: i64,
    pub success_path: &'a str,
    pub cancel_path: &'a str,
    pub customer: Option<&'a str>,
    /// A trial is given once per account: not to one that has had a subscription.
    pub trial_allowed: bool,
}

/// The Checkout Session `spec` describes, sold to `caller`: it comes back to our own
/// origin, and a trial only where the account may have one.
fn new_checkout<'a>(
    services: &Services,
    caller: &'a Identity,
    spec: &SessionSpec<'a>,
) -> NewCheckout<'a> {
    let base = &services.config.public_base_url;
    NewCheckout {
        plan: spec.plan,
        price_id: spec.price_id,
        quantity: spec.quantity,
        user: &caller.user,
        email: caller.email.as_deref(),
        customer: spec.customer,
        success_url: format!("{base}{}", spec.success_path),
        cancel_url: format!("{base}{}", spec.cancel_path),
        trial_days: spec.plan.trial_days.filter(|_| spec.trial_allowed),
        automatic_tax: services.config.automatic_tax,
    }
}

/// `POST /api/billing/checkout`.
pub async fn start_checkout(
    services: &Services,
    caller: &Identity,
    req: StartCheckout,
    caller_key: Option<&str>,
) -> Result<CheckoutResponse, CheckoutError> {
    let plan = services
        .config
        .catalog
        .get(&req.plan)
        .ok_or_else(|| CheckoutError::UnknownPlan(req.plan.to_string()))?;
    let quantity = req.quantity.unwrap_or(1);
    if plan.mode == Mode::Subscription {
        // Seats: only a per-seat plan takes more than one, up to its max_quantity.
        plan.check_seats(quantity)?;
    } else {
        let multi_ok = matches!(plan.grant(), crate::domain::catalog::Grant::Credits(_));
        if !(1..=MAX_QUANTITY).contains(&quantity) || (quantity > 1 && !multi_ok) {
            return Err(CheckoutError::InvalidQuantity);
        }
    }
    let success_path = relative_path(req.success_path.as_deref(), DEFAULT_SUCCESS_PATH)?;
    let cancel_path = relative_path(req.cancel_path.as_deref(), DEFAULT_CANCEL_PATH)?;
    let mut had_subscription = false;
    if plan.mode == Mode::Subscription {
        had_subscription = subscription_history(services, caller, plan).await?;
    }

    let stripe = services.stripe.as_ref();
    match (stripe, &plan.price_id, &plan.payment_link) {
        (Some(stripe), Some(price), _) if plan.checkout_ready() => {
            let customer = known_customer(services, caller).await?;
            let spec = SessionSpec {
                plan,
                price_id: price,
                quantity,
                success_path: &success_path,
                cancel_path: &cancel_path,
                customer: customer.as_deref(),
                trial_allowed: !had_subscription,
            };
            let checkout = new_checkout(services, caller, &spec);
            let key = idempotency_key(caller.user.as_str(), caller_key);
            if plan.mode == Mode::Subscription {
                close_open_subscription_checkout(
                    services,
                    stripe.as_ref(),
                    caller,
                    plan,
                    &key,
                    had_subscription,
                )
                .await?;
            }
            let session = stripe.create_checkout(&checkout, &key).await?;
            let sid = SessionId::parse(&session.id).map_err(|_| {
                StripeError::Decode(format!("unexpected session id {:?}", session.id))
            })?;
            let url = session
                .url
                .ok_or_else(|| StripeError::Decode("the session has no url".into()))?;
            let now = services.clock.now();
            let started = checkout::started(&sid, &caller.user, &plan.id, quantity, now);
            if plan.mode == Mode::Subscription {
                let open = checkout::opened_subscription(&caller.user, &sid, &plan.id, &key, now);
                services.table.transact(vec![started, open]).await?;
            } else {
                services.table.apply(started).await?;
            }
            Ok(CheckoutResponse {
                url,
                session_id: Some(sid.to_string()),
                via: "checkout_session",
            })
        }
        (_, _, Some(link)) => {
            // The link carries the user, signed by the stack (and so in the alphabet
            // Payment Links keep): the completion reaches this account, and a reference
            // the buyer edits names none (`domain::reference`).
            let reference = reference::sign(&caller.user, &services.config.reference_secrets)
                .ok_or_else(|| CheckoutError::Unavailable(plan.id.to_string()))?;
            let sep = if link.contains('?') { '&' } else { '?' };
            let mut url = format!("{link}{sep}client_reference_id={reference}");
            if let Some(email) = &caller.email {
                url.push_str(&format!(
                    "&prefilled_email={}",
                    form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>()
                ));
            }
            Ok(CheckoutResponse {
                url,
                session_id: None,
                via: "payment_link",
            })
        }
        _ => Err(CheckoutError::Unavailable(plan.id.to_string())),
    }
}

/// `POST /api/billing/portal`: a Billing Portal session for the caller's own customer only.
pub async fn open_portal(
    services: &Services,
    caller: &Identity,
    req: PortalRequest,
) -> Result<PortalResponse, CheckoutError> {
    let return_path = relative_path(req.return_path.as_deref(), DEFAULT_RETURN_PATH)?;
    let stripe = services
        .stripe
        .as_ref()
        .ok_or_else(|| CheckoutError::Unavailable("the billing portal".into()))?;
    let customer = known_customer(services, caller)
        .await?
        .ok_or(CheckoutError::NoCustomer)?;
    let return_url = format!("{}{return_path}", services.config.public_base_url);
    let session = stripe
        .create_portal_session(&customer, &return_url, &new_idempotency_key())
        .await?;
    Ok(PortalResponse { url: session.url })
}
