//! The catalog given at deploy time (`CatalogJson` → `CATALOG_JSON`), black-box: the local
//! stack hands it to every function as the template does, and a bad one starts nothing.

use black_box_tests::{JWT_SECRET, TestApp, unique_prefix};
use local_stack::moto::shared_endpoint;
use local_stack::{LocalStack, StackOptions};
use std::collections::HashMap;

const TEAM_ONLY: &str = r#"{"plans":[{"id":"team_monthly","name":"Team","mode":"subscription","amount":9900,"currency":"eur","interval":"month"},{"id":"credits_team","name":"Team credits","mode":"payment","amount":2000,"currency":"eur","credits":500}]}"#;

#[tokio::test]
async fn a_catalog_given_at_deploy_time_is_what_every_function_sells() {
    let app = TestApp::spawn_with(&[("CATALOG_JSON", TEAM_ONLY), ("FREE_USES", "0")]).await;
    let status = app.get("/api/billing/status", None).await;
    let mut plans: Vec<&String> = status.body["plans"].as_object().unwrap().keys().collect();
    plans.sort();
    assert_eq!(plans, ["credits_team", "team_monthly"]);
    // The usage function suggests a pack of the same catalog.
    let check = app
        .get("/api/billing/usage?units=10", Some(&app.token("yan")))
        .await;
    assert_eq!(check.body["purchase"]["plan_id"], "credits_team");
    // A plan of the compiled-in catalog is unknown to checkout now.
    let r = app
        .post_json(
            "/api/billing/checkout",
            Some(&app.token("yan")),
            &serde_json::json!({ "plan_id": "pro_monthly" }),
        )
        .await;
    assert_eq!(r.body["error"]["code"], "unknown_plan");
}

#[tokio::test]
async fn a_bad_catalog_starts_no_function_and_says_why() {
    let dup = r#"{"plans":[{"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd"},{"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd"}]}"#;
    let opts = StackOptions {
        moto_endpoint: shared_endpoint().unwrap(),
        port: 0,
        prefix: unique_prefix(),
        env: HashMap::from([("CATALOG_JSON".to_owned(), dup.to_owned())]),
        jwt_secret: JWT_SECRET.into(),
        visibility_override: Some(2),
        template: None,
    };
    let err = LocalStack::start(opts).await.err().expect("a bad catalog");
    assert_eq!(
        err.to_string(),
        "CATALOG_JSON: the catalog names plan a twice"
    );
}
