//! The inbound HTTP side shared by every function: requests parsed into who asks and about
//! whom ([`request`]) and into the use cases' commands with typed ids ([`commands`]), JSON
//! responses, and the one place where a use case's error becomes a status and a public
//! message ([`http`]). It depends on the use cases, never the reverse.

pub mod commands;
pub mod http;
pub mod request;
