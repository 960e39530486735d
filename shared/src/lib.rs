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
//! - [`metrics`]: the metrics port (what the billing rules count) and its CloudWatch EMF
//!   and memory adapters.
//! - [`app`]: the application context the use cases run on (`Services`: config and the
//!   ports), redaction.
//! - [`inbound`]: requests parsed at the HTTP edge, and the one place where an error
//!   becomes a status.
//! - [`runtime`]: the wiring of a Lambda process: environment, secrets, adapters, logging,
//!   the runtime loops.
//!
//! Dependencies between these folders point one way, from the edges inward; the allowed
//! list is in `infra/layout_check.py` (docs/architecture.md, "Layout").
//!
//! Lambda handlers in `functions/` are thin: they parse a request, call one use case from
//! here and map its outcome to a response through [`inbound::http`].

pub mod app;
pub mod domain;
pub mod events;
pub mod inbound;
pub mod metrics;
pub mod queue;
pub mod runtime;
pub mod store;
pub mod stripe;
pub mod usecases;
