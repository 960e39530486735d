//! The billing core, in folders by role (the contract it implements: `docs/api.md`).
//!
//! - [`domain`]: ids that parse, the plan catalog, the caller's identity, entitlement rules,
//!   checkout states, time. No I/O.
//! - [`stripe`]: Stripe's objects and events, the webhook signature, the API port and its
//!   HTTP adapter.
//! - [`usecases`]: the billing rules, one module per family; each composes record writes
//!   into one transaction.
//! - [`store`]: the table port, its schema, the typed records layer (keys, attribute names
//!   and conditions of every item) and the DynamoDB and memory adapters.
//! - [`queue`]: the queue port and its SQS and memory adapters.
//! - [`events`]: the event bus port (`billing.entitlements.changed`) and its EventBridge and
//!   memory adapters.
//! - [`edge`]: what a Lambda function needs around a use case: config, runtime wiring,
//!   error → status, metrics, redaction.
//!
//! Lambda handlers in `functions/` are thin: they parse a request, call one use case from
//! here and map its outcome to a response through [`edge::http`].

pub mod domain;
pub mod edge;
pub mod events;
pub mod queue;
pub mod store;
pub mod stripe;
pub mod usecases;
