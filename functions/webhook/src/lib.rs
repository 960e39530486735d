//! `POST /api/stripe/webhook`: verify, record once, queue, answer (API.md).

use billing_core::http::{self, ApiError};
use billing_core::intake;
use billing_core::runtime::Services;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    // lambda_http has already decoded a body API Gateway marked as base64.
    let signature = http::header(&req, "stripe-signature");
    let outcome = intake::receive(services, signature, req.body().as_ref()).await;
    Ok(http::respond(
        outcome
            .map(|o| (200, serde_json::json!({ "status": o.as_str() })))
            .map_err(ApiError::from),
    ))
}
