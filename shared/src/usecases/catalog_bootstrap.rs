//! Creates the catalog's products and prices in a Stripe account, so a new deployment has
//! price ids to configure. Dry-run by default; refuses a live key unless told otherwise;
//! reuses a price that already carries the plan's lookup key, so running it twice creates
//! nothing twice. Its output is price ids only, never a secret.

use crate::domain::catalog::{Catalog, Mode, Plan};
use crate::stripe::api::{Form, StripeApi, StripeError};

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
