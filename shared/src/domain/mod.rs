//! Domain types and rules: what is true of billing regardless of where it is stored.

pub mod allowance;
pub mod catalog;
pub mod checkout_state;
pub mod clock;
pub mod entitlement;
pub mod features;
pub mod identity;
pub mod ids;
pub mod reference;
