//! Who a request comes from and whom it is about: the caller's identity from the JWT
//! authorizer's claims, and the path parameters that name an account.

use crate::domain::identity::Identity;
use crate::inbound::http::ApiError;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

impl Identity {
    /// The caller of an HTTP request, from `requestContext.authorizer.jwt.claims`.
    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        let claims = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|j| &j.claims),
            _ => None,
        }
        .ok_or_else(ApiError::unauthenticated)?;
        Self::from_claims(claims).ok_or_else(ApiError::unauthenticated)
    }

    pub fn require_admin(req: &Request) -> Result<Self, ApiError> {
        let id = Self::from_request(req)?;
        if id.admin {
            Ok(id)
        } else {
            Err(ApiError::new(
                403,
                "forbidden",
                "this route is for operators",
            ))
        }
    }

    /// Whose account a request is about. On a service route
    /// (`/api/billing/users/{user_id}/…`) the caller must hold `billing:service` (else 403
    /// `forbidden`) and the account is the path's `user_id` (400 `invalid_user_id` when it is
    /// not a valid id); on a user route it is the caller's own.
    pub fn subject(req: &Request) -> Result<Self, ApiError> {
        let caller = Self::from_request(req)?;
        let Some(raw) = path_param(req, "user_id") else {
            return Ok(caller);
        };
        if !caller.service {
            return Err(ApiError::new(
                403,
                "forbidden",
                "this route is for the app's server (a token with the billing:service scope)",
            ));
        }
        let user = crate::domain::ids::UserId::parse(&raw).map_err(|_| {
            ApiError::bad_request(
                "invalid_user_id",
                "user_id in the path must be 1 to 128 characters of letters, digits and _-.@|:+",
            )
        })?;
        Ok(caller.acting_for(user))
    }
}

/// A path parameter of the route, percent-decoded once (a valid id never holds `%`, so an
/// id API Gateway already decoded comes out unchanged).
pub fn path_param(req: &Request, name: &str) -> Option<String> {
    let raw = req.path_parameters_ref()?.first(name)?;
    // form_urlencoded would read '+' as a space; '+' is a valid character of a user id.
    let escaped = format!("v={}", raw.replace('+', "%2B"));
    form_urlencoded::parse(escaped.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}
