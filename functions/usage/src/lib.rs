//! `POST /api/billing/usage`: consume usage units, free uses first, then credits.

use billing_core::edge::http::{self, ApiError, Identity};
use billing_core::edge::runtime::Services;
use billing_core::usecases::usage::{self, UsageAllowed, UsageError, UsageRequest};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(services, &req).await))
}

async fn run(services: &Services, req: &Request) -> Result<(u16, UsageAllowed), ApiError> {
    let caller = Identity::from_request(req)?;
    let body: UsageRequest = serde_json::from_slice(req.body().as_ref())
        .map_err(|e| UsageError::InvalidRequest(format!("the body is not valid: {e}")))?;
    Ok((200, usage::consume(services, &caller.user, body).await?))
}
