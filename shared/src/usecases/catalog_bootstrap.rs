//! Creates the catalog's products and prices in a Stripe account, so a new deployment has
//! price ids to configure. Dry-run by default; refuses a live key unless told otherwise;
//! reuses a price that already carries the plan's lookup key, so running it twice creates
//! nothing twice. Its output is price ids only, never a secret. It also finds or creates
//! the webhook endpoint for the deployed webhook URL ([`webhook_endpoint`]), pinned to the
//! API version the project is tested with and subscribed to exactly the handled types.

use crate::domain::catalog::{Catalog, Mode, Plan};
use crate::stripe::api::{
    NewPrice, NewProduct, NewWebhookEndpoint, STRIPE_VERSION, StripeApi, StripeError,
};
use crate::stripe::event_types::HANDLED;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The plan's price exists already (found by lookup key).
    Exists {
        plan: String,
        price: String,
    },
    /// Dry run: the product and price that would be created for the plan.
    WouldCreate {
        plan: String,
        product: NewProduct,
        price: NewPrice,
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
}

/// The lookup key that ties a Stripe price to a catalog plan.
pub fn lookup_key(plan: &Plan) -> String {
    format!("billing_{}", plan.id)
}

fn new_product(plan: &Plan) -> NewProduct {
    NewProduct {
        name: plan.name.clone(),
        plan: plan.id.clone(),
    }
}

/// The plan's price; a subscription's recurs at the plan's interval.
fn new_price(plan: &Plan, product: &str) -> NewPrice {
    NewPrice {
        product: product.to_owned(),
        amount: plan.amount,
        currency: plan.currency.clone(),
        lookup_key: lookup_key(plan),
        plan: plan.id.clone(),
        interval: plan
            .interval
            .clone()
            .filter(|_| plan.mode == Mode::Subscription),
    }
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
        let found = stripe.find_price_by_lookup_key(&lookup_key(plan)).await?;
        if let Some(price) = found {
            steps.push(Step::Exists {
                plan: plan.id.to_string(),
                price,
            });
            continue;
        }
        if !apply {
            steps.push(Step::WouldCreate {
                plan: plan.id.to_string(),
                product: new_product(plan),
                price: new_price(plan, "<new product id>"),
            });
            continue;
        }
        // Keys derived from the plan make a rerun within Stripe's 24 h replay window safe too.
        let product = stripe
            .create_product(
                &new_product(plan),
                &format!("bootstrap-product-{}", plan.id),
            )
            .await?;
        let price = stripe
            .create_price(
                &new_price(plan, &product),
                &format!("bootstrap-price-{}", plan.id),
            )
            .await?;
        steps.push(Step::Created {
            plan: plan.id.to_string(),
            price,
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
    /// Dry run: the endpoint that would be created.
    WouldCreate { endpoint: NewWebhookEndpoint },
    /// Created; Stripe shows its signing secret once, in its answer (never printed here).
    Created { id: String },
}

/// The endpoint for `url`: pinned to [`STRIPE_VERSION`], subscribed to exactly the handled
/// event types.
pub fn new_endpoint(url: &str) -> NewWebhookEndpoint {
    NewWebhookEndpoint {
        url: url.to_owned(),
        api_version: STRIPE_VERSION.to_owned(),
        description: "billing backend (catalog bootstrap)".to_owned(),
        enabled_events: HANDLED.iter().map(|k| k.to_string()).collect(),
    }
}

/// Finds the endpoint for `url` among the account's or, with `apply`, creates it.
pub async fn webhook_endpoint(
    stripe: &dyn StripeApi,
    url: &str,
    apply: bool,
) -> Result<EndpointStep, BootstrapError> {
    let listed = stripe.list_webhook_endpoints().await?;
    if let Some(e) = listed.into_iter().find(|e| e.url == url) {
        let mut enabled_events = e.enabled_events;
        enabled_events.sort();
        let mut handled: Vec<String> = HANDLED.iter().map(|k| k.to_string()).collect();
        handled.sort();
        return Ok(EndpointStep::Exists {
            id: e.id,
            pinned: e.api_version.as_deref() == Some(STRIPE_VERSION) && enabled_events == handled,
            api_version: e.api_version,
            enabled_events,
        });
    }
    if !apply {
        return Ok(EndpointStep::WouldCreate {
            endpoint: new_endpoint(url),
        });
    }
    let id = stripe
        .create_webhook_endpoint(
            &new_endpoint(url),
            &format!("bootstrap-webhook-{}", url_digest(url)),
        )
        .await?;
    Ok(EndpointStep::Created { id })
}

fn url_digest(url: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(url.as_bytes())[..16])
}

/// Where the endpoint's signing secret goes (the bootstrap never prints it).
pub const SECRET_HINT: &str = "the signing secret (whsec_…) is shown once in Stripe's Dashboard \
(Developers → Webhooks → the endpoint → Signing secret): put it as STRIPE_WEBHOOK_SECRET in the \
stack's Secrets Manager secret (StripeSecretArn), comma-separated after the old one while rotating";
