//! The billing core: domain types, use cases and the ports/adapters they run on.
//!
//! Lambda handlers in `functions/` are thin: they parse a request, call one use case from
//! here and map its outcome to a response through [`http`]. Everything that decides
//! something about money lives in this crate and is tested here.

pub mod account;
pub mod admin;
pub mod bootstrap;
pub mod catalog;
pub mod checkout;
pub mod checkout_state;
pub mod clock;
pub mod config;
pub mod fulfil;
pub mod http;
pub mod ids;
pub mod intake;
pub mod keys;
pub mod metrics;
pub mod queue;
pub mod redact;
pub mod referral;
pub mod runtime;
pub mod signature;
pub mod store;
pub mod stripe;
pub mod stripe_api;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod usage;
