//! `billing-ops`: operations on a deployment and its Stripe account, kept apart from the
//! local development binary because they act on real accounts.
//!
//!   billing-ops stripe-bootstrap [--apply] [--allow-live] [--webhook-url URL]
//!   billing-ops gates --stack-url URL [--webhook-url URL] [--report PATH]
//!
//! Both read the Stripe key and the catalog from the environment as the functions do
//! (`STRIPE_SECRET_KEY`, `STRIPE_API_BASE`, `STRIPE_PRICES`/`STRIPE_PRICE_<ID>`, `CATALOG_JSON`)
//! and never print a key or a signing secret.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("stripe-bootstrap") => stripe_bootstrap(&args[1..]).await,
        Some("gates") => gates(&args[1..]).await,
        _ => {
            eprintln!(
                "usage: billing-ops stripe-bootstrap [--apply] [--allow-live] [--webhook-url URL]\n       billing-ops gates --stack-url URL [--webhook-url URL] [--report PATH]"
            );
            ExitCode::from(2)
        }
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .filter(|v| !v.trim().is_empty())
}

/// The go-live gates: a table on stdout, the JSON report at `--report` (default
/// `gates-report.json`), exit 1 when a gate failed. Changes nothing anywhere.
async fn gates(args: &[String]) -> ExitCode {
    let Some(stack_url) = flag(args, "--stack-url") else {
        eprintln!("gates: --stack-url (STACK_URL=…, the stack's ApiUrl output) is required");
        return ExitCode::from(2);
    };
    let stack_url = stack_url.trim_end_matches('/').to_owned();
    let webhook_url =
        flag(args, "--webhook-url").unwrap_or_else(|| format!("{stack_url}/api/stripe/webhook"));
    let report_path = flag(args, "--report").unwrap_or_else(|| "gates-report.json".into());
    let config = match billing_core::app::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let stripe = billing_core::runtime::stripe_client(&config);
    let live = config.key_mode() == Some(billing_core::app::config::KeyMode::Live);
    let target = billing_ops::Target {
        stack_url: &stack_url,
        webhook_url: &webhook_url,
    };
    let report = billing_ops::run(
        stripe
            .as_ref()
            .map(|s| s as &dyn billing_core::stripe::api::StripeApi),
        &config.catalog,
        live,
        &target,
    )
    .await;
    print!("{}", billing_ops::table(&report));
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    if let Err(e) = std::fs::write(&report_path, json + "\n") {
        eprintln!("gates: the report could not be written to {report_path}: {e}");
        return ExitCode::from(2);
    }
    println!("report: {report_path}");
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Creates the catalog's products and prices in the Stripe account of `STRIPE_SECRET_KEY`
/// (dry-run unless `--apply`; a live key needs `--allow-live`). Prints price ids only.
async fn stripe_bootstrap(args: &[String]) -> ExitCode {
    let apply = args.iter().any(|a| a == "--apply");
    let allow_live = args.iter().any(|a| a == "--allow-live");
    let config = match billing_core::app::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(stripe) = billing_core::runtime::stripe_client(&config) else {
        eprintln!("STRIPE_SECRET_KEY is not set");
        return ExitCode::FAILURE;
    };
    let live = config.key_mode() == Some(billing_core::app::config::KeyMode::Live);
    match billing_core::usecases::catalog_bootstrap::run(
        &stripe,
        &config.catalog,
        live,
        apply,
        allow_live,
    )
    .await
    {
        Ok(steps) => {
            for step in &steps {
                match step {
                    billing_core::usecases::catalog_bootstrap::Step::Exists { plan, price } => {
                        println!("exists   {plan}: {price}")
                    }
                    billing_core::usecases::catalog_bootstrap::Step::Created { plan, price } => {
                        println!("created  {plan}: {price}")
                    }
                    billing_core::usecases::catalog_bootstrap::Step::WouldCreate {
                        plan,
                        product,
                        price,
                    } => {
                        use billing_core::stripe::api::forms;
                        println!(
                            "would create {plan}: product {} / price {}",
                            forms::product(product).encode(),
                            forms::price(price).encode()
                        )
                    }
                }
            }
            if !apply {
                println!("dry run: nothing was created; run again with --apply");
            }
            println!(
                "{}",
                billing_core::usecases::catalog_bootstrap::prices_line(&steps)
            );
            webhook_endpoint_step(&stripe, args, apply).await
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The webhook endpoint for `--webhook-url` (else `WEBHOOK_URL`): shown when it exists,
/// else created with `--apply` (dry run otherwise). Never prints the signing secret.
async fn webhook_endpoint_step(
    stripe: &billing_core::stripe::api::HttpStripe,
    args: &[String],
    apply: bool,
) -> ExitCode {
    use billing_core::usecases::catalog_bootstrap::{self as boot, EndpointStep};
    let url = args
        .iter()
        .position(|a| a == "--webhook-url")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("WEBHOOK_URL").ok())
        .filter(|u| !u.trim().is_empty());
    let Some(url) = url else {
        println!(
            "webhook endpoint: skipped; pass WEBHOOK_URL=<the stack's WebhookUrl output> to create it"
        );
        return ExitCode::SUCCESS;
    };
    match boot::webhook_endpoint(stripe, &url, apply).await {
        Ok(EndpointStep::Exists {
            id,
            api_version,
            enabled_events,
            pinned,
        }) => {
            println!(
                "webhook endpoint exists {id}: {url}, API version {}, {} event types",
                api_version.as_deref().unwrap_or("(account default)"),
                enabled_events.len()
            );
            if !pinned {
                println!(
                    "  it is not pinned to {} with exactly the handled types: recreate it \
                     (delete it in Stripe, run again) or update it in the Dashboard",
                    billing_core::stripe::api::STRIPE_VERSION
                );
            }
            ExitCode::SUCCESS
        }
        Ok(EndpointStep::WouldCreate { endpoint }) => {
            let form = billing_core::stripe::api::forms::webhook_endpoint(&endpoint);
            println!("would create webhook endpoint: {}", form.encode());
            ExitCode::SUCCESS
        }
        Ok(EndpointStep::Created { id }) => {
            println!("created webhook endpoint {id}: {url}");
            println!("{}", boot::SECRET_HINT);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
