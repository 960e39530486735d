//! The runtime wiring of a Lambda function: the environment and secrets read once, the
//! adapters built ([`wiring`]), logging, and the whole `main` of an HTTP function
//! ([`run_http`]) and of an SQS-fed one ([`run_sqs`]). The outermost layer: it may use
//! every other folder, and none uses it.

pub mod lazy;
pub mod logging;
pub mod secrets;
pub mod wiring;

use crate::app::Services;
use crate::runtime::logging::init_tracing;
pub use crate::runtime::wiring::{StartupError, stripe_client};

/// The services of this process, built once and kept for its life. A bad configuration (a
/// catalog that does not parse, an unreadable secret) fails the cold start with one log
/// line that says what and where, and the function serves nothing until it is fixed.
async fn cold_start() -> Result<&'static Services, StartupError> {
    match Services::from_env().await {
        Ok(services) => Ok(Box::leak(Box::new(services))),
        Err(e) => {
            tracing::error!(error = %e, "cold start failed: the function serves nothing until this is fixed");
            Err(e)
        }
    }
}

/// The whole `main` of an HTTP function: tracing, services built once (and kept for the
/// life of the process; their clients on first use), then the Lambda runtime loop.
pub async fn run_http<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(&'static Services, lambda_http::Request) -> Fut,
    Fut: std::future::Future<
            Output = Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>,
        > + Send,
{
    init_tracing();
    let services = cold_start().await?;
    lambda_http::run(lambda_http::service_fn(move |req| handler(services, req))).await
}

/// The whole `main` of an SQS-fed function: tracing, services built once, then the Lambda
/// runtime loop over `handler`.
pub async fn run_sqs<E, R, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    E: serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + Send + 'static,
    F: Fn(&'static Services, lambda_runtime::LambdaEvent<E>) -> Fut,
    Fut: std::future::Future<Output = Result<R, lambda_runtime::Error>> + Send,
{
    init_tracing();
    let services = cold_start().await?;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        handler(services, event)
    }))
    .await
}
