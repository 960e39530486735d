//! The tests that need Stripe over HTTP, in one binary (the core's own tests, in
//! `shared/tests/core`, reach Stripe through the in-memory one and start no server):
//! - `contracts`: the Stripe port's contract suite, each contract run against the in-memory
//!   Stripe and against the HTTP adapter talking to the strict fake Stripe server;
//! - `checkout_http`: the exact form a checkout sends, the headers of every POST, and the
//!   adapter's retries and errors;
//! - `fidelity`: the strict fake Stripe refuses what Stripe's own parameter definitions
//!   refuse, whatever a test mounted;
//! - `log_scan`: no secret reaches the logs, the HTTP adapter's traces included.

mod checkout_http;
mod contracts;
mod fidelity;
mod log_scan;
