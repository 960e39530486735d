//! Contract tests, one binary: one suite per port run against every adapter (store, queue,
//! event bus),
//! and the parity of the local stack with `template.yaml`.

mod event_parity;
mod events;
mod parity;
mod queue;
mod store;
