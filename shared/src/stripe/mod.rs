//! Stripe as this project sees it: its objects and events ([`objects`]), the webhook
//! signature ([`signature`]) and the API port with its HTTP adapter ([`api`]).

pub mod api;
pub mod event_types;
pub mod invoice;
pub mod objects;
pub mod signature;

pub use invoice::*;
pub use objects::*;
