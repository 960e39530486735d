//! The local stack: moto for DynamoDB and SQS, resources created from `template.yaml`, the
//! functions' real handlers behind one HTTP front that speaks API Gateway's HTTP API event
//! format (with local HS256 tokens in place of the JWT authorizer), and the SQS event
//! source mapping that feeds the worker, and the DynamoDB stream mapping that feeds the
//! entitlement events' publisher (published through moto's EventBridge). It also answers CORS as the deployed HTTP API does,
//! and serves the browser client's demo pages (`web/`), which are not deployed.

pub mod auth;
pub mod cors;
pub mod entitlement_events;
pub mod environment;
pub mod esm;
pub mod fake_stripe;
pub mod iam;
pub mod iam_proxy;
pub mod moto;
pub mod pages;
pub mod provision;
pub mod server;
pub mod stack;
pub mod stand_in;
pub mod stripe_events;
pub mod timeouts;

pub use stack::{LocalStack, StackOptions};
