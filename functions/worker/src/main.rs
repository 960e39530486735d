#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    billing_core::edge::runtime::run_sqs(worker::handle).await
}
