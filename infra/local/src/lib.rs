//! The local stack: moto for DynamoDB and SQS, resources created from `template.yaml`, the
//! functions' real handlers behind one HTTP front that speaks API Gateway's HTTP API event
//! format (with local HS256 tokens in place of the JWT authorizer), and the SQS event
//! source mapping that feeds the worker.

pub mod auth;
pub mod environment;
pub mod esm;
pub mod moto;
pub mod provision;
pub mod server;
pub mod stack;

pub use stack::{LocalStack, StackOptions};
