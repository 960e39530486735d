//! Identifiers that are parsed once at the edge, so the core never handles a raw string it
//! has not checked. Each newtype accepts exactly the characters its source can produce.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} is malformed")]
pub struct InvalidId {
    pub kind: &'static str,
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

macro_rules! stripe_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, [$($prefix:literal),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InvalidId> {
                let ok = [$($prefix),+].iter().any(|p| raw.starts_with(p) && raw.len() > p.len())
                    && raw.len() <= 255
                    && raw.chars().all(is_token_char);
                if ok { Ok(Self(raw.to_owned())) } else { Err(InvalidId { kind: $kind }) }
            }
            pub fn as_str(&self) -> &str { &self.0 }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(raw: String) -> Result<Self, InvalidId> { Self::parse(&raw) }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String { id.0 }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(&self.0) }
        }
    };
}

stripe_id!(
    /// A Stripe event id (`evt_…`), or the id of a report the stack owes Stripe
    /// (`meter_…`, a Billing Meter report: `store::records::meter_report`), which lives
    /// through the same record, queue and admin list.
    EventId, "event id", ["evt_", "meter_"]
);
stripe_id!(
    /// A Checkout Session id (`cs_test_…`, `cs_live_…`).
    SessionId, "session id", ["cs_"]
);
stripe_id!(
    /// A Stripe customer id (`cus_…`).
    CustomerId, "customer id", ["cus_"]
);
stripe_id!(
    /// A Stripe subscription id (`sub_…`).
    SubscriptionId, "subscription id", ["sub_"]
);
stripe_id!(
    /// A Stripe invoice id (`in_…`).
    InvoiceId, "invoice id", ["in_"]
);
stripe_id!(
    /// A Stripe PaymentIntent id (`pi_…`): what links a charge back to its checkout.
    PaymentIntentId, "payment intent id", ["pi_"]
);

stripe_id!(
    /// What a purchase is keyed by: the Checkout Session that sold it (`cs_…`), or the
    /// PaymentIntent of a purchase made without Checkout (`pi_…`, Stripe Elements).
    PurchaseId, "purchase id", ["cs_", "pi_"]
);

impl From<&SessionId> for PurchaseId {
    fn from(s: &SessionId) -> Self {
        Self(s.0.clone())
    }
}

impl From<&PaymentIntentId> for PurchaseId {
    fn from(pi: &PaymentIntentId) -> Self {
        Self(pi.0.clone())
    }
}

/// The caller's user id: the token's `sub` claim. Opaque to us, but bounded and printable,
/// because it becomes part of storage keys and Stripe metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .chars()
                .all(|c| is_token_char(c) || matches!(c, '.' | '@' | '|' | ':' | '+'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidId { kind: "user id" })
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user id as a `client_reference_id` Payment Links keep (`[A-Za-z0-9_-]`, up to
    /// 200 characters): [`REFERENCE_PREFIX`] and the id in unpadded base64url (at most
    /// 2 + 171 characters for a 128-byte id). An `auth0|…` id would otherwise be dropped.
    pub fn to_reference(&self) -> String {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0.as_bytes());
        format!("{REFERENCE_PREFIX}{encoded}")
    }

    /// The user a `client_reference_id` names: decoded when it carries our prefix and
    /// decodes to a valid id, else read as a plain id (sessions made before the encoding).
    pub fn from_reference(raw: &str) -> Result<Self, InvalidId> {
        use base64::Engine;
        let decoded = raw
            .strip_prefix(REFERENCE_PREFIX)
            .and_then(|b| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(b)
                    .ok()
            })
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|s| Self::parse(&s).ok());
        match decoded {
            Some(user) => Ok(user),
            None => Self::parse(raw),
        }
    }
}

/// Marks a `client_reference_id` that carries an encoded user id ([`UserId::to_reference`]).
pub const REFERENCE_PREFIX: &str = "u64_";

impl TryFrom<String> for UserId {
    type Error = InvalidId;
    fn try_from(raw: String) -> Result<Self, InvalidId> {
        Self::parse(&raw)
    }
}
impl From<UserId> for String {
    fn from(id: UserId) -> String {
        id.0
    }
}
impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plan id from the catalog (`credits_starter`, `pro_annual`): lower snake case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlanId(String);

impl PlanId {
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidId { kind: "plan id" })
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for PlanId {
    type Error = InvalidId;
    fn try_from(raw: String) -> Result<Self, InvalidId> {
        Self::parse(&raw)
    }
}
impl From<PlanId> for String {
    fn from(id: PlanId) -> String {
        id.0
    }
}
impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_need_their_prefix_and_token_characters() {
        assert!(
            SessionId::parse("cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY")
                .is_ok()
        );
        assert!(SessionId::parse("cs_").is_err());
        assert!(SessionId::parse("pi_123").is_err());
        assert!(SessionId::parse("cs_test_<script>").is_err());
        assert!(SessionId::parse(&format!("cs_{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn user_ids_refuse_separators_used_in_storage_keys() {
        assert!(UserId::parse("auth0|user-42").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a#b").is_err());
        assert!(UserId::parse("a b").is_err());
    }

    #[test]
    fn plan_ids_are_lower_snake_case() {
        assert!(PlanId::parse("credits_starter").is_ok());
        assert!(PlanId::parse("Credits").is_err());
        assert!(PlanId::parse("../etc").is_err());
    }
}
