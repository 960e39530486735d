//! The operator routes (`billing:admin` scope): recent events, replay, reconcile, grant,
//! refund.

use billing_core::edge::http::{self, ApiError, Identity};
use billing_core::edge::runtime::Services;
use billing_core::usecases::admin::{self, AdminError};
use lambda_http::{Body, Error, Request, Response};
use serde::de::DeserializeOwned;

pub const EVENTS_PATH: &str = "/api/billing/admin/events";
pub const REPLAY_PATH: &str = "/api/billing/admin/replay";
pub const RECONCILE_PATH: &str = "/api/billing/admin/reconcile";
pub const GRANT_PATH: &str = "/api/billing/admin/grant";
pub const REFUND_PATH: &str = "/api/billing/admin/refund";

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(services, &req).await))
}

fn body<T: DeserializeOwned + Default>(req: &Request) -> Result<T, ApiError> {
    let raw = req.body().as_ref();
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw)
        .map_err(|e| AdminError::InvalidRequest(format!("the body is not valid: {e}")).into())
}

fn required<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    serde_json::from_slice(req.body().as_ref())
        .map_err(|e| AdminError::InvalidRequest(format!("the body is not valid: {e}")).into())
}

async fn run(services: &Services, req: &Request) -> Result<(u16, serde_json::Value), ApiError> {
    let operator = Identity::require_admin(req)?;
    let json = |v: Result<_, AdminError>| -> Result<(u16, serde_json::Value), ApiError> {
        let value = v?;
        Ok((200, value))
    };
    match req.uri().path() {
        EVENTS_PATH => {
            let q = |name| http::query_param(req, name);
            let page = admin::list_events(
                services,
                q("state").as_deref(),
                q("limit").as_deref(),
                q("cursor").as_deref(),
            )
            .await;
            json(page.map(|p| serde_json::to_value(p).unwrap_or_default()))
        }
        REPLAY_PATH => {
            let outcome = admin::replay(services, required(req)?).await;
            json(outcome.map(|o| serde_json::to_value(o).unwrap_or_default()))
        }
        RECONCILE_PATH => {
            let outcome = admin::reconcile(services, body(req)?).await;
            json(outcome.map(|o| serde_json::to_value(o).unwrap_or_default()))
        }
        GRANT_PATH => {
            let outcome = admin::grant(services, &operator, required(req)?).await;
            json(outcome.map(|o| serde_json::to_value(o).unwrap_or_default()))
        }
        REFUND_PATH => {
            let req = serde_json::from_slice(req.body().as_ref()).map_err(|e| {
                admin::RefundError::InvalidRequest(format!("the body is not valid: {e}"))
            })?;
            let outcome = admin::refund(services, &operator, req).await?;
            Ok((200, serde_json::to_value(outcome).unwrap_or_default()))
        }
        _ => Err(ApiError::not_found()),
    }
}
