//! The go-live gates (`make gates STACK_URL=…`): the Stripe account of the configured key
//! and the deployed stack, checked read-only before the stack takes money
//! (`docs/runbook.md`, "Before going live"). The Stripe side is the core's
//! [`billing_core::usecases::gates`]; the stack's side is probed here over HTTP. The report
//! holds ids, modes and states, never a key or a signing secret.

use billing_core::domain::catalog::Catalog;
use billing_core::stripe::api::StripeApi;
use billing_core::usecases::gates::{Gate, stripe_gates};
use serde::Serialize;
use std::time::Duration;

/// What a gates run saw, as the JSON report holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checked_at: String,
    pub stack_url: String,
    pub webhook_url: String,
    pub key_mode: &'static str,
    pub passed: bool,
    pub gates: Vec<Gate>,
}

/// Where the gates look.
pub struct Target<'a> {
    /// The stack's API (its `ApiUrl` output), without a trailing slash.
    pub stack_url: &'a str,
    /// The stack's webhook URL (its `WebhookUrl` output).
    pub webhook_url: &'a str,
}

/// Runs every gate. `stripe` is `None` when no key is configured (every Stripe gate fails).
pub async fn run(
    stripe: Option<&dyn StripeApi>,
    catalog: &Catalog,
    key_is_live: bool,
    target: &Target<'_>,
) -> Report {
    let mut gates = match stripe {
        Some(s) => stripe_gates(s, catalog, key_is_live, target.webhook_url).await,
        None => vec![Gate::fail(
            "stripe key",
            "STRIPE_SECRET_KEY is not set",
            "export the deployment's Stripe secret key (it is read, never printed)",
        )],
    };
    gates.extend(stack_gates(target).await);
    Report {
        checked_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        stack_url: target.stack_url.to_owned(),
        webhook_url: target.webhook_url.to_owned(),
        key_mode: if key_is_live { "live" } else { "test" },
        passed: gates.iter().all(|g| g.passed),
        gates,
    }
}

/// The stack answers its status as configured, and refuses an unsigned webhook with 400.
pub async fn stack_gates(target: &Target<'_>) -> Vec<Gate> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_default();
    let status_url = format!("{}/api/billing/status", target.stack_url);
    let status = match http.get(&status_url).send().await {
        Ok(r) if r.status().is_success() => {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            let configured = body["stripe_configured"] == true && body["checkout_enabled"] == true;
            if configured {
                Gate::pass("stack status", "stripe_configured and checkout_enabled")
            } else {
                Gate::fail(
                    "stack status",
                    format!(
                        "stripe_configured {}, checkout_enabled {}",
                        body["stripe_configured"], body["checkout_enabled"]
                    ),
                    "put the Stripe key in the stack's secret (StripeSecretArn) and the price ids in its parameters, then redeploy",
                )
            }
        }
        Ok(r) => Gate::fail(
            "stack status",
            format!("{status_url} answered {}", r.status().as_u16()),
            "check STACK_URL (the stack's ApiUrl output) and the stack's logs",
        ),
        Err(e) => Gate::fail(
            "stack status",
            format!("{status_url} unreachable: {}", without_url(&e)),
            "check STACK_URL (the stack's ApiUrl output)",
        ),
    };
    let unsigned = match http
        .post(target.webhook_url)
        .header("content-type", "application/json")
        .body(r#"{"id":"evt_gates_unsigned","object":"event","type":"checkout.session.completed"}"#)
        .send()
        .await
    {
        Ok(r) if r.status().as_u16() == 400 => Gate::pass("unsigned webhook", "refused with 400"),
        Ok(r) => Gate::fail(
            "unsigned webhook",
            format!("answered {}", r.status().as_u16()),
            "check WEBHOOK_URL (the stack's WebhookUrl output): the webhook must verify Stripe's signature and refuse this with 400",
        ),
        Err(e) => Gate::fail(
            "unsigned webhook",
            format!("unreachable: {}", without_url(&e)),
            "check WEBHOOK_URL (the stack's WebhookUrl output)",
        ),
    };
    vec![status, unsigned]
}

fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url") {
        e.truncate(i);
    }
    e
}

/// The report as a table, one gate a line, with what to do under each failed one.
pub fn table(report: &Report) -> String {
    let width = report
        .gates
        .iter()
        .map(|g| g.gate.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("{:width$}  result  saw\n", "gate");
    for g in &report.gates {
        let verdict = if g.passed { "pass" } else { "FAIL" };
        out.push_str(&format!("{:width$}  {verdict:6}  {}\n", g.gate, g.saw));
        if let Some(fix) = &g.fix {
            out.push_str(&format!("{:width$}          → {fix}\n", ""));
        }
    }
    let failed = report.gates.iter().filter(|g| !g.passed).count();
    out.push_str(&format!(
        "gates: {} passed, {failed} failed ({} key)\n",
        report.gates.len() - failed,
        report.key_mode
    ));
    out
}
