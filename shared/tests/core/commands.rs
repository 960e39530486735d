//! Requests become commands where they enter (`inbound::commands`): a plan id that is not
//! well formed is refused there, with the contract's 400 `unknown_plan`, before the use case
//! runs, so no port (store or Stripe) is called and nothing changes. Each test drives the
//! handler's path (parse, then the use case, then the one error mapping) and, as a control,
//! shows the same request with a well-formed plan reaching the ports.

use billing_core::app::Services;
use billing_core::inbound::commands;
use billing_core::inbound::http::{ApiError, Identity};
use billing_core::store::memory::MemoryTable;
use billing_core::usecases::{checkout, preview, purchases, switch};
use billing_testing::faults::{Faults, FaultyTable};
use billing_testing::memory_services_with_stripe;
use billing_testing::memory_stripe::MemoryStripe;
use serde_json::json;
use std::sync::Arc;

/// Plan ids no catalog can hold: not lower snake case, empty, a path, too long.
fn malformed() -> Vec<String> {
    vec![
        "Gold Bars".into(),
        String::new(),
        "../pro_monthly".into(),
        "PRO_MONTHLY".into(),
        "pro_monthly\u{0}".into(),
        "p".repeat(65),
    ]
}

/// The services with every store call counted and an in-memory Stripe that records its calls.
struct World {
    services: Services,
    faults: Arc<Faults>,
    stripe: Arc<MemoryStripe>,
}

impl World {
    fn new() -> Self {
        let stripe = Arc::new(MemoryStripe::new());
        let mut services = memory_services_with_stripe(
            &stripe,
            &[
                ("STRIPE_SECRET_KEY", "sk_test_commands"),
                ("STRIPE_PRICE_CREDITS_STARTER", "price_starter"),
                ("STRIPE_PRICE_PRO_MONTHLY", "price_pro"),
            ],
        );
        let faults = Faults::new();
        services.table = Arc::new(FaultyTable {
            inner: MemoryTable::new(),
            faults: faults.clone(),
        });
        Self {
            services,
            faults,
            stripe,
        }
    }

    /// No store call and no Stripe call was made.
    fn untouched(&self) -> bool {
        self.faults.calls() == 0 && self.stripe.calls().is_empty()
    }

    fn touched(&self) -> bool {
        self.faults.calls() > 0 || !self.stripe.calls().is_empty()
    }
}

fn caller() -> Identity {
    billing_testing::caller("cmd_user", None)
}

fn no_plan(raw: &str) -> ApiError {
    ApiError::new(400, "unknown_plan", format!("there is no plan {raw:?}"))
}

/// `POST /api/billing/checkout` as the handler runs it.
async fn checkout(w: &World, body: serde_json::Value) -> Result<(), ApiError> {
    let wanted = commands::start_checkout(body.to_string().as_bytes())?;
    checkout::start_checkout(&w.services, &caller(), wanted, None).await?;
    Ok(())
}

/// `POST /api/billing/purchases` as the handler runs it.
async fn purchase(w: &World, body: serde_json::Value) -> Result<(), ApiError> {
    let wanted = commands::start_purchase(body.to_string().as_bytes())?;
    purchases::start_purchase(&w.services, &caller(), wanted, None).await?;
    Ok(())
}

/// `POST /api/billing/subscription` as the handler runs it.
async fn switch(w: &World, body: serde_json::Value) -> Result<(), ApiError> {
    let wanted = commands::switch_plan(body.to_string().as_bytes())?;
    switch::switch_plan(&w.services, &caller(), wanted, None).await?;
    Ok(())
}

/// `GET /api/billing/subscription/preview?plan_id=…` as the handler runs it.
async fn preview(w: &World, plan_id: &str) -> Result<(), ApiError> {
    let wanted = commands::preview(Some(plan_id.to_owned()), None)?;
    preview::preview(&w.services, &caller(), wanted).await?;
    Ok(())
}

#[tokio::test]
async fn a_malformed_plan_id_in_a_checkout_is_refused_before_any_port_is_called() {
    for raw in malformed() {
        let w = World::new();
        let refused = checkout(&w, json!({ "plan_id": raw })).await;
        assert_eq!(refused, Err(no_plan(&raw)), "{raw:?}");
        assert!(w.untouched(), "{raw:?}: {}", w.faults.trace());
    }
    let w = World::new();
    checkout(&w, json!({ "plan_id": "credits_starter" }))
        .await
        .unwrap();
    assert!(w.touched(), "a well-formed plan reaches the ports");
}

#[tokio::test]
async fn a_malformed_plan_id_in_a_purchase_is_refused_before_any_port_is_called() {
    for raw in malformed() {
        let w = World::new();
        let refused = purchase(&w, json!({ "plan_id": raw, "quantity": 2 })).await;
        assert_eq!(refused, Err(no_plan(&raw)), "{raw:?}");
        assert!(w.untouched(), "{raw:?}: {}", w.faults.trace());
    }
    let w = World::new();
    purchase(&w, json!({ "plan_id": "uses_20", "quantity": 2 }))
        .await
        .unwrap();
    assert!(w.touched(), "a well-formed plan reaches the ports");
}

#[tokio::test]
async fn a_malformed_plan_id_in_a_switch_is_refused_before_the_account_is_read() {
    for raw in malformed() {
        let w = World::new();
        let refused = switch(&w, json!({ "plan_id": raw })).await;
        assert_eq!(refused, Err(no_plan(&raw)), "{raw:?}");
        assert!(w.untouched(), "{raw:?}: {}", w.faults.trace());
    }
    // A known plan goes on to read the account (which holds no subscription here).
    let w = World::new();
    let refused = switch(&w, json!({ "plan_id": "pro_monthly" })).await;
    assert_eq!(refused.unwrap_err().code, "no_subscription");
    assert!(w.touched(), "a well-formed plan reaches the store");
}

#[tokio::test]
async fn a_malformed_plan_id_in_a_preview_is_refused_before_the_account_is_read() {
    for raw in malformed() {
        let w = World::new();
        assert_eq!(preview(&w, &raw).await, Err(no_plan(&raw)), "{raw:?}");
        assert!(w.untouched(), "{raw:?}: {}", w.faults.trace());
    }
    let w = World::new();
    let refused = preview(&w, "pro_monthly").await;
    assert_eq!(refused.unwrap_err().code, "no_subscription");
    assert!(w.touched(), "a well-formed plan reaches the store");
}

#[tokio::test]
async fn a_well_formed_plan_the_catalog_does_not_hold_is_the_use_cases_no_plan() {
    let w = World::new();
    let refused = checkout(&w, json!({ "plan_id": "gold_bars" })).await;
    assert_eq!(refused, Err(no_plan("gold_bars")));
    let refused = purchase(&w, json!({ "plan_id": "gold_bars" })).await;
    assert_eq!(refused, Err(no_plan("gold_bars")));
    let refused = switch(&w, json!({ "plan_id": "gold_bars" })).await;
    assert_eq!(refused, Err(no_plan("gold_bars")));
    assert!(w.untouched());
}

#[tokio::test]
async fn a_body_that_is_not_the_shape_is_still_invalid_request() {
    let w = World::new();
    for body in [
        json!({ "plan": "credits_starter" }),
        json!({ "plan_id": 7 }),
        json!({ "plan_id": "credits_starter", "user_id": "someone_else" }),
    ] {
        let refused = checkout(&w, body.clone()).await.unwrap_err();
        assert_eq!(refused.code, "invalid_request", "{body}");
        let refused = purchase(&w, body.clone()).await.unwrap_err();
        assert_eq!(refused.code, "invalid_request", "{body}");
    }
    assert_eq!(
        preview_quantity(&w, "two").await.unwrap_err().code,
        "invalid_request"
    );
    assert!(w.untouched());
}

async fn preview_quantity(w: &World, quantity: &str) -> Result<(), ApiError> {
    let wanted = commands::preview(None, Some(quantity.to_owned()))?;
    preview::preview(&w.services, &caller(), wanted).await?;
    Ok(())
}
