//! The single-table layout: every item's partition and sort key, in one place.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | webhook event record | `EVENT#evt_…` | `EVENT` |
//! | account profile (credits, credit_until, customer) | `USER#<sub>` | `PROFILE` |
//! | subscription of an account | `USER#<sub>` | `SUB#sub_…` |
//! | purchase of an account | `USER#<sub>` | `PURCHASE#cs_…` |
//! | checkout (state for the return page) | `CHECKOUT#cs_…` | `CHECKOUT` |
//! | Stripe customer → user | `CUSTOMER#cus_…` | `CUSTOMER` |
//! | usage call by the caller's idempotency key (TTL `expires_at`) | `USER#<sub>` | `USAGE#<key>` |
//! | referral code → its owner | `REFERRAL#<code>` | `REFERRAL` |
//! | invoice (once-only marker of its per-period grant) | `INVOICE#in_…` | `INVOICE` |
//! | PaymentIntent → user and checkout (maps refunds and disputes) | `PAYMENT_INTENT#pi_…` | `PAYMENT_INTENT` |
//!
//! Event records are also indexed by state (`gsi1pk` = `EVENTS#<state>`, `gsi1sk` =
//! `<received_at>#<id>`) for the admin list, and expire through the `expires_at` TTL.

use crate::ids::{
    CustomerId, EventId, InvoiceId, PaymentIntentId, SessionId, SubscriptionId, UserId,
};
use crate::store::Key;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const TTL_ATTR: &str = "expires_at";

pub fn event(id: &EventId) -> Key {
    Key::new(format!("EVENT#{id}"), "EVENT")
}
pub fn profile(user: &UserId) -> Key {
    Key::new(user_pk(user), "PROFILE")
}
pub fn user_pk(user: &UserId) -> String {
    format!("USER#{user}")
}
pub fn subscription(user: &UserId, sub: &SubscriptionId) -> Key {
    Key::new(user_pk(user), format!("SUB#{sub}"))
}
pub const SUB_PREFIX: &str = "SUB#";
pub fn purchase(user: &UserId, session: &SessionId) -> Key {
    Key::new(user_pk(user), format!("PURCHASE#{session}"))
}
pub const PURCHASE_PREFIX: &str = "PURCHASE#";
pub fn checkout(session: &SessionId) -> Key {
    Key::new(format!("CHECKOUT#{session}"), "CHECKOUT")
}
pub fn customer(customer: &CustomerId) -> Key {
    Key::new(format!("CUSTOMER#{customer}"), "CUSTOMER")
}
/// One usage call, by the caller's idempotency key (scoped to the caller).
pub fn usage(user: &UserId, idempotency_key: &str) -> Key {
    Key::new(user_pk(user), format!("USAGE#{idempotency_key}"))
}
/// A referral code (already checked by `referral::ReferralCode`).
pub fn referral(code: &str) -> Key {
    Key::new(format!("REFERRAL#{code}"), "REFERRAL")
}
pub fn invoice(invoice: &InvoiceId) -> Key {
    Key::new(format!("INVOICE#{invoice}"), "INVOICE")
}
pub fn payment_intent(pi: &PaymentIntentId) -> Key {
    Key::new(format!("PAYMENT_INTENT#{pi}"), "PAYMENT_INTENT")
}
pub fn events_by_state(state: &str) -> String {
    format!("EVENTS#{state}")
}
