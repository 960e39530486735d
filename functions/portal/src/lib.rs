//! `POST /api/billing/portal`: a Billing Portal session for the caller's own customer.

use billing_core::app::Services;
use billing_core::inbound::http::{self, ApiError, Identity};
use billing_core::usecases::checkout::{self, CheckoutError, PortalRequest, PortalResponse};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(services, &req).await))
}

async fn run(services: &Services, req: &Request) -> Result<(u16, PortalResponse), ApiError> {
    let caller = Identity::from_request(req)?;
    let raw = req.body().as_ref();
    let body: PortalRequest = if raw.iter().all(u8::is_ascii_whitespace) {
        PortalRequest::default()
    } else {
        serde_json::from_slice(raw).map_err(|e| CheckoutError::InvalidBody(e.to_string()))?
    };
    Ok((200, checkout::open_portal(services, &caller, body).await?))
}
