//! The edge around the use cases: configuration read once, the Lambda runtime wiring, the
//! one place where an error becomes an HTTP status, metrics and redaction.

pub mod config;
pub mod http;
pub mod lazy;
pub mod logging;
pub mod metrics;
pub mod redact;
pub mod request;
pub mod runtime;
pub mod secrets;
