//! `local-stack`: the local stack and its helpers.
//!
//! - `local-stack serve`: moto + every function on http://127.0.0.1:${PORT:-3000} (make dev)
//! - `local-stack token <user> [--admin] [--service] [--email E]`: a local bearer token
//! - `local-stack send <event.json> [--fresh]`: signs a Stripe event with the local webhook
//!   secret and posts it to the running stack
//! - `local-stack fake-stripe --port N …`: the tests' fake Stripe server (fake_stripe.rs)
//! - `local-stack stripe-events`: the Stripe samples of events/stripe/ as the one event builder builds them

use local_stack::auth::{self, DEFAULT_LOCAL_JWT_SECRET};
use local_stack::moto::{Moto, default_binary};
use local_stack::{LocalStack, StackOptions};
use std::collections::HashMap;
use std::process::ExitCode;

/// The documented local default; a deployment takes its secret from Secrets Manager.
const DEFAULT_WEBHOOK_SECRET: &str = "whsec_local_dev_secret";
/// Signs the Payment Link references the local stack hands out (docs/money-rules.md).
const DEFAULT_REFERENCE_SECRET: &str = "local-client-reference-secret-not-for-production";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: local-stack serve\n       local-stack token <user> [--admin] [--service] [--email E]\n       local-stack send <event.json> [--fresh]\n       local-stack provision <moto-endpoint> <prefix>\n       local-stack resign <api-gateway-event.json>\n       local-stack fake-stripe --port N [--by NAME] [--tag TAG] [--checkout-delay-ms MS] [--prices plan=price,…]\n       local-stack stripe-events"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("token") => token(&args[1..]),
        Some("send") => send(&args[1..]).await,
        Some("provision") => provision(&args[1..]).await,
        Some("resign") => resign(&args[1..]),
        Some("fake-stripe") => local_stack::fake_stripe::run(&args[1..]).await,
        Some("stripe-events") => local_stack::stripe_events::run(),
        _ => usage(),
    }
}

async fn serve() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws=warn,hyper=warn".into()),
        )
        .init();
    let port: u16 = match env_or("PORT", "3000").parse() {
        Ok(p) => p,
        Err(_) => {
            eprintln!("PORT must be a port number");
            return ExitCode::from(2);
        }
    };
    let moto = match Moto::start(&default_binary()) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut env: HashMap<String, String> = std::env::vars().collect();
    let mut defaults = Vec::new();
    for (name, value) in [
        ("STRIPE_WEBHOOK_SECRET", DEFAULT_WEBHOOK_SECRET),
        ("CLIENT_REFERENCE_SECRET", DEFAULT_REFERENCE_SECRET),
        ("LOCAL_JWT_SECRET", DEFAULT_LOCAL_JWT_SECRET),
        ("PUBLIC_BASE_URL", &format!("http://127.0.0.1:{port}")),
    ] {
        if env.get(name).is_none_or(|v| v.is_empty()) {
            env.insert(name.to_owned(), value.to_owned());
            defaults.push(format!("  {name}={value} (default, local only)"));
        }
    }
    if env
        .get("ALLOWED_ORIGINS")
        .is_none_or(|v| v.trim().is_empty())
    {
        defaults.push(format!(
            "  ALLOWED_ORIGINS=http://127.0.0.1:{port},http://localhost:*,http://127.0.0.1:*{} (default, local only)",
            if env["PUBLIC_BASE_URL"] == format!("http://127.0.0.1:{port}") {
                ""
            } else {
                " and PUBLIC_BASE_URL's origin"
            }
        ));
    }
    let stand_in = local_stack::stand_in::serve_if_wanted(&mut env, port).await;
    let jwt_secret = env["LOCAL_JWT_SECRET"].clone();
    let visibility = std::env::var("LOCAL_VISIBILITY_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .or(Some(10));
    let opts = StackOptions {
        moto_endpoint: moto.endpoint.clone(),
        port,
        prefix: "local".into(),
        env,
        jwt_secret,
        visibility_override: visibility,
        template: None,
    };
    let stack = match LocalStack::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("the local stack did not start: {e}");
            moto.stop();
            return ExitCode::FAILURE;
        }
    };
    let c = &stack.services.config;
    println!("billing local stack on {}", stack.base_url);
    println!("  moto (DynamoDB, SQS) on {}", moto.endpoint);
    println!(
        "  table {}, queue {}",
        c.table_name,
        c.queue_url.as_deref().unwrap_or("")
    );
    if let Some(s) = &stand_in {
        println!("{}", s.banner());
    }
    println!(
        "  Stripe API key: {}",
        if stand_in.is_some() {
            "the stand-in's (set STRIPE_SECRET_KEY=sk_test_… for Stripe's test mode)"
        } else if c.stripe_configured() {
            "configured"
        } else {
            "not set (checkout answers 503)"
        }
    );
    for line in &defaults {
        println!("{line}");
    }
    println!(
        "  demo pages (billing.js): {0}/  ({0}/billing/pricing, /billing/account, /billing/features, /billing/success, /billing/cancel)",
        stack.base_url
    );
    println!("try:  make send EVENT=events/stripe/checkout.session.completed.credits_starter.json");
    println!(
        "      curl -H \"Authorization: Bearer $(make -s token USER_ID=user_demo)\" {}/api/billing/account",
        stack.base_url
    );

    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen for SIGTERM: {e}");
            moto.stop();
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("stopping");
    drop(stack);
    drop(stand_in);
    moto.stop();
    ExitCode::SUCCESS
}

fn token(args: &[String]) -> ExitCode {
    let Some(user) = args.first() else {
        return usage();
    };
    let admin = args.iter().any(|a| a == "--admin");
    let email = args
        .iter()
        .position(|a| a == "--email")
        .and_then(|i| args.get(i + 1));
    // A service token is what the app's server gets from the IdP's client-credentials
    // flow: no email, only the scope (its `sub` names the client, here the argument).
    let service = args.iter().any(|a| a == "--service");
    let scope = match (admin, service) {
        (true, true) => "openid billing:admin billing:service",
        (true, false) => "openid billing:admin",
        (false, true) => "billing:service",
        (false, false) => "openid",
    };
    let secret = env_or("LOCAL_JWT_SECRET", DEFAULT_LOCAL_JWT_SECRET);
    println!(
        "{}",
        auth::token(&secret, user, email.map(String::as_str), scope, 24 * 3600)
    );
    ExitCode::SUCCESS
}

async fn send(args: &[String]) -> ExitCode {
    let Some(path) = args.first() else {
        return usage();
    };
    let fresh = args.iter().any(|a| a == "--fresh");
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut event: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{path} is not JSON: {e}");
            return ExitCode::FAILURE;
        }
    };
    // An API Gateway sample carries the Stripe event as its body.
    if let Some(body) = event
        .get("requestContext")
        .and(event.get("body"))
        .and_then(|b| b.as_str())
    {
        event = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    }
    if fresh {
        event["id"] = format!("evt_local_{}", uuid::Uuid::new_v4().simple()).into();
    }
    let body = event.to_string();
    let header = sign_now(&body);
    let url = format!(
        "{}/api/stripe/webhook",
        env_or(
            "BASE_URL",
            &format!("http://127.0.0.1:{}", env_or("PORT", "3000"))
        )
    );
    let response = reqwest::Client::new()
        .post(&url)
        .header("stripe-signature", header)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match response {
        Ok(r) => {
            let status = r.status();
            println!(
                "{} {} -> {}",
                event["type"].as_str().unwrap_or("?"),
                event["id"].as_str().unwrap_or("?"),
                status
            );
            println!("{}", r.text().await.unwrap_or_default());
            if status.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("cannot reach {url}: {e} (is `make dev` running?)");
            ExitCode::FAILURE
        }
    }
}

/// Creates the template's table, queues and buses in a running moto and prints them as
/// environment lines (for the emulator run of `events/`).
async fn provision(args: &[String]) -> ExitCode {
    let (Some(endpoint), Some(prefix)) = (args.first(), args.get(1)) else {
        return usage();
    };
    let sdk = local_stack::stack::moto_sdk_config(endpoint).await;
    let (dynamo, sqs) = (
        aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
    );
    match local_stack::provision::provision(
        local_stack::provision::TEMPLATE,
        prefix,
        &dynamo,
        &sqs,
        None,
    )
    .await
    {
        Ok(res) => {
            println!(
                "BILLING_TABLE={}",
                res.tables
                    .get("BillingTable")
                    .map(|t| t.name.as_str())
                    .unwrap_or("")
            );
            let url = res
                .queues
                .get("FulfilmentQueue")
                .and_then(|q| q.url.as_deref())
                .unwrap_or("");
            println!("FULFILMENT_QUEUE_URL={url}");
            let events = aws_sdk_eventbridge::Client::new(&sdk);
            let template = local_stack::provision::TEMPLATE;
            match local_stack::provision::provision_buses(template, prefix, &events).await {
                Ok(buses) => {
                    let bus = buses.get("EntitlementEventBus").map(|b| b.name.as_str());
                    println!("{}={}", publisher::BUS_ENV, bus.unwrap_or(""));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints an API Gateway webhook sample with its Stripe-Signature made now with the
/// local webhook secret (samples carry a placeholder, since a signature expires).
fn resign(args: &[String]) -> ExitCode {
    let Some(path) = args.first() else {
        return usage();
    };
    let mut event: serde_json::Value =
        match std::fs::read_to_string(path).map(|t| serde_json::from_str(&t)) {
            Ok(Ok(v)) => v,
            _ => {
                eprintln!("{path} is not a readable JSON event");
                return ExitCode::FAILURE;
            }
        };
    let Some(body) = event["body"].as_str().map(str::to_owned) else {
        eprintln!("{path} has no body");
        return ExitCode::FAILURE;
    };
    let header = sign_now(&body);
    event["headers"]["stripe-signature"] = header.into();
    println!("{event}");
    ExitCode::SUCCESS
}

/// A `Stripe-Signature` header for `body`, made now with the first configured webhook secret
/// (the one Stripe signs with first during a rotation).
fn sign_now(body: &str) -> String {
    let secrets = env_or("STRIPE_WEBHOOK_SECRET", DEFAULT_WEBHOOK_SECRET);
    let secret = secrets.split(',').next().unwrap_or_default().trim();
    billing_core::stripe::signature::sign(secret, chrono::Utc::now().timestamp(), body.as_bytes())
}
