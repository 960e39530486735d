//! The tests that need Stripe over HTTP, in one binary (the core's own tests, in
//! `shared/tests/core`, reach Stripe through the in-memory one and start no server):
//! - `contracts`: the Stripe port's contract suite, each contract run against the in-memory
//!   Stripe and against the HTTP adapter talking to the strict fake Stripe server;
//! - `log_scan`: no secret reaches the logs, the HTTP adapter's traces included.

mod contracts;
mod log_scan;
