//! Local stand-in for API Gateway's JWT authorizer: HS256 tokens signed with
//! `LOCAL_JWT_SECRET`. Never part of a deployment: only the local stack links it.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The documented default for local use only.
pub const DEFAULT_LOCAL_JWT_SECRET: &str = "local-dev-secret-not-for-production";

/// Verifies `Authorization: Bearer <jwt>` and returns the claims as API Gateway hands them
/// to a function: every value a string, lists as `[a b]`.
pub fn claims_from_header(header: Option<&str>, secret: &str) -> Option<HashMap<String, String>> {
    let token = header?
        .strip_prefix("Bearer ")
        .or_else(|| header?.strip_prefix("bearer "))?
        .trim();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    validation.required_spec_claims = ["exp", "sub"].iter().map(|s| s.to_string()).collect();
    let data = decode::<Map<String, Value>>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .ok()?;
    Some(
        data.claims
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    Value::Array(items) => {
                        let parts: Vec<String> = items
                            .iter()
                            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                            .collect();
                        format!("[{}]", parts.join(" "))
                    }
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect(),
    )
}

/// Signs a local token for `sub`, valid for `ttl_secs`.
pub fn token(secret: &str, sub: &str, email: Option<&str>, scope: &str, ttl_secs: i64) -> String {
    let mut claims = Map::new();
    claims.insert("sub".into(), sub.into());
    claims.insert(
        "exp".into(),
        (chrono::Utc::now().timestamp() + ttl_secs).into(),
    );
    claims.insert("iat".into(), chrono::Utc::now().timestamp().into());
    claims.insert("scope".into(), scope.into());
    if let Some(email) = email {
        claims.insert("email".into(), email.into());
    }
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing with an in-memory key cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_signed_with_the_local_secret_yields_its_claims() {
        let t = token(
            "s3cret",
            "user_1",
            Some("a@b.c"),
            "openid billing:admin",
            60,
        );
        let claims = claims_from_header(Some(&format!("Bearer {t}")), "s3cret").unwrap();
        assert_eq!(claims["sub"], "user_1");
        assert_eq!(claims["email"], "a@b.c");
        assert_eq!(claims["scope"], "openid billing:admin");
    }

    #[test]
    fn claims_reach_functions_as_api_gateway_flattens_them() {
        let mut claims = Map::new();
        claims.insert("sub".into(), "user_1".into());
        claims.insert("exp".into(), (chrono::Utc::now().timestamp() + 60).into());
        claims.insert("iat".into(), 1_796_000_000i64.into());
        claims.insert("email_verified".into(), true.into());
        claims.insert("scp".into(), serde_json::json!(["openid", "billing:admin"]));
        claims.insert("aud".into(), serde_json::json!(["client_a"]));
        let t = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        let got = claims_from_header(Some(&format!("Bearer {t}")), "s3cret").unwrap();
        assert_eq!(got["iat"], "1796000000", "numbers as strings");
        assert_eq!(got["email_verified"], "true");
        assert_eq!(
            got["scp"], "[openid billing:admin]",
            "a list as its bracketed form"
        );
        assert_eq!(got["aud"], "[client_a]");
        let identity = billing_core::domain::identity::Identity::from_claims(&got).unwrap();
        assert!(identity.admin && !identity.service);
    }

    #[test]
    fn a_token_with_another_secret_an_expired_one_or_none_is_refused() {
        let t = token("other", "user_1", None, "", 60);
        assert!(claims_from_header(Some(&format!("Bearer {t}")), "s3cret").is_none());
        let expired = token("s3cret", "user_1", None, "", -3600);
        assert!(claims_from_header(Some(&format!("Bearer {expired}")), "s3cret").is_none());
        assert!(claims_from_header(None, "s3cret").is_none());
        assert!(claims_from_header(Some("Basic abc"), "s3cret").is_none());
    }
}
