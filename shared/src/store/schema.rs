//! The single table's shape: key and index attribute names and the layout of every item.
//! Each item type's key, attributes and conditions live in its module under [`records`].
//!
//! | item | pk | sk | module |
//! | --- | --- | --- | --- |
//! | webhook event record | `EVENT#evt_…` | `EVENT` | [`records::event`] |
//! | account profile (credits, credit_until, customer) | `USER#<sub>` | `PROFILE` | [`records::profile`] |
//! | subscription of an account | `USER#<sub>` | `SUB#sub_…` | [`records::subscription`] |
//! | purchase of an account | `USER#<sub>` | `PURCHASE#cs_…` | [`records::purchase`] |
//! | usage call by the caller's idempotency key (TTL) | `USER#<sub>` | `USAGE#<key>` | [`records::usage`] |
//! | operator grant (audit) | `USER#<sub>` | `GRANT#<at>#<id>` | [`records::grant`] |
//! | checkout (state for the return page) | `CHECKOUT#cs_…` | `CHECKOUT` | [`records::checkout`] |
//! | Stripe customer → user | `CUSTOMER#cus_…` | `CUSTOMER` | [`records::customer`] |
//! | referral code → its owner | `REFERRAL#<code>` | `REFERRAL` | [`records::referral_code`] |
//! | invoice (once-only marker of its per-period grant) | `INVOICE#in_…` | `INVOICE` | [`records::invoice`] |
//! | PaymentIntent → user and checkout | `PAYMENT_INTENT#pi_…` | `PAYMENT_INTENT` | [`records::payment_intent`] |
//!
//! Event records are also indexed by state (`gsi1pk` = `EVENTS#<state>`, `gsi1sk` =
//! `<received_at>#<id>`) for the admin list, and by account (`gsi3pk` =
//! `ACCOUNT_EVENTS#<group>`, the Stripe customer or `user:<sub>`, same `gsi3sk`) for the
//! operator's view of one user, purchases by time (`gsi2pk` =
//! `PURCHASES#<sub>`, `gsi2sk` = `<at>#<session>`) for the account's latest purchases, and
//! items with `expires_at` expire by TTL. Each index projects only what its reader shows
//! ([`Index::projected`]), so a page costs the same whatever else the items hold (an event
//! record's payload is up to 64 KB).
//!
//! [`records`]: super::records
//! [`records::event`]: super::records::event
//! [`records::profile`]: super::records::profile
//! [`records::subscription`]: super::records::subscription
//! [`records::purchase`]: super::records::purchase
//! [`records::usage`]: super::records::usage
//! [`records::grant`]: super::records::grant
//! [`records::checkout`]: super::records::checkout
//! [`records::customer`]: super::records::customer
//! [`records::referral_code`]: super::records::referral_code
//! [`records::invoice`]: super::records::invoice
//! [`records::payment_intent`]: super::records::payment_intent

use crate::domain::ids::UserId;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
pub const GSI3: &str = "gsi3";
pub const GSI3_PK: &str = "gsi3pk";
pub const GSI3_SK: &str = "gsi3sk";
pub const TTL_ATTR: &str = "expires_at";

/// A global secondary index: its name, key attributes, and the non-key attributes it
/// projects (`template.yaml` declares the same, `ProjectionType: INCLUDE`; a test compares).
#[derive(Debug, PartialEq, Eq)]
pub struct Index {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
    pub projected: &'static [&'static str],
}

impl Index {
    /// Whether an index entry carries `attr` (the table's and the index's keys always).
    pub fn carries(&self, attr: &str) -> bool {
        [PK, SK, self.pk, self.sk].contains(&attr) || self.projected.contains(&attr)
    }
}

/// Event records by listed state, for the admin list: only the listed fields.
pub const EVENTS_BY_STATE: Index = Index {
    name: GSI1,
    pk: GSI1_PK,
    sk: GSI1_SK,
    projected: &[
        "type",
        "status",
        "received_at",
        "processed_at",
        "error",
        "api_version",
    ],
};

/// An account's purchases by time, for the account's latest purchases.
pub const PURCHASES_BY_TIME: Index = Index {
    name: GSI2,
    pk: GSI2_PK,
    sk: GSI2_SK,
    projected: &[
        "plan_id",
        "session_id",
        "amount",
        "currency",
        "status",
        "at",
    ],
};

/// Event records by the account they concern (their ordering group: the Stripe customer,
/// else our user id), for the operator's view of one user: only the listed fields.
pub const EVENTS_BY_ACCOUNT: Index = Index {
    name: GSI3,
    pk: GSI3_PK,
    sk: GSI3_SK,
    projected: &["type", "status", "received_at", "processed_at", "error"],
};

/// Every index of the table.
pub const INDEXES: [&Index; 3] = [&EVENTS_BY_STATE, &PURCHASES_BY_TIME, &EVENTS_BY_ACCOUNT];

/// The partition of everything that belongs to one account.
pub fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}
