#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    billing_core::runtime::run_sqs(worker::handle).await
}
