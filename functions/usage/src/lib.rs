//! `POST /api/billing/usage`: consume usage units, free uses first, then credits;
//! `GET /api/billing/usage?units=n`: the same decision, consuming nothing. The service routes
//! `/api/billing/users/{user_id}/usage` do both for the user the app's server names.
//!
//! Features (`docs/features.md`): `GET /api/billing/entitlements`,
//! `GET /api/billing/features/{feature_id}/check?units=n` and
//! `POST /api/billing/features/{feature_id}/usage`, and their service variants under
//! `/api/billing/users/{user_id}/`.

use billing_core::app::Services;
use billing_core::inbound::http::{self, ApiError, Identity};
use billing_core::usecases::features::{self, FeatureError, TrackRequest};
use billing_core::usecases::usage::{self, UsageError, UsageRequest};
use lambda_http::http::Method;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(services, &req).await))
}

async fn run(services: &Services, req: &Request) -> Result<(u16, serde_json::Value), ApiError> {
    let caller = Identity::subject(req)?;
    let user = &caller.user;
    let feature = billing_core::inbound::request::path_param(req, "feature_id");
    let get = req.method() == Method::GET;
    let value = match feature {
        None if req.uri().path().ends_with("/entitlements") => {
            serde_json::to_value(features::entitlements(services, user).await?)
        }
        Some(id) if get => {
            let units = match http::query_param(req, "units") {
                None => 1,
                raw => usage::parse_units(raw.as_deref())
                    .map_err(|e| FeatureError::InvalidRequest(e.to_string()))?,
            };
            serde_json::to_value(features::check(services, user, &id, units).await?)
        }
        Some(id) => {
            let body: TrackRequest = serde_json::from_slice(req.body().as_ref())
                .map_err(|e| FeatureError::InvalidRequest(format!("the body is not valid: {e}")))?;
            serde_json::to_value(features::track(services, user, &id, body).await?)
        }
        None if get => {
            let units = usage::parse_units(http::query_param(req, "units").as_deref())?;
            serde_json::to_value(usage::check(services, user, units).await?)
        }
        None => {
            let body: UsageRequest = serde_json::from_slice(req.body().as_ref())
                .map_err(|e| UsageError::InvalidRequest(format!("the body is not valid: {e}")))?;
            serde_json::to_value(usage::consume(services, user, body).await?)
        }
    };
    Ok((200, value.unwrap_or_default()))
}
