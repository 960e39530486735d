//! Domain types and rules: what is true of billing regardless of where it is stored.

pub mod catalog;
pub mod checkout_state;
pub mod clock;
pub mod entitlement;
pub mod identity;
pub mod ids;
pub mod reference;
