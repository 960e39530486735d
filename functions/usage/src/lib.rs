//! `POST /api/billing/usage`: consume usage units, free uses first, then credits;
//! `GET /api/billing/usage?units=n`: the same decision, consuming nothing. The service routes
//! `/api/billing/users/{user_id}/usage` do both for the user the app's server names.

use billing_core::edge::http::{self, ApiError, Identity};
use billing_core::edge::runtime::Services;
use billing_core::usecases::usage::{self, UsageError, UsageRequest};
use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(services, &req).await))
}

async fn run(services: &Services, req: &Request) -> Result<(u16, serde_json::Value), ApiError> {
    let caller = Identity::subject(req)?;
    let value = if req.method() == Method::GET {
        let units = usage::parse_units(http::query_param(req, "units").as_deref())?;
        serde_json::to_value(usage::check(services, &caller.user, units).await?)
    } else {
        let body: UsageRequest = serde_json::from_slice(req.body().as_ref())
            .map_err(|e| UsageError::InvalidRequest(format!("the body is not valid: {e}")))?;
        serde_json::to_value(usage::consume(services, &caller.user, body).await?)
    };
    Ok((200, value.unwrap_or_default()))
}
