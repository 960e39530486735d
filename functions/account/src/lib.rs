//! `GET /api/billing/account[?purchases_cursor=]`: the caller's own entitlements;
//! `GET /api/billing/users/{user_id}/account`: the same for the app's server (`billing:service`).

use billing_core::app::Services;
use billing_core::inbound::http::{self, ApiError, Identity};
use billing_core::usecases::account;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(services, &req).await))
}

async fn run(services: &Services, req: &Request) -> Result<(u16, account::AccountView), ApiError> {
    let caller = Identity::subject(req)?;
    let cursor = http::query_param(req, "purchases_cursor");
    let view = account::account_page(services, &caller.user, cursor.as_deref()).await?;
    Ok((200, view))
}
