//! `POST /api/billing/checkout`: start a Stripe Checkout Session (or a Payment Link);
//! `POST /api/billing/purchases`: create a PaymentIntent for Stripe Elements;
//! `POST /api/billing/subscription`: switch the live subscription to another plan or seats;
//! `POST /api/billing/subscription/cancel` and `/resume`: end it at its period end, or not;
//! `GET /api/billing/subscription/preview`: what a switch would cost now;
//! `GET /api/billing/invoices`: the caller's invoices.
//! One function for all: they take the same secret and read the same account items.

use billing_core::app::Services;
use billing_core::inbound::commands;
use billing_core::inbound::http::{self, ApiError, Identity};
use billing_core::usecases::cancel::{self, LifecycleError, LifecycleRequest};
use billing_core::usecases::{checkout, invoices, preview, purchases, switch};
use lambda_http::{Body, Error, Request, Response};

pub const CHECKOUT_PATH: &str = "/api/billing/checkout";
pub const PURCHASES_PATH: &str = "/api/billing/purchases";
pub const SWITCH_PATH: &str = "/api/billing/subscription";
pub const CANCEL_PATH: &str = "/api/billing/subscription/cancel";
pub const RESUME_PATH: &str = "/api/billing/subscription/resume";
pub const PREVIEW_PATH: &str = "/api/billing/subscription/preview";
pub const INVOICES_PATH: &str = "/api/billing/invoices";

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(services, &req).await))
}

async fn run(services: &Services, req: &Request) -> Result<(u16, serde_json::Value), ApiError> {
    let caller = Identity::from_request(req)?;
    let key = http::header(req, "idempotency-key");
    let value = match req.uri().path() {
        PREVIEW_PATH => {
            let wanted = commands::preview(
                http::query_param(req, "plan_id"),
                http::query_param(req, "quantity"),
            )?;
            serde_json::to_value(preview::preview(services, &caller, wanted).await?)
        }
        INVOICES_PATH => {
            let page = commands::invoices(
                http::query_param(req, "limit"),
                http::query_param(req, "starting_after"),
            )?;
            serde_json::to_value(invoices::invoices(services, &caller, page).await?)
        }
        PURCHASES_PATH => {
            let purchase = commands::start_purchase(req.body().as_ref())?;
            let bought = purchases::start_purchase(services, &caller, purchase, key).await?;
            serde_json::to_value(bought)
        }
        SWITCH_PATH => {
            let wanted = commands::switch_plan(req.body().as_ref())?;
            let switched = switch::switch_plan(services, &caller, wanted, key).await?;
            serde_json::to_value(switched)
        }
        CANCEL_PATH => {
            lifecycle_body(req)?;
            serde_json::to_value(cancel::cancel(services, &caller).await?)
        }
        RESUME_PATH => {
            lifecycle_body(req)?;
            serde_json::to_value(cancel::resume(services, &caller).await?)
        }
        _ => {
            let wanted = commands::start_checkout(req.body().as_ref())?;
            let started = checkout::start_checkout(services, &caller, wanted, key).await?;
            serde_json::to_value(started)
        }
    };
    Ok((200, value.unwrap_or_default()))
}

/// Cancel and resume take no parameters: an empty body or `{}`; anything else (a
/// subscription or user named by the caller) is refused.
fn lifecycle_body(req: &Request) -> Result<LifecycleRequest, LifecycleError> {
    let raw = req.body().as_ref();
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(LifecycleRequest::default());
    }
    serde_json::from_slice(raw).map_err(|e| LifecycleError::InvalidBody(e.to_string()))
}
