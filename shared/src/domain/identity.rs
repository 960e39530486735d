//! Who is calling: a user, possibly an operator, as the authorizer's claims say.

use crate::domain::ids::UserId;
use std::collections::HashMap;

pub const ADMIN_SCOPE: &str = "billing:admin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: UserId,
    pub email: Option<String>,
    pub admin: bool,
}

impl Identity {
    /// From verified JWT claims; `None` without a valid `sub`.
    pub fn from_claims(claims: &HashMap<String, String>) -> Option<Self> {
        let user = claims.get("sub").and_then(|s| UserId::parse(s).ok())?;
        // API Gateway flattens a list claim to "[a b]"; a plain string is space-separated.
        let admin = claims
            .get("scope")
            .or_else(|| claims.get("scp"))
            .is_some_and(|s| {
                s.trim_matches(|c| c == '[' || c == ']')
                    .split([' ', ','])
                    .any(|x| x == ADMIN_SCOPE)
            });
        let email = claims.get("email").filter(|e| !e.is_empty()).cloned();
        Some(Self { user, email, admin })
    }
}
