//! The entitlement events' resources in `template.yaml` and in the local stack: the table's
//! stream, the publisher's mapping and filter, its environment, the bus.

use billing_core::store::records::{entitlements, meter_report};
use black_box_tests::unique_prefix;
use local_stack::moto::shared_endpoint;
use local_stack::provision::{self, TEMPLATE};
use serde_yaml_ng::Value;

fn plain(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => plain(&t.value),
        other => other,
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(plain(v), |v, k| plain(&v[*k]))
}

fn tag(v: &Value) -> String {
    match v {
        Value::Tagged(t) => format!("{} {}", t.tag, plain(&t.value).as_str().unwrap_or("")),
        other => format!("{other:?}"),
    }
}

#[test]
fn the_table_streams_new_images_to_the_publisher_filtered_on_the_outbox_items() {
    let t = provision::parse(TEMPLATE).unwrap();
    let table = get(&t, &["Resources", "BillingTable", "Properties"]);
    assert_eq!(
        get(table, &["StreamSpecification", "StreamViewType"]).as_str(),
        Some("NEW_IMAGE")
    );
    let publisher = get(&t, &["Resources", "PublisherFunction"]);
    assert_eq!(
        get(publisher, &["Metadata", "BuildProperties", "Binary"]).as_str(),
        Some("publisher")
    );
    let mapping = get(publisher, &["Properties", "Events", "EntitlementChanges"]);
    assert_eq!(get(mapping, &["Type"]).as_str(), Some("DynamoDB"));
    let props = get(mapping, &["Properties"]);
    assert_eq!(tag(&props["Stream"]), "!GetAtt BillingTable.StreamArn");
    assert_eq!(
        get(props, &["StartingPosition"]).as_str(),
        Some("TRIM_HORIZON")
    );
    assert_eq!(get(props, &["ParallelizationFactor"]).as_u64(), Some(1));
    assert_eq!(
        get(props, &["BisectBatchOnFunctionError"]).as_bool(),
        Some(true)
    );
    assert_eq!(
        get(props, &["FunctionResponseTypes"])
            .as_sequence()
            .map(|s| s.len()),
        Some(1)
    );
    assert_eq!(
        get(props, &["FunctionResponseTypes"])[0].as_str(),
        Some("ReportBatchItemFailures")
    );
    assert_eq!(
        tag(&get(props, &["DestinationConfig", "OnFailure"])["Destination"]),
        "!GetAtt PublisherFailureQueue.Arn"
    );
    let filters = get(props, &["FilterCriteria", "Filters"])
        .as_sequence()
        .unwrap();
    assert_eq!(filters.len(), 2);
    let pattern = |i: usize| -> serde_json::Value {
        serde_json::from_str(get(&filters[i], &["Pattern"]).as_str().unwrap()).unwrap()
    };
    assert_eq!(
        pattern(0),
        serde_json::json!({ "dynamodb": { "Keys": { "sk": { "S": [entitlements::SORT_KEY] } } } })
    );
    // The meter reports' inserts: the relay queues each once (records/meter_report.rs).
    assert_eq!(
        pattern(1),
        serde_json::json!({ "eventName": ["INSERT"],
            "dynamodb": { "Keys": { "pk": { "S": [{ "prefix": meter_report::KEY_PREFIX }] } } } })
    );
    let env = get(publisher, &["Properties", "Environment", "Variables"]);
    assert_eq!(tag(&env[publisher::BUS_ENV]), "!Ref EntitlementEventBus");
}

#[test]
fn the_publisher_sees_the_bus_and_no_stripe_secret() {
    let declared = local_stack::environment::declared(TEMPLATE).unwrap();
    let publisher = &declared["publisher"];
    assert!(publisher.contains(publisher::BUS_ENV));
    assert!(!publisher.contains("STRIPE_SECRET_ARN"));
    let others: Vec<&String> = declared
        .iter()
        .filter(|(_, names)| names.contains(publisher::BUS_ENV))
        .map(|(binary, _)| binary)
        .collect();
    assert_eq!(
        others,
        vec!["publisher"],
        "only the publisher names the bus"
    );
}

async fn stack(template: Option<String>) -> local_stack::LocalStack {
    local_stack::LocalStack::start(local_stack::StackOptions {
        moto_endpoint: shared_endpoint().unwrap(),
        port: 0,
        prefix: unique_prefix(),
        env: std::collections::HashMap::from([(
            "STRIPE_WEBHOOK_SECRET".to_owned(),
            "whsec_parity".to_owned(),
        )]),
        jwt_secret: "parity".into(),
        visibility_override: Some(2),
        template,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_local_stack_streams_its_table_and_publishes_to_the_bus_the_template_declares() {
    let deployed = stack(None).await;
    let bus = &deployed.resources.buses["EntitlementEventBus"];
    assert!(bus.arn.is_some());
    assert!(
        deployed.resources.tables["BillingTable"].arn.is_some(),
        "the table has a stream"
    );
    assert_eq!(deployed.entitlement_bus.as_deref(), Some(bus.name.as_str()));

    // Without the variable in the template, the local publisher has no bus either.
    let line = "          EVENT_BUS_NAME: !Ref EntitlementEventBus\n";
    assert!(TEMPLATE.contains(line));
    let narrowed = stack(Some(TEMPLATE.replacen(
        line,
        "          RUST_LOG: info\n",
        1,
    )))
    .await;
    assert_eq!(narrowed.entitlement_bus, None);
}

#[test]
fn the_documented_rule_is_the_linted_example_and_matches_what_the_publisher_sends() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example =
        std::fs::read_to_string(root.join("infra/examples/entitlement-events-consumer.yaml"))
            .unwrap();
    let doc_page = std::fs::read_to_string(root.join("docs/server.md")).unwrap();
    assert!(
        doc_page.contains(example.trim_end()),
        "docs/server.md's snippet is infra/examples/entitlement-events-consumer.yaml"
    );
    let doc = provision::parse(&example).unwrap();
    let pattern = get(
        &doc,
        &[
            "Resources",
            "EntitlementEventsRule",
            "Properties",
            "EventPattern",
        ],
    );
    assert_eq!(
        get(pattern, &["source"])[0].as_str(),
        Some(billing_core::events::SOURCE)
    );
    assert_eq!(
        get(pattern, &["detail-type"])[0].as_str(),
        Some(billing_core::events::DETAIL_TYPE)
    );
}
