//! `POST /api/billing/checkout`: start a Stripe Checkout Session (or a Payment Link).

use billing_core::edge::http::{self, ApiError, Identity};
use billing_core::edge::runtime::Services;
use billing_core::usecases::checkout::{self, CheckoutError, CheckoutRequest, CheckoutResponse};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(services, &req).await))
}

async fn run(services: &Services, req: &Request) -> Result<(u16, CheckoutResponse), ApiError> {
    let caller = Identity::from_request(req)?;
    let body: CheckoutRequest = serde_json::from_slice(req.body().as_ref())
        .map_err(|e| CheckoutError::InvalidBody(e.to_string()))?;
    let key = http::header(req, "idempotency-key");
    Ok((
        200,
        checkout::start_checkout(services, &caller, body, key).await?,
    ))
}
