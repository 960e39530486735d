//! The entitlement events' publisher: the table's stream (outbox items only) → EventBridge.

use billing_core::app::Services;
use billing_core::events::eventbridge::EventBridgeBus;
use billing_core::runtime::logging::init_tracing;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let services: &'static Services = Box::leak(Box::new(Services::from_env().await?));
    let bus_name = publisher::bus_name(|name| std::env::var(name).ok())?;
    let aws = aws_config::load_from_env().await;
    let bus: &'static EventBridgeBus = Box::leak(Box::new(EventBridgeBus::new(
        aws_sdk_eventbridge::Client::new(&aws),
        bus_name,
    )));
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        publisher::handle(services, bus, event)
    }))
    .await
}
