//! The public reads a return page polls: `GET /api/billing/checkout-status` (one
//! checkout's state, from our own store only) and `GET /api/billing/status` (readiness).

use billing_core::app::Services;
use billing_core::domain::ids::SessionId;
use billing_core::inbound::http::{self, ApiError};
use billing_core::usecases::account::billing_status;
use billing_core::usecases::checkout_status::checkout_status;
use lambda_http::{Body, Error, Request, Response};

pub const CHECKOUT_STATUS_PATH: &str = "/api/billing/checkout-status";
pub const STATUS_PATH: &str = "/api/billing/status";

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(match req.uri().path() {
        STATUS_PATH => http::json(200, &billing_status(&services.config)),
        _ => http::respond(checkout(services, &req).await),
    })
}

async fn checkout(
    services: &Services,
    req: &Request,
) -> Result<(u16, serde_json::Value), ApiError> {
    let raw = http::query_param(req, "session_id")
        .ok_or_else(|| ApiError::bad_request("invalid_session_id", "session_id is required"))?;
    let session = SessionId::parse(&raw)?;
    let view = checkout_status(services, &session).await?;
    Ok((200, serde_json::to_value(view).unwrap_or_default()))
}
