//! The go-live gates (`billing-ops gates`, `make gates`) against the local stack and the
//! strict fake Stripe: every gate passing on a ready deployment, then each gate failing on
//! its own with what to do, never a request that changes anything, never a secret shown.

use billing_core::domain::catalog::Mode;
use billing_core::stripe::api::{STRIPE_VERSION, StripeApi};
use billing_core::stripe::event_types::HANDLED;
use billing_ops::{Report, Target};
use billing_testing::{config, object, strict_stripe};
use black_box_tests::TestApp;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sk_test_gates_never_shown_4242";

/// What a ready Stripe account answers; `tweak` changes it for one failing gate.
#[derive(Clone)]
struct Account {
    endpoint: Value,
    portal_configured: bool,
    inactive_price: Option<&'static str>,
    wrong_amount: Option<&'static str>,
}

fn prices_env(stripe: &MockServer) -> Vec<(String, String)> {
    let cfg = config(&[]);
    let prices: Vec<String> = cfg
        .catalog
        .plans()
        .map(|p| format!("{}=price_gates_{}", p.id, p.id))
        .collect();
    vec![
        ("STRIPE_SECRET_KEY".into(), KEY.into()),
        ("STRIPE_API_BASE".into(), stripe.uri()),
        ("STRIPE_PRICES".into(), prices.join(",")),
    ]
}

fn ready(webhook_url: &str) -> Account {
    Account {
        endpoint: object(
            "webhook_endpoint",
            json!({"id": "we_gates", "url": webhook_url, "status": "enabled", "livemode": false,
                   "api_version": STRIPE_VERSION, "enabled_events": HANDLED}),
        ),
        portal_configured: true,
        inactive_price: None,
        wrong_amount: None,
    }
}

async fn mount(stripe: &MockServer, account: Account) {
    let catalog = config(&[]).catalog;
    let plans: Vec<_> = catalog.plans().cloned().collect();
    let a = account.clone();
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1/prices/price_gates_[a-z0-9_]+$"))
        .respond_with(move |req: &Request| {
            let id = req.url.path().rsplit('/').next().unwrap_or_default();
            let plan = plans
                .iter()
                .find(|p| id == format!("price_gates_{}", p.id))
                .unwrap();
            let recurring = match plan.mode {
                Mode::Subscription => json!({"interval": plan.interval, "interval_count": 1}),
                Mode::Payment => Value::Null,
            };
            let mut price = object(
                "price",
                json!({"id": id, "active": a.inactive_price != Some(plan.id.as_str()),
                       "unit_amount": plan.amount + i64::from(a.wrong_amount == Some(plan.id.as_str())),
                       "currency": plan.currency,
                       "type": if plan.mode == Mode::Payment { "one_time" } else { "recurring" }}),
            );
            price["recurring"] = recurring;
            ResponseTemplate::new(200).set_body_json(price)
        })
        .mount(stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/webhook_endpoints"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/webhook_endpoints", "has_more": false,
            "data": [object("webhook_endpoint", json!({"id": "we_other", "url": "https://elsewhere.example.com/hook"})),
                     account.endpoint]})))
        .mount(stripe)
        .await;
    let configs = if account.portal_configured {
        vec![object(
            "billing_portal.configuration",
            json!({"id": "bpc_gates", "active": true}),
        )]
    } else {
        vec![]
    };
    Mock::given(method("GET"))
        .and(path("/v1/billing_portal/configurations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/billing_portal/configurations", "has_more": false, "data": configs})))
        .mount(stripe)
        .await;
}

async fn stack(stripe: &MockServer) -> TestApp {
    let env = prices_env(stripe);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::spawn_with(&env).await
}

/// Runs the gates as `billing-ops gates` does, with the stack's configuration.
async fn gates(
    stripe: &MockServer,
    app: &TestApp,
    webhook_url: Option<&str>,
    live: bool,
) -> Report {
    let env = prices_env(stripe);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cfg = config(&env);
    let client = billing_core::runtime::stripe_client(&cfg).unwrap();
    let stack_url = app.url("");
    let webhook = webhook_url.map_or_else(|| app.url("/api/stripe/webhook"), str::to_owned);
    let target = Target {
        stack_url: &stack_url,
        webhook_url: &webhook,
    };
    let report =
        billing_ops::run(Some(&client as &dyn StripeApi), &cfg.catalog, live, &target).await;
    let shown = format!(
        "{}{}",
        billing_ops::table(&report),
        serde_json::to_string(&report).unwrap()
    );
    assert!(!shown.contains(KEY), "the key is never shown");
    assert!(
        !shown.contains(billing_testing::TEST_WEBHOOK_SECRET),
        "nor the signing secret"
    );
    let requests = stripe.received_requests().await.unwrap_or_default();
    assert!(
        requests.iter().all(|r| r.method.as_str() == "GET"),
        "read-only: {:?}",
        requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.url.path()))
            .collect::<Vec<_>>()
    );
    report
}

fn failed(report: &Report) -> Vec<(&str, &str)> {
    report
        .gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| (g.gate.as_str(), g.fix.as_deref().unwrap_or("")))
        .collect()
}

#[tokio::test]
async fn a_ready_deployment_passes_every_gate() {
    let stripe = strict_stripe().await;
    let app = stack(&stripe).await;
    mount(&stripe, ready(&app.url("/api/stripe/webhook"))).await;
    let report = gates(&stripe, &app, None, false).await;
    // What the gates saw, for the reader of `--nocapture` output.
    println!("{}", billing_ops::table(&report));
    assert_eq!(
        failed(&report),
        Vec::<(&str, &str)>::new(),
        "{}",
        billing_ops::table(&report)
    );
    assert!(report.passed);
    let names: Vec<&str> = report.gates.iter().map(|g| g.gate.as_str()).collect();
    for gate in [
        "price pro_monthly",
        "webhook endpoint",
        "key and endpoint mode",
        "billing portal",
        "stack status",
        "unsigned webhook",
    ] {
        assert!(names.contains(&gate), "{gate} in {names:?}");
    }
}

#[tokio::test]
async fn an_inactive_price_or_one_that_differs_from_the_catalog_fails_its_plans_gate() {
    let stripe = strict_stripe().await;
    let app = stack(&stripe).await;
    let mut account = ready(&app.url("/api/stripe/webhook"));
    account.inactive_price = Some("credits_starter");
    account.wrong_amount = Some("pro_annual");
    mount(&stripe, account).await;
    let report = gates(&stripe, &app, None, false).await;
    let f = failed(&report);
    assert_eq!(
        f.iter().map(|g| g.0).collect::<Vec<_>>(),
        ["price credits_starter", "price pro_annual"]
    );
    assert!(
        f[0].1.contains("STRIPE_PRICE_CREDITS_STARTER"),
        "{}",
        f[0].1
    );
    assert!(!report.passed);
}

#[tokio::test]
async fn an_endpoint_missing_a_handled_type_at_another_version_or_absent_fails_the_endpoint_gate() {
    let stripe = strict_stripe().await;
    let app = stack(&stripe).await;
    let mut account = ready(&app.url("/api/stripe/webhook"));
    account.endpoint["enabled_events"] = json!(HANDLED[1..]);
    account.endpoint["api_version"] = json!("2024-06-20");
    mount(&stripe, account).await;
    let report = gates(&stripe, &app, None, false).await;
    assert_eq!(
        failed(&report).iter().map(|g| g.0).collect::<Vec<_>>(),
        ["webhook endpoint"]
    );
    let gate = report
        .gates
        .iter()
        .find(|g| g.gate == "webhook endpoint")
        .unwrap();
    assert!(
        gate.saw.contains(HANDLED[0]) && gate.saw.contains("2024-06-20"),
        "{}",
        gate.saw
    );

    let elsewhere = gates(
        &stripe,
        &app,
        Some("https://nowhere.example.com/hook"),
        false,
    )
    .await;
    let f = failed(&elsewhere);
    assert!(
        f.iter()
            .any(|g| g.0 == "webhook endpoint" && g.1.contains("make stripe-bootstrap APPLY=1")),
        "{f:?}"
    );
}

#[tokio::test]
async fn a_live_key_with_a_test_endpoint_fails_the_mode_gate() {
    let stripe = strict_stripe().await;
    let app = stack(&stripe).await;
    mount(&stripe, ready(&app.url("/api/stripe/webhook"))).await;
    let report = gates(&stripe, &app, None, true).await;
    assert_eq!(
        failed(&report).iter().map(|g| g.0).collect::<Vec<_>>(),
        ["key and endpoint mode"]
    );
    assert_eq!(report.key_mode, "live");
}

#[tokio::test]
async fn an_account_without_a_portal_configuration_fails_the_portal_gate() {
    let stripe = strict_stripe().await;
    let app = stack(&stripe).await;
    let mut account = ready(&app.url("/api/stripe/webhook"));
    account.portal_configured = false;
    mount(&stripe, account).await;
    let report = gates(&stripe, &app, None, false).await;
    let f = failed(&report);
    assert_eq!(
        f.iter().map(|g| g.0).collect::<Vec<_>>(),
        ["billing portal"]
    );
    assert!(f[0].1.contains("Customer portal"), "{}", f[0].1);
}

#[tokio::test]
async fn a_stack_without_stripe_fails_the_status_gate() {
    let stripe = strict_stripe().await;
    let app = TestApp::spawn().await; // no Stripe key: status says not configured
    mount(&stripe, ready(&app.url("/api/stripe/webhook"))).await;
    let report = gates(&stripe, &app, None, false).await;
    assert_eq!(
        failed(&report).iter().map(|g| g.0).collect::<Vec<_>>(),
        ["stack status"]
    );
}

#[tokio::test]
async fn a_webhook_url_that_takes_an_unsigned_event_fails_the_webhook_gate() {
    let stripe = strict_stripe().await;
    let app = stack(&stripe).await;
    let careless = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&careless)
        .await;
    let hook = format!("{}/hook", careless.uri());
    mount(&stripe, ready(&hook)).await;
    let report = gates(&stripe, &app, Some(&hook), false).await;
    let f = failed(&report);
    assert_eq!(
        f.iter().map(|g| g.0).collect::<Vec<_>>(),
        ["unsigned webhook"]
    );
    assert!(f[0].1.contains("WEBHOOK_URL"));
}
