use billing_core::runtime::{Services, init_tracing};
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let services = Services::from_env().await?;
    services.warm().await;
    let services = &services;
    run(service_fn(move |req| referral::handle(services, req))).await
}
