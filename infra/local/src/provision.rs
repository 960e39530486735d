//! Creates the template's DynamoDB tables and SQS queues in moto, from `template.yaml`
//! itself, so the local stack and a deployment share one definition.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::Path;

pub const TEMPLATE: &str = include_str!("../../../template.yaml");
pub fn template_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("creating {0} failed: {1}")]
    Aws(String, String),
}

fn template_err(msg: impl Into<String>) -> ProvisionError {
    ProvisionError::Template(msg.into())
}

/// A resource the local stack created: its logical id, physical name, and URL or ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub name: String,
    pub url: Option<String>,
    pub arn: Option<String>,
}

/// The resources of one local stack, by logical id.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    /// Tables; `arn` is the table's stream ARN when the template enables its stream.
    pub tables: BTreeMap<String, Created>,
    pub queues: BTreeMap<String, Created>,
    /// EventBridge buses (filled by [`provision_buses`]).
    pub buses: BTreeMap<String, Created>,
}

/// Strips CloudFormation's short-form tags (`!Ref`, `!Sub`) to their plain values.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn text(v: &Value) -> Option<String> {
    match untag(v) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    untag(v).as_mapping()?.get(name)
}

pub fn parse(template: &str) -> Result<Value, ProvisionError> {
    Ok(serde_yaml_ng::from_str(template)?)
}

/// The template's resources of one CloudFormation type, by logical id.
pub fn resources_of<'a>(template: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    let Some(resources) = field(template, "Resources").and_then(|r| r.as_mapping()) else {
        return Vec::new();
    };
    resources
        .iter()
        .filter(|(_, r)| field(r, "Type").and_then(text).as_deref() == Some(kind))
        .filter_map(|(k, r)| Some((text(k)?, field(r, "Properties")?)))
        .collect()
}

fn list(v: Option<&Value>) -> &[Value] {
    v.map(untag)
        .and_then(|v| v.as_sequence())
        .map(|s| s.as_slice())
        .unwrap_or(&[])
}

fn key_schema(v: Option<&Value>) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    list(v)
        .iter()
        .map(|k| {
            let name = field(k, "AttributeName")
                .and_then(text)
                .ok_or_else(|| template_err("KeySchema needs AttributeName"))?;
            let kind = field(k, "KeyType")
                .and_then(text)
                .ok_or_else(|| template_err("KeySchema needs KeyType"))?;
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .map_err(|e| template_err(e.to_string()))
        })
        .collect()
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    props: &Value,
) -> Result<Created, ProvisionError> {
    let aws = |e: &dyn std::fmt::Display| ProvisionError::Aws(name.to_owned(), e.to_string());
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for a in list(field(props, "AttributeDefinitions")) {
        let attr = field(a, "AttributeName")
            .and_then(text)
            .ok_or_else(|| template_err("AttributeName missing"))?;
        let kind = field(a, "AttributeType")
            .and_then(text)
            .ok_or_else(|| template_err("AttributeType missing"))?;
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .map_err(|e| aws(&e))?,
        );
    }
    req = req.set_key_schema(Some(key_schema(field(props, "KeySchema"))?));
    for g in list(field(props, "GlobalSecondaryIndexes")) {
        let index = field(g, "IndexName")
            .and_then(text)
            .ok_or_else(|| template_err("IndexName missing"))?;
        let projection = field(g, "Projection")
            .and_then(|p| field(p, "ProjectionType"))
            .and_then(text)
            .unwrap_or("ALL".into());
        let non_key: Vec<String> = field(g, "Projection")
            .map(|p| list(field(p, "NonKeyAttributes")))
            .unwrap_or_default()
            .iter()
            .filter_map(text)
            .collect();
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .set_key_schema(Some(key_schema(field(g, "KeySchema"))?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(projection.as_str()))
                        .set_non_key_attributes((!non_key.is_empty()).then_some(non_key))
                        .build(),
                )
                .build()
                .map_err(|e| aws(&e))?,
        );
    }
    if let Some(stream) = field(props, "StreamSpecification") {
        let view = field(stream, "StreamViewType")
            .and_then(text)
            .ok_or_else(|| template_err("StreamViewType missing"))?;
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()
                .map_err(|e| aws(&e))?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(aws(&aws_sdk_dynamodb::error::DisplayErrorContext(e))),
    }
    let stream_arn = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(|e| aws(&aws_sdk_dynamodb::error::DisplayErrorContext(e)))?
        .table
        .and_then(|t| t.latest_stream_arn);
    if let Some(ttl) = field(props, "TimeToLiveSpecification") {
        let attr = field(ttl, "AttributeName")
            .and_then(text)
            .ok_or_else(|| template_err("TTL AttributeName missing"))?;
        let enabled = field(ttl, "Enabled").and_then(text).as_deref() == Some("true");
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(enabled)
                    .build()
                    .map_err(|e| aws(&e))?,
            )
            .send()
            .await
            .map_err(|e| aws(&aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    }
    Ok(Created {
        name: name.to_owned(),
        url: None,
        arn: stream_arn,
    })
}

/// Creates every EventBridge bus of the template, named `{prefix}-{LogicalId}`.
pub async fn provision_buses(
    template: &str,
    prefix: &str,
    events: &aws_sdk_eventbridge::Client,
) -> Result<BTreeMap<String, Created>, ProvisionError> {
    let doc = parse(template)?;
    let mut out = BTreeMap::new();
    for (logical, _) in resources_of(&doc, "AWS::Events::EventBus") {
        let name = format!("{prefix}-{logical}");
        let arn = events
            .create_event_bus()
            .name(&name)
            .send()
            .await
            .map_err(|e| {
                ProvisionError::Aws(
                    name.clone(),
                    aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string(),
                )
            })?
            .event_bus_arn;
        out.insert(
            logical,
            Created {
                name,
                url: None,
                arn,
            },
        );
    }
    Ok(out)
}

/// Queue attributes the template sets, as SQS attribute names and values.
fn queue_attributes(props: &Value) -> Vec<(QueueAttributeName, String)> {
    let mut attrs = Vec::new();
    for (prop, attr) in [
        ("FifoQueue", QueueAttributeName::FifoQueue),
        (
            "ContentBasedDeduplication",
            QueueAttributeName::ContentBasedDeduplication,
        ),
        ("DeduplicationScope", QueueAttributeName::DeduplicationScope),
        (
            "FifoThroughputLimit",
            QueueAttributeName::FifoThroughputLimit,
        ),
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        (
            "MessageRetentionPeriod",
            QueueAttributeName::MessageRetentionPeriod,
        ),
        (
            "ReceiveMessageWaitTimeSeconds",
            QueueAttributeName::ReceiveMessageWaitTimeSeconds,
        ),
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
    ] {
        if let Some(v) = field(props, prop).and_then(text) {
            attrs.push((attr, v));
        }
    }
    attrs
}

/// The logical id a `!GetAtt X.Arn` (short or long form) points at.
fn get_att_target(v: &Value) -> Option<String> {
    if let Value::Tagged(t) = v {
        return text(&t.value).and_then(|s| s.split('.').next().map(str::to_owned));
    }
    let long = field(v, "Fn::GetAtt")?;
    match untag(long) {
        Value::Sequence(s) => s.first().and_then(text),
        other => text(other).and_then(|s| s.split('.').next().map(str::to_owned)),
    }
}

/// Creates every table and queue of the template, each named `{prefix}-{LogicalId}`.
/// `visibility_override` shortens the queue's visibility timeout for local runs.
pub async fn provision(
    template: &str,
    prefix: &str,
    dynamo: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    visibility_override: Option<u32>,
) -> Result<Resources, ProvisionError> {
    let doc = parse(template)?;
    let mut out = Resources::default();
    for (logical, props) in resources_of(&doc, "AWS::DynamoDB::Table") {
        let created = create_table(dynamo, &format!("{prefix}-{logical}"), props).await?;
        out.tables.insert(logical, created);
    }
    let queues = resources_of(&doc, "AWS::SQS::Queue");
    for (logical, props) in &queues {
        let fifo = field(props, "FifoQueue").and_then(text).as_deref() == Some("true");
        let name = format!("{prefix}-{logical}{}", if fifo { ".fifo" } else { "" });
        let aws = |e: &dyn std::fmt::Display| ProvisionError::Aws(name.clone(), e.to_string());
        let mut req = sqs.create_queue().queue_name(&name);
        for (attr, value) in queue_attributes(props) {
            let value = match (&attr, visibility_override) {
                (QueueAttributeName::VisibilityTimeout, Some(v)) => v.to_string(),
                _ => value,
            };
            req = req.attributes(attr, value);
        }
        let url = req
            .send()
            .await
            .map_err(|e| aws(&aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url
            .unwrap_or_default();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws(&aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let arn = attrs
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned());
        out.queues.insert(
            logical.clone(),
            Created {
                name,
                url: Some(url),
                arn,
            },
        );
    }
    // Redrive policies point at other queues, so they are set once all queues exist.
    for (logical, props) in &queues {
        let Some(policy) = field(props, "RedrivePolicy") else {
            continue;
        };
        let target = field(policy, "deadLetterTargetArn")
            .and_then(get_att_target)
            .ok_or_else(|| {
                template_err(format!("{logical}: deadLetterTargetArn must be a GetAtt"))
            })?;
        let max = field(policy, "maxReceiveCount")
            .and_then(text)
            .ok_or_else(|| template_err("maxReceiveCount missing"))?;
        let dlq_arn = out
            .queues
            .get(&target)
            .and_then(|q| q.arn.clone())
            .ok_or_else(|| template_err(format!("no queue {target}")))?;
        let url = out.queues[logical].url.clone().unwrap_or_default();
        let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max })
            .to_string();
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .map_err(|e| {
                ProvisionError::Aws(
                    logical.clone(),
                    aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
                )
            })?;
    }
    Ok(out)
}
