//! The go-live gates on the Stripe side (`docs/runbook.md`, "Before going live"): what the
//! Stripe account of the configured key must hold before the stack takes money. Read-only:
//! every request is a GET through the Stripe port, and nothing is created or changed.
//! The stack's own gates (status, unsigned webhook) are probed over HTTP by the operations
//! tool (`infra/ops`), which runs both and writes the report.

use crate::domain::catalog::{Catalog, Mode, Plan};
use crate::stripe::api::{STRIPE_VERSION, StripeApi};
use crate::stripe::event_types::HANDLED;
use serde::Serialize;
use std::collections::BTreeSet;

/// One gate's verdict: what it saw, and what to do when it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    pub gate: String,
    pub passed: bool,
    pub saw: String,
    /// What to do; `None` when the gate passed.
    pub fix: Option<String>,
}

impl Gate {
    pub fn pass(gate: impl Into<String>, saw: impl Into<String>) -> Self {
        Self {
            gate: gate.into(),
            passed: true,
            saw: saw.into(),
            fix: None,
        }
    }
    pub fn fail(gate: impl Into<String>, saw: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            gate: gate.into(),
            passed: false,
            saw: saw.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every Stripe-side gate: one per catalog plan, the webhook endpoint for `webhook_url`,
/// the key's and the endpoint's modes, and the Billing Portal's configuration.
pub async fn stripe_gates(
    stripe: &dyn StripeApi,
    catalog: &Catalog,
    key_is_live: bool,
    webhook_url: &str,
) -> Vec<Gate> {
    let mut gates = Vec::new();
    for plan in catalog.plans() {
        gates.push(price_gate(stripe, plan).await);
    }
    gates.extend(endpoint_gates(stripe, key_is_live, webhook_url).await);
    gates.push(portal_gate(stripe).await);
    gates
}

async fn price_gate(stripe: &dyn StripeApi, plan: &Plan) -> Gate {
    let name = format!("price {}", plan.id);
    let env = format!("STRIPE_PRICE_{}", plan.id.as_str().to_uppercase());
    let Some(price_id) = &plan.price_id else {
        return match &plan.payment_link {
            Some(_) => Gate::pass(name, "sold through a Payment Link (no price to check)"),
            None => Gate::fail(
                name,
                "no price id configured",
                format!(
                    "run `make stripe-bootstrap APPLY=1` and set {env} (or STRIPE_PRICES) to its price id, or remove the plan from the catalog"
                ),
            ),
        };
    };
    let price = match stripe.retrieve_price(price_id).await {
        Ok(p) => p,
        Err(e) => {
            return Gate::fail(
                name,
                format!("{price_id}: {e}"),
                format!(
                    "set {env} to a price of this key's account (`make stripe-bootstrap` lists them)"
                ),
            );
        }
    };
    let want_type = match plan.mode {
        Mode::Payment => "one_time",
        Mode::Subscription => "recurring",
    };
    let mut wrong = Vec::new();
    if !price.active {
        wrong.push("inactive".to_owned());
    }
    if price.unit_amount != Some(plan.amount) {
        wrong.push(format!(
            "amount {} ≠ {}",
            shown(&price.unit_amount),
            plan.amount
        ));
    }
    if price.currency.as_deref() != Some(plan.currency.as_str()) {
        wrong.push(format!(
            "currency {} ≠ {}",
            shown(&price.currency),
            plan.currency
        ));
    }
    if price.kind.as_deref() != Some(want_type) {
        wrong.push(format!("type {} ≠ {want_type}", shown(&price.kind)));
    }
    let interval = price.recurring.as_ref().and_then(|r| r.interval.clone());
    if plan.mode == Mode::Subscription && interval.as_deref() != plan.interval.as_deref() {
        wrong.push(format!(
            "interval {} ≠ {}",
            shown(&interval),
            plan.interval.as_deref().unwrap_or("none")
        ));
    }
    if wrong.is_empty() {
        Gate::pass(
            name,
            format!("{price_id}: active, {} {}", plan.amount, plan.currency),
        )
    } else {
        Gate::fail(
            name,
            format!("{price_id}: {}", wrong.join(", ")),
            format!(
                "point {env} at an active price that matches the catalog (amount, currency, interval), or fix the catalog"
            ),
        )
    }
}

async fn endpoint_gates(stripe: &dyn StripeApi, key_is_live: bool, url: &str) -> Vec<Gate> {
    let (endpoint_name, mode_name) = ("webhook endpoint", "key and endpoint mode");
    let create = format!(
        "run `make stripe-bootstrap APPLY=1 WEBHOOK_URL={url}`, then put its signing secret in the stack's Stripe secret"
    );
    let listed = match stripe.list_webhook_endpoints().await {
        Ok(l) => l,
        Err(e) => {
            let saw = format!("Stripe could not be asked: {e}");
            return vec![
                Gate::fail(
                    endpoint_name,
                    saw.clone(),
                    "check STRIPE_SECRET_KEY and STRIPE_API_BASE",
                ),
                Gate::fail(mode_name, saw, "check STRIPE_SECRET_KEY"),
            ];
        }
    };
    let Some(e) = listed.iter().find(|e| e.url == url) else {
        let saw = format!("no endpoint for {url}");
        return vec![
            Gate::fail(endpoint_name, saw.clone(), create.clone()),
            Gate::fail(mode_name, saw, create),
        ];
    };
    let id = &e.id;
    let listens: BTreeSet<&str> = e.enabled_events.iter().map(String::as_str).collect();
    let handled: BTreeSet<&str> = HANDLED.iter().copied().collect();
    let mut wrong = Vec::new();
    if e.status.as_deref() != Some("enabled") {
        wrong.push(format!("status {}", shown(&e.status)));
    }
    if e.api_version.as_deref() != Some(STRIPE_VERSION) {
        wrong.push(format!(
            "API version {} ≠ {STRIPE_VERSION}",
            shown(&e.api_version)
        ));
    }
    let missing: Vec<&str> = handled.difference(&listens).copied().collect();
    let extra: Vec<&str> = listens.difference(&handled).copied().collect();
    if !missing.is_empty() {
        wrong.push(format!("missing {}", missing.join(" ")));
    }
    if !extra.is_empty() {
        wrong.push(format!("also listens to {}", extra.join(" ")));
    }
    let endpoint = if wrong.is_empty() {
        Gate::pass(
            endpoint_name,
            format!(
                "{id}: enabled, {STRIPE_VERSION}, the {} handled types",
                handled.len()
            ),
        )
    } else {
        Gate::fail(
            endpoint_name,
            format!("{id}: {}", wrong.join("; ")),
            format!(
                "enable it with exactly the handled types at {STRIPE_VERSION} (or delete it and {create})"
            ),
        )
    };
    let key_mode = if key_is_live { "live" } else { "test" };
    let endpoint_live = e.livemode;
    let mode = if endpoint_live == Some(key_is_live) {
        Gate::pass(mode_name, format!("both {key_mode}"))
    } else {
        let other = match endpoint_live {
            Some(true) => "live",
            Some(false) => "test",
            None => "unknown",
        };
        Gate::fail(
            mode_name,
            format!("key {key_mode}, endpoint {other}"),
            "use the key of the account and mode the endpoint belongs to (a test endpoint never receives live payments)",
        )
    };
    vec![endpoint, mode]
}

async fn portal_gate(stripe: &dyn StripeApi) -> Gate {
    let name = "billing portal";
    let fix = "save a Billing Portal configuration in Stripe's Dashboard (Settings → Billing → Customer portal); without one every portal call fails";
    match stripe.active_portal_configuration().await {
        Ok(found) => match found {
            Some(id) => Gate::pass(name, format!("{id} active")),
            None => Gate::fail(name, "no active configuration", fix),
        },
        Err(e) => Gate::fail(name, format!("Stripe could not be asked: {e}"), fix),
    }
}

/// A value Stripe answered, as it read in Stripe's JSON (`"eur"`, `500`, `null`).
fn shown<T: Serialize>(value: &Option<T>) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
