//! Creates the catalog's products and prices in a Stripe account, so a new deployment has
//! price ids to configure. Dry-run by default; refuses a live key unless told otherwise;
//! reuses a price that already carries the plan's lookup key, so running it twice creates
//! nothing twice. Its output is price ids only, never a secret. It also finds or creates
//! the webhook endpoint for the deployed webhook URL ([`webhook_endpoint`]), pinned to the
//! API version the project is tested with and subscribed to exactly the handled types.

use crate::domain::catalog::{Catalog, Mode, Plan};
use crate::stripe::api::{Form, STRIPE_VERSION, StripeApi, StripeError};
use crate::stripe::event_types::HANDLED;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The plan's price exists already (found by lookup key).
    Exists {
        plan: String,
        price: String,
    },
    /// Dry run: the requests that would create the plan's product and price.
    WouldCreate {
        plan: String,
        product: Form,
        price: Form,
    },
    Created {
        plan: String,
        price: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("refusing a live key: pass --allow-live to create products in live mode")]
    LiveKeyRefused,
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error("Stripe's answer had no id")]
    NoId,
}

/// The lookup key that ties a Stripe price to a catalog plan.
pub fn lookup_key(plan: &Plan) -> String {
    format!("billing_{}", plan.id)
}

fn product_form(plan: &Plan) -> Form {
    let mut f = Form::new();
    f.push("name", &plan.name)
        .push("metadata[plan_id]", plan.id.as_str());
    f
}

fn price_form(plan: &Plan, product: &str) -> Form {
    let mut f = Form::new();
    f.push("product", product)
        .push("unit_amount", plan.amount)
        .push("currency", &plan.currency)
        .push("lookup_key", lookup_key(plan))
        .push("metadata[plan_id]", plan.id.as_str());
    if plan.mode == Mode::Subscription
        && let Some(interval) = &plan.interval
    {
        f.push("recurring[interval]", interval);
    }
    f
}

/// Runs the bootstrap over every plan; `apply` false only reads.
pub async fn run(
    stripe: &dyn StripeApi,
    catalog: &Catalog,
    key_is_live: bool,
    apply: bool,
    allow_live: bool,
) -> Result<Vec<Step>, BootstrapError> {
    if key_is_live && !allow_live {
        return Err(BootstrapError::LiveKeyRefused);
    }
    let mut steps = Vec::new();
    for plan in catalog.plans() {
        let mut query = Form::new();
        query
            .push("lookup_keys[]", lookup_key(plan))
            .push("active", "true")
            .push("limit", 1);
        let found = stripe.get_json("/v1/prices", &query).await?;
        if let Some(price) = found["data"].get(0).and_then(|p| p["id"].as_str()) {
            steps.push(Step::Exists {
                plan: plan.id.to_string(),
                price: price.to_owned(),
            });
            continue;
        }
        if !apply {
            steps.push(Step::WouldCreate {
                plan: plan.id.to_string(),
                product: product_form(plan),
                price: price_form(plan, "<new product id>"),
            });
            continue;
        }
        // Keys derived from the plan make a rerun within Stripe's 24 h replay window safe too.
        let product = stripe
            .post_form(
                "/v1/products",
                &product_form(plan),
                &format!("bootstrap-product-{}", plan.id),
            )
            .await?;
        let product_id = product["id"].as_str().ok_or(BootstrapError::NoId)?;
        let price = stripe
            .post_form(
                "/v1/prices",
                &price_form(plan, product_id),
                &format!("bootstrap-price-{}", plan.id),
            )
            .await?;
        let price_id = price["id"].as_str().ok_or(BootstrapError::NoId)?;
        steps.push(Step::Created {
            plan: plan.id.to_string(),
            price: price_id.to_owned(),
        });
    }
    Ok(steps)
}

/// `STRIPE_PRICES` for the template parameter, from the steps that have a price id.
pub fn prices_line(steps: &[Step]) -> String {
    let pairs: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Exists { plan, price } | Step::Created { plan, price } => {
                Some(format!("{plan}={price}"))
            }
            Step::WouldCreate { .. } => None,
        })
        .collect();
    format!("STRIPE_PRICES={}", pairs.join(","))
}

/// The webhook endpoint the bootstrap finds or creates for the deployed webhook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointStep {
    /// An endpoint for this URL exists already: shown, never duplicated. `pinned` says
    /// whether it is on the tested API version and subscribed to exactly the handled types.
    Exists {
        id: String,
        api_version: Option<String>,
        enabled_events: Vec<String>,
        pinned: bool,
    },
    /// Dry run: the request that would create it.
    WouldCreate { form: Form },
    /// Created; Stripe shows its signing secret once, in its answer (never printed here).
    Created { id: String },
}

/// The form that creates the endpoint: pinned to [`STRIPE_VERSION`], subscribed to exactly
/// the handled event types.
pub fn endpoint_form(url: &str) -> Form {
    let mut f = Form::new();
    f.push("url", url)
        .push("api_version", STRIPE_VERSION)
        .push("description", "billing backend (catalog bootstrap)");
    for kind in HANDLED {
        f.push("enabled_events[]", *kind);
    }
    f
}

/// Finds the endpoint for `url` (`GET /v1/webhook_endpoints`) or, with `apply`, creates it.
pub async fn webhook_endpoint(
    stripe: &dyn StripeApi,
    url: &str,
    apply: bool,
) -> Result<EndpointStep, BootstrapError> {
    let mut query = Form::new();
    query.push("limit", 100);
    let listed = stripe.get_json("/v1/webhook_endpoints", &query).await?;
    let existing = listed["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["url"].as_str() == Some(url));
    if let Some(e) = existing {
        let mut enabled_events: Vec<String> = e["enabled_events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect();
        enabled_events.sort();
        let mut handled: Vec<String> = HANDLED.iter().map(|k| k.to_string()).collect();
        handled.sort();
        let api_version = e["api_version"].as_str().map(str::to_owned);
        return Ok(EndpointStep::Exists {
            id: e["id"].as_str().ok_or(BootstrapError::NoId)?.to_owned(),
            pinned: api_version.as_deref() == Some(STRIPE_VERSION) && enabled_events == handled,
            api_version,
            enabled_events,
        });
    }
    if !apply {
        return Ok(EndpointStep::WouldCreate {
            form: endpoint_form(url),
        });
    }
    let created = stripe
        .post_form(
            "/v1/webhook_endpoints",
            &endpoint_form(url),
            &format!("bootstrap-webhook-{}", url_digest(url)),
        )
        .await?;
    Ok(EndpointStep::Created {
        id: created["id"]
            .as_str()
            .ok_or(BootstrapError::NoId)?
            .to_owned(),
    })
}

fn url_digest(url: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(url.as_bytes())[..16])
}

/// Where the endpoint's signing secret goes (the bootstrap never prints it).
pub const SECRET_HINT: &str = "the signing secret (whsec_…) is shown once in Stripe's Dashboard \
(Developers → Webhooks → the endpoint → Signing secret): put it as STRIPE_WEBHOOK_SECRET in the \
stack's Secrets Manager secret (StripeSecretArn), comma-separated after the old one while rotating";
