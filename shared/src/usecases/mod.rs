//! The use cases: each module is a family of billing rules (`docs/api.md` names them).
//! A use case reads through the records layer, composes the records' writes into one
//! transaction and maps what went wrong to its own error enum.

pub mod account;
pub mod admin;
pub mod cancel;
pub mod catalog_bootstrap;
pub mod checkout;
pub mod checkout_status;
pub mod entitlement_events;
pub mod features;
pub mod fulfil;
pub mod gates;
pub mod intake;
pub mod invoices;
pub mod preview;
pub mod purchases;
pub mod referral;
pub mod stream;
pub mod switch;
pub mod usage;
