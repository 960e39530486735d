//! The HTTP front of the local stack: routes docs/api.md's paths to the functions' real
//! handlers, turning each request into the API Gateway HTTP API (payload 2.0) event the
//! deployed function receives, parsed by `lambda_http` itself.

use crate::auth;
use crate::cors::{self, AllowedOrigins};
use crate::entitlement_events::Received;
use crate::pages;
use base64::Engine;
use billing_core::app::Services;
use billing_core::inbound::http::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// API Gateway's own payload limit; the webhook enforces its smaller one itself.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Webhook,
    CheckoutStatus,
    Account,
    Checkout,
    Portal,
    Admin,
    Usage,
    Referral,
}

impl Function {
    /// The Lambda binary (and crate) that serves the route, as `template.yaml` names it.
    pub fn binary(self) -> &'static str {
        match self {
            Function::Webhook => "webhook",
            Function::CheckoutStatus => "checkout-status",
            Function::Account => "account",
            Function::Checkout => "checkout",
            Function::Portal => "portal",
            Function::Admin => "admin",
            Function::Usage => "usage",
            Function::Referral => "referral",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// The JWT authorizer must accept the caller's token.
    User,
    /// As `User`, and API Gateway also requires the `billing:admin` scope; the function
    /// checks the scope itself too, which is what answers 403 here.
    Admin,
    /// As `Admin`, with the `billing:service` scope: the app's own server, naming the user
    /// in the path.
    Service,
}

/// docs/api.md's routes that have a function so far: method, path, function, access.
pub const ROUTES: &[(&str, &str, Function, Access)] = &[
    (
        "POST",
        "/api/stripe/webhook",
        Function::Webhook,
        Access::Public,
    ),
    (
        "GET",
        "/api/billing/status",
        Function::CheckoutStatus,
        Access::Public,
    ),
    (
        "GET",
        "/api/billing/checkout-status",
        Function::CheckoutStatus,
        Access::Public,
    ),
    (
        "GET",
        "/api/billing/account",
        Function::Account,
        Access::User,
    ),
    (
        "POST",
        "/api/billing/checkout",
        Function::Checkout,
        Access::User,
    ),
    (
        "POST",
        "/api/billing/portal",
        Function::Portal,
        Access::User,
    ),
    (
        "GET",
        "/api/billing/admin/events",
        Function::Admin,
        Access::Admin,
    ),
    (
        "POST",
        "/api/billing/admin/replay",
        Function::Admin,
        Access::Admin,
    ),
    (
        "POST",
        "/api/billing/admin/reconcile",
        Function::Admin,
        Access::Admin,
    ),
    (
        "POST",
        "/api/billing/admin/grant",
        Function::Admin,
        Access::Admin,
    ),
    (
        "GET",
        "/api/billing/admin/users",
        Function::Admin,
        Access::Admin,
    ),
    (
        "GET",
        "/api/billing/admin/users/{user_id}",
        Function::Admin,
        Access::Admin,
    ),
    (
        "POST",
        "/api/billing/admin/users/{user_id}/erase",
        Function::Admin,
        Access::Admin,
    ),
    ("POST", "/api/billing/usage", Function::Usage, Access::User),
    ("GET", "/api/billing/usage", Function::Usage, Access::User),
    (
        "POST",
        "/api/billing/purchases",
        Function::Checkout,
        Access::User,
    ),
    (
        "POST",
        "/api/billing/admin/refund",
        Function::Admin,
        Access::Admin,
    ),
    (
        "POST",
        "/api/billing/referral",
        Function::Referral,
        Access::User,
    ),
    (
        "GET",
        "/api/billing/users/{user_id}/account",
        Function::Account,
        Access::Service,
    ),
    (
        "GET",
        "/api/billing/users/{user_id}/usage",
        Function::Usage,
        Access::Service,
    ),
    (
        "POST",
        "/api/billing/users/{user_id}/usage",
        Function::Usage,
        Access::Service,
    ),
    (
        "POST",
        "/api/billing/subscription",
        Function::Checkout,
        Access::User,
    ),
    (
        "POST",
        "/api/billing/subscription/cancel",
        Function::Checkout,
        Access::User,
    ),
    (
        "POST",
        "/api/billing/subscription/resume",
        Function::Checkout,
        Access::User,
    ),
    (
        "GET",
        "/api/billing/subscription/preview",
        Function::Checkout,
        Access::User,
    ),
    (
        "GET",
        "/api/billing/invoices",
        Function::Checkout,
        Access::User,
    ),
    (
        "GET",
        "/api/billing/entitlements",
        Function::Usage,
        Access::User,
    ),
    (
        "GET",
        "/api/billing/features/{feature_id}/check",
        Function::Usage,
        Access::User,
    ),
    (
        "POST",
        "/api/billing/features/{feature_id}/usage",
        Function::Usage,
        Access::User,
    ),
    (
        "GET",
        "/api/billing/users/{user_id}/entitlements",
        Function::Usage,
        Access::Service,
    ),
    (
        "GET",
        "/api/billing/users/{user_id}/features/{feature_id}/check",
        Function::Usage,
        Access::Service,
    ),
    (
        "POST",
        "/api/billing/users/{user_id}/features/{feature_id}/usage",
        Function::Usage,
        Access::Service,
    ),
];

/// The path parameters of `path` when it matches the route `template` (`{name}` matches
/// one non-empty segment, as API Gateway matches it), else `None`.
pub fn match_route(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    let mut params = Vec::new();
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) => match ts.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                Some(name) if !ps.is_empty() => params.push((name.to_owned(), ps.to_owned())),
                Some(_) => return None,
                None if ts == ps => {}
                None => return None,
            },
            _ => return None,
        }
    }
}

#[derive(Clone)]
pub struct Front {
    /// Each function's services, by binary, built from its own template environment.
    pub functions: HashMap<String, Services>,
    pub jwt_secret: String,
    /// Each function's `Timeout` from the template, by binary (`timeouts`).
    pub timeouts: HashMap<String, std::time::Duration>,
    /// `ALLOWED_ORIGINS`, or the local default (see `cors`).
    pub allowed_origins: AllowedOrigins,
    /// What reached the stack's bus, for `GET /_local/entitlement-events` (local only).
    pub entitlement_events: Arc<Received>,
}

/// A route browsers may call from another origin: every API route but Stripe's webhook.
pub fn is_cors_target(path: &str) -> bool {
    ROUTES
        .iter()
        .any(|r| match_route(r.1, path).is_some() && r.2 != Function::Webhook)
}

fn error(e: ApiError) -> Response<Full<Bytes>> {
    convert(e.into_response())
}

fn convert(resp: lambda_http::Response<lambda_http::Body>) -> Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(t) => Bytes::from(t),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    Response::from_parts(parts, Full::new(bytes))
}

/// The route a request matched: its template (`/api/billing/users/{user_id}/account`, the
/// event's `routeKey`) and the path parameters it bound.
pub struct RouteMatch<'a> {
    pub template: &'a str,
    pub params: &'a [(String, String)],
}

/// The API Gateway v2 event for one request, as the deployed function would receive it.
pub fn api_gateway_event(
    method: &str,
    route: &RouteMatch<'_>,
    path: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
    claims: Option<&HashMap<String, String>>,
) -> Value {
    let path_params = route.params;
    let mut header_map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match header_map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                header_map.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let mut params = Map::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        params.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    let now = chrono::Utc::now();
    let (body_value, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let route_key = format!("{method} {}", route.template);
    let mut context = json!({
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": "127.0.0.1",
        "domainPrefix": "local",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
        },
        "requestId": uuid::Uuid::new_v4().to_string(),
        "routeKey": route_key,
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "queryStringParameters": if params.is_empty() { Value::Null } else { Value::Object(params) },
        "pathParameters": if path_params.is_empty() { Value::Null } else {
            Value::Object(path_params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
        },
        "requestContext": context,
        "body": body_value,
        "isBase64Encoded": is_base64,
    })
}

impl Front {
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        if path == "/_local/entitlement-events" && req.method() == hyper::Method::GET {
            let body = json!({ "events": self.entitlement_events.snapshot() });
            let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            resp.headers_mut().insert(
                hyper::header::CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("no-store"),
            );
            return resp;
        }
        if !is_cors_target(&path) {
            if let Some(page) = pages::serve(req.method().as_str(), &path).await {
                return page;
            }
            return self.route(req).await;
        }
        // As API Gateway with a CORS configuration: it answers preflights itself, before
        // any authorizer, and adds the allowed origin to whatever the route answers.
        if cors::is_preflight(req.method().as_str(), req.headers()) {
            return cors::preflight(req.headers(), &self.allowed_origins);
        }
        let request_headers = req.headers().clone();
        let mut resp = self.route(req).await;
        cors::decorate(&mut resp, &request_headers, &self.allowed_origins);
        resp
    }

    async fn route(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let on_path: Vec<_> = ROUTES
            .iter()
            .filter_map(|r| match_route(r.1, &path).map(|params| (r, params)))
            .collect();
        let Some(((_, route, function, access), path_params)) =
            on_path.iter().find(|(r, _)| r.0 == method).cloned()
        else {
            return error(if on_path.is_empty() {
                ApiError::not_found()
            } else {
                ApiError::method_not_allowed()
            });
        };
        let headers = req.headers().clone();
        let claims = match access {
            Access::Public => None,
            Access::User | Access::Admin | Access::Service => {
                let header = headers.get("authorization").and_then(|v| v.to_str().ok());
                match auth::claims_from_header(header, &self.jwt_secret) {
                    Some(c) => Some(c),
                    None => return error(ApiError::unauthenticated()),
                }
            }
        };
        let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return error(ApiError::new(
                    413,
                    "payload_too_large",
                    "the request body is too large",
                ));
            }
        };
        let matched = RouteMatch {
            template: route,
            params: &path_params,
        };
        let event = api_gateway_event(
            &method,
            &matched,
            &path,
            &query,
            &headers,
            &body,
            claims.as_ref(),
        );
        let request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(e) => {
                return error(ApiError::new(
                    500,
                    "internal",
                    format!("local stack built a bad event: {e}"),
                ));
            }
        };
        let Some(s) = self.functions.get(function.binary()) else {
            return error(ApiError::new(
                500,
                "internal",
                format!("template.yaml has no {} function", function.binary()),
            ));
        };
        let invocation = async {
            match function {
                Function::Webhook => webhook::handle(s, request).await,
                Function::CheckoutStatus => checkout_status::handle(s, request).await,
                Function::Account => account::handle(s, request).await,
                Function::Checkout => checkout::handle(s, request).await,
                Function::Portal => portal::handle(s, request).await,
                Function::Admin => admin::handle(s, request).await,
                Function::Usage => usage::handle(s, request).await,
                Function::Referral => referral::handle(s, request).await,
            }
        };
        // As Lambda: past its Timeout the invocation is stopped (the future dropped, so
        // nothing after that point happens) and API Gateway answers for it.
        let limit = self
            .timeouts
            .get(function.binary())
            .copied()
            .unwrap_or(crate::timeouts::LAMBDA_DEFAULT);
        let Ok(result) = tokio::time::timeout(limit, invocation).await else {
            tracing::error!(
                function = function.binary(),
                timeout_s = limit.as_secs(),
                "Task timed out: the invocation was stopped"
            );
            let body = crate::timeouts::timed_out_body().to_string();
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            *resp.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            return resp;
        };
        match result {
            Ok(resp) => convert(resp),
            Err(e) => {
                tracing::error!(error = %e, "handler failed");
                error(ApiError::new(500, "internal", "the function failed"))
            }
        }
    }
}
