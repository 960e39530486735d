//! The typed records layer: one module per item type of the single table. Each owns its
//! key, its attribute names and the conditions that keep it right, reads its items into
//! typed rows and returns [`Write`]s; use cases compose those writes into one transaction
//! and never spell an attribute name or a condition themselves (layout: [`super::schema`]).
//!
//! [`Write`]: super::Write

pub mod checkout;
pub mod customer;
pub mod entitlements;
pub mod erasure;
pub mod event;
pub mod grant;
pub mod invoice;
pub mod meter_report;
pub mod payment_intent;
pub mod profile;
pub mod purchase;
pub mod referral_code;
pub mod refund;
pub mod subscription;
pub mod usage;

use super::{Cond, Item, Value};

/// An item from its attributes.
fn item<const N: usize>(attrs: [(&str, Value); N]) -> Item {
    attrs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// Pins an attribute to the value read, or to its absence.
fn pinned(attr: &str, read: Option<Value>) -> Cond {
    match read {
        Some(v) => Cond::Eq(attr.to_owned(), v),
        None => Cond::missing(attr),
    }
}
