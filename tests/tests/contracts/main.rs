//! Contract tests, one binary: one suite per port run against every adapter (store, queue),
//! and the parity of the local stack with `template.yaml`.

mod parity;
mod queue;
mod store;
