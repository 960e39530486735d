//! CORS as the deployed HTTP API answers it (`template.yaml`, `HttpApi.CorsConfiguration`):
//! preflights for the API's routes are answered by the front itself, never by a function,
//! and an allowed origin is echoed on every response of those routes. The webhook is not a
//! CORS target (in AWS it sits on its own HTTP API without a CORS configuration).
//!
//! `ALLOWED_ORIGINS` lists origins separated by commas. Locally an entry may end in `:*`
//! (any port of that scheme and host), because a developer's app server picks its port;
//! the template takes exact origins only. `*` is refused: the API is called with a bearer
//! token, and a page of any origin must never be able to read answers made with it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

/// The headers a browser may send, as `template.yaml` allows them.
pub const ALLOW_HEADERS: &[&str] = &["authorization", "content-type", "idempotency-key"];
/// The methods of the routes, as `template.yaml` allows them.
pub const ALLOW_METHODS: &[&str] = &["GET", "POST"];
/// Ten minutes: long enough to spare a preflight per click, short enough that a changed
/// list of origins reaches browsers soon (Chromium caps the value at two hours anyway).
pub const MAX_AGE_SECS: u32 = 600;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Exact(String),
    /// `scheme://host:*`, stored as `scheme://host:`.
    AnyPort(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<Rule>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CorsError {
    #[error(
        "ALLOWED_ORIGINS entry {0:?} is not an origin (scheme://host[:port], or scheme://host:* locally); `*` is never accepted"
    )]
    NotAnOrigin(String),
}

/// `scheme://host[:port]` with nothing after it; the host may not be empty or hold a `*`.
fn is_origin(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', '*', ' ', ','])
}

impl AllowedOrigins {
    /// Parses a comma-separated list; blank entries are skipped.
    pub fn parse(list: &str) -> Result<Self, CorsError> {
        let mut rules = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = raw.trim_end_matches('/').to_ascii_lowercase();
            let rule = match entry.strip_suffix(":*") {
                Some(base)
                    if is_origin(base)
                        && !base.rsplit_once("//").is_some_and(|(_, h)| h.contains(':')) =>
                {
                    Rule::AnyPort(format!("{base}:"))
                }
                None if is_origin(&entry) => Rule::Exact(entry),
                _ => return Err(CorsError::NotAnOrigin(raw.to_owned())),
            };
            rules.push(rule);
        }
        Ok(Self(rules))
    }

    /// The local stack's default: its own origin, the web app's (`PUBLIC_BASE_URL`, as the
    /// template's default), and any port on localhost and 127.0.0.1.
    pub fn local_default(own_origin: &str, public_base_url: Option<&str>) -> Self {
        let mut list = vec![
            own_origin.to_owned(),
            "http://localhost:*".into(),
            "http://127.0.0.1:*".into(),
        ];
        if let Some(origin) = public_base_url.and_then(origin_of) {
            list.push(origin);
        }
        Self::parse(&list.join(",")).unwrap_or(Self(Vec::new()))
    }

    /// From `ALLOWED_ORIGINS` when set and not blank, else the local default.
    pub fn from_env(
        value: Option<&str>,
        own_origin: &str,
        public_base_url: Option<&str>,
    ) -> Result<Self, CorsError> {
        match value.filter(|v| !v.trim().is_empty()) {
            Some(v) => Self::parse(v),
            None => Ok(Self::local_default(own_origin, public_base_url)),
        }
    }

    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        if !is_origin(&origin) {
            return false;
        }
        self.0.iter().any(|rule| match rule {
            Rule::Exact(o) => *o == origin,
            Rule::AnyPort(prefix) => origin
                .strip_prefix(prefix.as_str())
                .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())),
        })
    }
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    let origin = format!("{scheme}://{host}");
    is_origin(&origin).then_some(origin)
}

/// The `Origin` of a request that CORS applies to, if allowed.
pub fn allowed_origin<'a>(headers: &'a HeaderMap, allowed: &AllowedOrigins) -> Option<&'a str> {
    headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .filter(|o| allowed.allows(o))
}

/// A preflight is an `OPTIONS` with an `Origin` and an `Access-Control-Request-Method`.
pub fn is_preflight(method: &str, headers: &HeaderMap) -> bool {
    method == "OPTIONS"
        && headers.contains_key("origin")
        && headers.contains_key("access-control-request-method")
}

/// The answer to a preflight: 204, with the allowances only for an allowed origin. As API
/// Gateway does, the configured lists are sent whatever was asked; the browser compares.
pub fn preflight(headers: &HeaderMap, allowed: &AllowedOrigins) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert("vary", HeaderValue::from_static("Origin"));
    if let Some(origin) =
        allowed_origin(headers, allowed).and_then(|o| HeaderValue::from_str(o).ok())
    {
        h.insert("access-control-allow-origin", origin);
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_str(&ALLOW_METHODS.join(",")).expect("static ASCII"),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_str(&ALLOW_HEADERS.join(",")).expect("static ASCII"),
        );
        h.insert("access-control-max-age", HeaderValue::from(MAX_AGE_SECS));
    }
    resp
}

/// Adds the CORS answer to an actual (non-preflight) response of a CORS target.
pub fn decorate(resp: &mut Response<Full<Bytes>>, request: &HeaderMap, allowed: &AllowedOrigins) {
    let h = resp.headers_mut();
    h.append("vary", HeaderValue::from_static("Origin"));
    if let Some(origin) =
        allowed_origin(request, allowed).and_then(|o| HeaderValue::from_str(o).ok())
    {
        h.insert("access-control-allow-origin", origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_default_allows_its_own_origin_and_any_loopback_port_but_nothing_else() {
        let cors = AllowedOrigins::local_default(
            "http://127.0.0.1:3000",
            Some("https://app.example.com/x"),
        );
        for ok in [
            "http://127.0.0.1:3000",
            "http://127.0.0.1:5173",
            "http://localhost:8080",
            "HTTP://LOCALHOST:8080",
            "https://app.example.com",
        ] {
            assert!(cors.allows(ok), "{ok} should be allowed");
        }
        for foreign in [
            "http://127.0.0.2:3000",
            "https://localhost:8080",
            "http://localhost",
            "http://localhost:80x",
            "http://localhost.evil.example:80",
            "http://evil.example",
            "https://app.example.com.evil.example",
            "null",
            "",
        ] {
            assert!(!cors.allows(foreign), "{foreign} should be foreign");
        }
    }

    #[test]
    fn an_explicit_list_replaces_the_default_and_a_star_is_refused() {
        let cors = AllowedOrigins::from_env(
            Some("https://a.example, https://b.example/"),
            "http://127.0.0.1:1",
            None,
        )
        .unwrap();
        assert!(cors.allows("https://a.example") && cors.allows("https://b.example"));
        assert!(!cors.allows("http://127.0.0.1:1"));
        for bad in [
            "*",
            "https://*.example",
            "a.example",
            "https://a.example/path",
            "http://h:1:*",
        ] {
            assert!(
                AllowedOrigins::parse(bad).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_is_answered_with_that_origin_and_a_foreign_one_without() {
        let cors = AllowedOrigins::parse("http://localhost:*").unwrap();
        let mut req = HeaderMap::new();
        req.insert("origin", HeaderValue::from_static("http://localhost:5173"));
        req.insert(
            "access-control-request-method",
            HeaderValue::from_static("POST"),
        );
        let ok = preflight(&req, &cors);
        assert_eq!(ok.status(), 204);
        assert_eq!(
            ok.headers()["access-control-allow-origin"],
            "http://localhost:5173"
        );
        assert_eq!(
            ok.headers()["access-control-allow-headers"],
            "authorization,content-type,idempotency-key"
        );
        assert_eq!(ok.headers()["access-control-max-age"], "600");
        req.insert("origin", HeaderValue::from_static("https://evil.example"));
        let foreign = preflight(&req, &cors);
        assert_eq!(foreign.status(), 204);
        assert!(
            !foreign
                .headers()
                .contains_key("access-control-allow-origin")
        );
        assert!(
            !foreign
                .headers()
                .contains_key("access-control-allow-headers")
        );
    }
}
