//! `template.yaml` and the local stack must not diverge: the tables and queues the local
//! stack creates come from the template, and these tests fail if the template, the code's
//! key layout, the created resources or the local routes disagree.

use billing_core::store::schema;
use black_box_tests::unique_prefix;
use local_stack::cors::{ALLOW_HEADERS, ALLOW_METHODS, MAX_AGE_SECS};
use local_stack::moto::shared_endpoint;
use local_stack::provision::{self, TEMPLATE};
use local_stack::server::{Access, Function, ROUTES, is_cors_target};
use local_stack::stack::moto_sdk_config;
use serde_yaml_ng::Value;
use std::collections::BTreeSet;

fn template() -> Value {
    provision::parse(TEMPLATE).unwrap()
}

/// A value with CloudFormation's short-form tags stripped.
fn plain(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => plain(&t.value),
        other => other,
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(plain(v), |v, k| plain(&v[*k]))
}

fn text(v: &Value) -> String {
    match plain(v) {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn resource<'a>(t: &'a Value, id: &str) -> &'a Value {
    get(t, &["Resources", id])
}

#[test]
fn the_table_in_the_template_has_the_key_layout_the_code_uses() {
    let t = template();
    let props = get(resource(&t, "BillingTable"), &["Properties"]);
    let schema: Vec<(String, String)> = props["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| (text(&k["AttributeName"]), text(&k["KeyType"])))
        .collect();
    assert_eq!(
        schema,
        [
            (schema::PK.to_owned(), "HASH".to_owned()),
            (schema::SK.to_owned(), "RANGE".to_owned())
        ]
    );
    // Every index the code queries, with the keys and exactly the projection it reads.
    let gsis = props["GlobalSecondaryIndexes"].as_sequence().unwrap();
    assert_eq!(gsis.len(), schema::INDEXES.len());
    for (gsi, index) in gsis.iter().zip(schema::INDEXES) {
        assert_eq!(text(&gsi["IndexName"]), index.name);
        let gsi_keys: Vec<String> = gsi["KeySchema"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| text(&k["AttributeName"]))
            .collect();
        assert_eq!(gsi_keys, [index.pk, index.sk]);
        assert_eq!(text(&gsi["Projection"]["ProjectionType"]), "INCLUDE");
        let projected: Vec<String> = gsi["Projection"]["NonKeyAttributes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(text)
            .collect();
        assert_eq!(projected, index.projected, "{}", index.name);
    }
    assert_eq!(
        text(&props["TimeToLiveSpecification"]["AttributeName"]),
        schema::TTL_ATTR
    );
    assert_eq!(text(&props["TimeToLiveSpecification"]["Enabled"]), "true");
}

#[test]
fn the_queue_outlasts_the_worker_and_dead_letters_after_five_receives() {
    let t = template();
    let queue = get(resource(&t, "FulfilmentQueue"), &["Properties"]);
    let worker_timeout: i64 = text(get(
        resource(&t, "WorkerFunction"),
        &["Properties", "Timeout"],
    ))
    .parse()
    .unwrap();
    let visibility: i64 = text(&queue["VisibilityTimeout"]).parse().unwrap();
    assert!(
        visibility >= 6 * worker_timeout,
        "visibility {visibility} < 6 × worker timeout {worker_timeout}"
    );
    let max_receives: i64 = text(get(queue, &["RedrivePolicy", "maxReceiveCount"]))
        .parse()
        .unwrap();
    assert!(max_receives >= 5);
    assert_eq!(
        max_receives,
        i64::from(billing_core::queue::MAX_RECEIVES),
        "the worker marks what it holds back on the receive SQS dead-letters it after"
    );
    assert_eq!(text(&queue["FifoQueue"]), "true");
    assert_eq!(
        text(get(
            resource(&t, "FulfilmentDeadLetterQueue"),
            &["Properties", "FifoQueue"]
        )),
        "true"
    );
    let events = get(resource(&t, "WorkerFunction"), &["Properties", "Events"]);
    let mapping = events.as_mapping().unwrap().values().next().unwrap();
    let responses: Vec<String> = mapping["Properties"]["FunctionResponseTypes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    assert_eq!(responses, ["ReportBatchItemFailures"]);
}

#[tokio::test]
async fn the_local_stack_creates_exactly_what_the_template_declares() {
    let sdk = moto_sdk_config(&shared_endpoint().unwrap()).await;
    let (dynamo, sqs) = (
        aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
    );
    let created = provision::provision(TEMPLATE, &unique_prefix(), &dynamo, &sqs, None)
        .await
        .unwrap();
    let t = template();

    let declared_tables: BTreeSet<String> = provision::resources_of(&t, "AWS::DynamoDB::Table")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        created.tables.keys().cloned().collect::<BTreeSet<_>>(),
        declared_tables
    );
    let table = dynamo
        .describe_table()
        .table_name(&created.tables["BillingTable"].name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let schema: Vec<String> = table
        .key_schema()
        .iter()
        .map(|k| format!("{}:{}", k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(
        schema,
        [
            format!("{}:HASH", schema::PK),
            format!("{}:RANGE", schema::SK)
        ]
    );
    let gsis: Vec<(&str, Vec<String>)> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| {
            let projected = g.projection()?.non_key_attributes().to_vec();
            Some((g.index_name()?, projected))
        })
        .collect();
    let expected: Vec<(&str, Vec<String>)> = schema::INDEXES
        .iter()
        .map(|i| (i.name, i.projected.iter().map(|a| a.to_string()).collect()))
        .collect();
    assert_eq!(gsis, expected);
    let ttl = dynamo
        .describe_time_to_live()
        .table_name(&created.tables["BillingTable"].name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some(schema::TTL_ATTR)
    );

    let declared_queues: BTreeSet<String> = provision::resources_of(&t, "AWS::SQS::Queue")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        created.queues.keys().cloned().collect::<BTreeSet<_>>(),
        declared_queues
    );
    let url = created.queues["FulfilmentQueue"].url.clone().unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let attr = |n: &str| {
        attrs
            .get(&aws_sdk_sqs::types::QueueAttributeName::from(n))
            .cloned()
            .unwrap_or_default()
    };
    let props = get(resource(&t, "FulfilmentQueue"), &["Properties"]);
    assert_eq!(attr("VisibilityTimeout"), text(&props["VisibilityTimeout"]));
    assert_eq!(attr("FifoQueue"), "true");
    assert_eq!(attr("DeduplicationScope"), "messageGroup");
    assert_eq!(attr("FifoThroughputLimit"), "perMessageGroupId");
    assert_eq!(
        attr("ContentBasedDeduplication"),
        text(&props["ContentBasedDeduplication"])
    );
    let redrive: serde_json::Value = serde_json::from_str(&attr("RedrivePolicy")).unwrap();
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        text(get(props, &["RedrivePolicy", "maxReceiveCount"]))
    );
    assert_eq!(
        redrive["deadLetterTargetArn"].as_str(),
        created.queues["FulfilmentDeadLetterQueue"].arn.as_deref()
    );
}

#[test]
fn every_template_route_is_served_locally_by_the_same_function_with_the_same_access() {
    let t = template();
    let mut declared = BTreeSet::new();
    for (_, function) in get(&t, &["Resources"]).as_mapping().unwrap() {
        if text(&function["Type"]) != "AWS::Serverless::Function" {
            continue;
        }
        let binary = text(&function["Metadata"]["BuildProperties"]["Binary"]);
        let Some(events) = plain(&function["Properties"]["Events"]).as_mapping() else {
            continue;
        };
        for (_, e) in events {
            if text(&e["Type"]) != "HttpApi" {
                continue;
            }
            let p = plain(&e["Properties"]);
            let auth = plain(&p["Auth"]);
            let scopes: Vec<String> = auth["AuthorizationScopes"]
                .as_sequence()
                .map(|s| s.iter().map(text).collect())
                .unwrap_or_default();
            // A route without an Auth block gets its API's default authorizer, if any.
            let authorizer = match auth["Authorizer"].as_str() {
                Some(a) => a.to_owned(),
                None => get(
                    resource(&t, &text(&p["ApiId"])),
                    &["Properties", "Auth", "DefaultAuthorizer"],
                )
                .as_str()
                .unwrap_or("NONE")
                .to_owned(),
            };
            let access = match (authorizer.as_str(), scopes.as_slice()) {
                ("NONE", _) => "public",
                ("JwtAuthorizer", []) => "user",
                ("JwtAuthorizer", [s]) if s == "billing:admin" => "admin",
                ("JwtAuthorizer", [s]) if s == "billing:service" => "service",
                other => panic!("unexpected auth {other:?}"),
            };
            declared.insert((text(&p["Method"]), text(&p["Path"]), binary.clone(), access));
        }
    }
    let local: BTreeSet<(String, String, String, &str)> = ROUTES
        .iter()
        .map(|(m, p, f, a)| {
            let access = match a {
                Access::Public => "public",
                Access::User => "user",
                Access::Admin => "admin",
                Access::Service => "service",
            };
            (m.to_string(), p.to_string(), f.binary().to_owned(), access)
        })
        .collect();
    assert_eq!(declared, local);
}

#[test]
fn the_service_routes_need_the_service_scope_here_as_in_the_template() {
    // The set comparison above makes the template declare each of these the same way.
    let expected = [
        (
            "GET",
            "/api/billing/users/{user_id}/account",
            Function::Account,
            Access::Service,
        ),
        (
            "GET",
            "/api/billing/users/{user_id}/usage",
            Function::Usage,
            Access::Service,
        ),
        (
            "POST",
            "/api/billing/users/{user_id}/usage",
            Function::Usage,
            Access::Service,
        ),
        (
            "POST",
            "/api/billing/subscription",
            Function::Checkout,
            Access::User,
        ),
    ];
    for route in expected {
        assert!(ROUTES.contains(&route), "{route:?}");
    }
    let path = "/api/billing/users/auth0%7Cabc/usage";
    assert_eq!(
        local_stack::server::match_route("/api/billing/users/{user_id}/usage", path),
        Some(vec![("user_id".to_owned(), "auth0%7Cabc".to_owned())])
    );
    assert!(is_cors_target(path));
    assert_eq!(
        local_stack::server::match_route(
            "/api/billing/users/{user_id}/usage",
            "/api/billing/users//usage"
        ),
        None
    );
}

#[test]
fn every_function_crate_is_a_template_function_and_the_reverse() {
    let t = template();
    let in_template: BTreeSet<String> = get(&t, &["Resources"])
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| text(&r["Type"]) == "AWS::Serverless::Function")
        .map(|r| text(&r["Metadata"]["BuildProperties"]["Binary"]))
        .collect();
    let crates: BTreeSet<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("src/main.rs").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(in_template, crates);
}

/// The `HttpApi` events of the template: (API resource id, method, path).
fn http_routes(t: &Value) -> Vec<(String, String, String)> {
    let mut routes = Vec::new();
    for (_, function) in get(t, &["Resources"]).as_mapping().unwrap() {
        let Some(events) = plain(&function["Properties"]["Events"]).as_mapping() else {
            continue;
        };
        for (_, e) in events {
            if text(&e["Type"]) == "HttpApi" {
                let p = plain(&e["Properties"]);
                routes.push((text(&p["ApiId"]), text(&p["Method"]), text(&p["Path"])));
            }
        }
    }
    routes
}

fn strings(v: &Value) -> Vec<String> {
    plain(v)
        .as_sequence()
        .map(|s| s.iter().map(text).collect())
        .unwrap_or_default()
}

#[test]
fn the_webhook_sits_on_an_api_without_cors_and_every_other_route_on_the_api_with_it() {
    let t = template();
    for (api, method, path) in http_routes(&t) {
        let cors = &get(resource(&t, &api), &["Properties"])["CorsConfiguration"];
        let is_webhook = path == "/api/stripe/webhook";
        assert_eq!(
            cors.is_null(),
            is_webhook,
            "{method} {path} on {api}: CORS must apply to every route but the webhook"
        );
        assert_eq!(is_cors_target(&path), !is_webhook, "{path} locally");
    }
    let local_webhook = ROUTES.iter().find(|r| r.2 == Function::Webhook).unwrap();
    assert!(!is_cors_target(local_webhook.1));
}

#[test]
fn the_template_allows_the_headers_methods_and_max_age_the_local_stack_allows_and_never_any_origin()
{
    let t = template();
    let cors = get(
        resource(&t, "HttpApi"),
        &["Properties", "CorsConfiguration"],
    );
    // `!If [HasAllowedOrigins, <configured origins>, <PublicBaseUrl>]`: both branches.
    let branches = cors.as_sequence().expect("CorsConfiguration is an !If");
    assert_eq!(text(&branches[0]), "HasAllowedOrigins");
    let route_methods: BTreeSet<String> = http_routes(&t)
        .into_iter()
        .filter(|(api, _, _)| api == "HttpApi")
        .map(|(_, m, _)| m)
        .collect();
    for branch in &branches[1..] {
        let b = plain(branch);
        assert_eq!(strings(&b["AllowHeaders"]), ALLOW_HEADERS);
        assert_eq!(strings(&b["AllowMethods"]), ALLOW_METHODS);
        assert_eq!(
            ALLOW_METHODS
                .iter()
                .map(|m| m.to_string())
                .collect::<BTreeSet<_>>(),
            route_methods
        );
        assert_eq!(text(&b["MaxAge"]), MAX_AGE_SECS.to_string());
        assert_eq!(text(&b["AllowCredentials"]), "false");
        assert!(!format!("{:?}", b["AllowOrigins"]).contains('*'));
    }
    let pattern = text(get(&t, &["Parameters", "AllowedOrigins", "AllowedPattern"]));
    assert!(
        pattern.contains("*,]"),
        "the parameter's pattern refuses `*`: {pattern}"
    );
}

/// The template as it was before every function saw the catalog: `STRIPE_PRICES` and
/// `STRIPE_LINKS` only on the checkout function.
fn template_with_prices_only_on_checkout() -> String {
    let globals =
        "        STRIPE_PRICES: !Ref StripePrices\n        STRIPE_LINKS: !Ref StripeLinks\n";
    assert!(
        TEMPLATE.contains(globals),
        "the catalog is global in template.yaml"
    );
    let mut t = TEMPLATE.replacen(globals, "", 1);
    let checkout = t.find("        Binary: checkout\n").unwrap();
    let vars = checkout + t[checkout..].find("        Variables:\n").unwrap();
    let at = vars + "        Variables:\n".len();
    t.insert_str(
        at,
        "          STRIPE_PRICES: !Ref StripePrices\n          STRIPE_LINKS: !Ref StripeLinks\n",
    );
    t
}

async fn stack_from(template: Option<String>) -> local_stack::LocalStack {
    let env = std::collections::HashMap::from([
        (
            "STRIPE_WEBHOOK_SECRET".to_owned(),
            "whsec_parity".to_owned(),
        ),
        (
            "STRIPE_PRICES".to_owned(),
            "credits_starter=price_parity".to_owned(),
        ),
    ]);
    local_stack::LocalStack::start(local_stack::StackOptions {
        moto_endpoint: shared_endpoint().unwrap(),
        port: 0,
        prefix: unique_prefix(),
        env,
        jwt_secret: "parity".into(),
        visibility_override: Some(2),
        template,
    })
    .await
    .unwrap()
}

fn sees_the_price(stack: &local_stack::LocalStack, binary: &str) -> bool {
    stack.functions[binary]
        .config
        .catalog
        .by_price("price_parity")
        .is_some()
}

#[tokio::test]
async fn a_variable_removed_from_a_function_in_the_template_is_missing_locally() {
    let deployed = stack_from(None).await;
    for binary in ["worker", "admin", "checkout", "checkout-status", "webhook"] {
        assert!(
            sees_the_price(&deployed, binary),
            "{binary} sees the catalog"
        );
    }
    let narrowed = stack_from(Some(template_with_prices_only_on_checkout())).await;
    assert!(sees_the_price(&narrowed, "checkout"));
    assert!(
        !sees_the_price(&narrowed, "worker"),
        "the worker gets what the template gives it, and no more"
    );
    assert!(!sees_the_price(&narrowed, "admin"));
}
