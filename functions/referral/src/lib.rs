//! `POST /api/billing/referral`: claim someone's referral code before the first payment.

use billing_core::app::Services;
use billing_core::inbound::http::{self, ApiError, Identity};
use billing_core::usecases::referral::{self, ClaimOutcome, ClaimRequest, ReferralError};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    Ok(http::respond(run(services, &req).await))
}

async fn run(services: &Services, req: &Request) -> Result<(u16, ClaimOutcome), ApiError> {
    let caller = Identity::from_request(req)?;
    let body: ClaimRequest = serde_json::from_slice(req.body().as_ref())
        .map_err(|e| ReferralError::InvalidRequest(e.to_string()))?;
    Ok((200, referral::claim(services, &caller.user, body).await?))
}
