//! The operator routes (`billing:admin` scope): recent events, replay, reconcile, grant,
//! refund, one user's billing, the lookup of a user by customer or checkout, and erasure.

use billing_core::app::Services;
use billing_core::domain::ids::{CustomerId, SessionId, UserId};
use billing_core::inbound::commands;
use billing_core::inbound::http::{self, ApiError, Identity};
use billing_core::usecases::admin::{self, AdminError, UserCursors, UserLookup};
use lambda_http::{Body, Error, Request, Response};
use serde::de::DeserializeOwned;

pub const EVENTS_PATH: &str = "/api/billing/admin/events";
pub const REPLAY_PATH: &str = "/api/billing/admin/replay";
pub const RECONCILE_PATH: &str = "/api/billing/admin/reconcile";
pub const GRANT_PATH: &str = "/api/billing/admin/grant";
pub const REFUND_PATH: &str = "/api/billing/admin/refund";
/// `GET …/users?customer_id=|session_id=`; `GET …/users/{user_id}` is the same view by id.
pub const USERS_PATH: &str = "/api/billing/admin/users";
/// `POST …/users/{user_id}/erase`: erases the user's personal data.
pub const ERASE_SUFFIX: &str = "/erase";

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(services, &req).await))
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
    if let Some(raw) = billing_core::inbound::request::path_param(req, "user_id") {
        let user = UserId::parse(&raw).map_err(|_| invalid_user_id())?;
        // The only POST route with a user in its path; a user named `erase` reads as one.
        if req.method() == lambda_http::http::Method::POST
            && req.uri().path().ends_with(ERASE_SUFFIX)
        {
            let outcome = admin::erase(services, &operator, &user, required(req)?).await;
            return json(outcome.map(|o| serde_json::to_value(o).unwrap_or_default()));
        }
        return json(user_view(services, &user, req).await);
    }
    match req.uri().path() {
        USERS_PATH => {
            let lookup = lookup(req)?;
            let user = admin::find_user(services, &lookup).await?;
            json(user_view(services, &user, req).await)
        }
        EVENTS_PATH => {
            let q = |name| http::query_param(req, name);
            let query = commands::list_events(q("state"), q("limit"), q("cursor"))?;
            let page = admin::list_events(services, &query).await;
            json(page.map(|p| serde_json::to_value(p).unwrap_or_default()))
        }
        REPLAY_PATH => {
            let outcome = admin::replay(services, commands::replay(req.body().as_ref())?).await;
            json(outcome.map(|o| serde_json::to_value(o).unwrap_or_default()))
        }
        RECONCILE_PATH => {
            let outcome =
                admin::reconcile(services, commands::reconcile(req.body().as_ref())?).await;
            json(outcome.map(|o| serde_json::to_value(o).unwrap_or_default()))
        }
        GRANT_PATH => {
            let wanted = commands::grant(req.body().as_ref())?;
            let outcome = admin::grant(services, &operator, wanted).await;
            json(outcome.map(|o| serde_json::to_value(o).unwrap_or_default()))
        }
        REFUND_PATH => {
            let wanted = commands::refund(req.body().as_ref())?;
            let outcome = admin::refund(services, &operator, wanted).await?;
            Ok((200, serde_json::to_value(outcome).unwrap_or_default()))
        }
        _ => Err(ApiError::not_found()),
    }
}

fn invalid_user_id() -> ApiError {
    ApiError::bad_request(
        "invalid_user_id",
        "user_id must be 1 to 128 characters of letters, digits and _-.@|:+",
    )
}

/// `?customer_id=cus_…` or `?session_id=cs_…`, exactly one.
fn lookup(req: &Request) -> Result<UserLookup, ApiError> {
    let q = |name| http::query_param(req, name).filter(|v| !v.is_empty());
    match (q("customer_id"), q("session_id")) {
        (Some(c), None) => Ok(UserLookup::Customer(CustomerId::parse(&c)?)),
        (None, Some(s)) => Ok(UserLookup::Session(SessionId::parse(&s)?)),
        _ => Err(AdminError::InvalidRequest(
            "give exactly one of customer_id and session_id".into(),
        )
        .into()),
    }
}

async fn user_view(
    services: &Services,
    user: &UserId,
    req: &Request,
) -> Result<serde_json::Value, AdminError> {
    let q = |name| http::query_param(req, name);
    let cursors = UserCursors {
        purchases: q("purchases_cursor"),
        grants: q("grants_cursor"),
        refunds: q("refunds_cursor"),
        events: q("events_cursor"),
    };
    let view = admin::user_view(services, user, &cursors).await?;
    Ok(serde_json::to_value(view).unwrap_or_default())
}
