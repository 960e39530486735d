//! Who is calling: a user, possibly an operator, or the app's own server, as the
//! authorizer's claims say.

use crate::domain::ids::UserId;
use std::collections::HashMap;

pub const ADMIN_SCOPE: &str = "billing:admin";
/// The app's own server, acting for any user it names in the path (docs/api.md, "Identity").
pub const SERVICE_SCOPE: &str = "billing:service";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`: a user, or for a service token the client it was issued to.
    pub user: UserId,
    pub email: Option<String>,
    pub admin: bool,
    /// The token carries `billing:service`.
    pub service: bool,
}

/// Whether a `scope` (or `scp`) claim names `wanted`, in the two shapes API Gateway's JWT
/// authorizer hands a function: a string claim as it is (OAuth's space-separated scopes),
/// a list claim flattened to "[a b]". Nothing else: a comma is part of a scope's name.
fn has_scope(claims: &HashMap<String, String>, wanted: &str) -> bool {
    claims
        .get("scope")
        .or_else(|| claims.get("scp"))
        .is_some_and(|s| {
            let s = s.trim();
            let list = s
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or(s);
            list.split(' ').any(|x| x == wanted)
        })
}

impl Identity {
    /// From verified JWT claims; `None` without a valid `sub`.
    pub fn from_claims(claims: &HashMap<String, String>) -> Option<Self> {
        let user = claims.get("sub").and_then(|s| UserId::parse(s).ok())?;
        let email = claims.get("email").filter(|e| !e.is_empty()).cloned();
        Some(Self {
            user,
            email,
            admin: has_scope(claims, ADMIN_SCOPE),
            service: has_scope(claims, SERVICE_SCOPE),
        })
    }

    /// The app's server acting for `user`: the identity the user routes' use cases take.
    pub fn acting_for(&self, user: UserId) -> Self {
        Self {
            user,
            email: None,
            admin: false,
            service: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: &str) -> HashMap<String, String> {
        HashMap::from([
            ("sub".to_owned(), "client_app".to_owned()),
            ("scope".to_owned(), scope.to_owned()),
        ])
    }

    #[test]
    fn the_service_scope_is_read_from_a_string_or_a_flattened_list() {
        assert!(
            Identity::from_claims(&claims("billing:service"))
                .unwrap()
                .service
        );
        assert!(
            Identity::from_claims(&claims("[openid billing:service]"))
                .unwrap()
                .service
        );
        let user = Identity::from_claims(&claims("openid billing:servicex")).unwrap();
        assert!(!user.service && !user.admin);
    }

    #[test]
    fn claims_are_read_only_in_the_shapes_api_gateway_gives_them() {
        // scp as Okta and Entra issue it (a list), flattened by API Gateway.
        let listed = HashMap::from([
            ("sub".to_owned(), "op_1".to_owned()),
            ("scp".to_owned(), "[openid billing:admin]".to_owned()),
            ("exp".to_owned(), "1796462073".to_owned()),
        ]);
        assert!(Identity::from_claims(&listed).unwrap().admin);
        // A comma-joined string is one scope named "openid,billing:admin", not two.
        assert!(
            !Identity::from_claims(&claims("openid,billing:admin"))
                .unwrap()
                .admin
        );
        assert!(
            !Identity::from_claims(&claims("[billing:admin"))
                .unwrap()
                .admin
        );
    }
}
