#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    billing_core::runtime::run_http(account::handle).await
}
