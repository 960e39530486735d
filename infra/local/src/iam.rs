//! IAM as AWS enforces it, for the local stack: each function's own statements from
//! `template.yaml` (intrinsics resolved against the provisioned resources), and the
//! authorisation checks an AWS request needs, one per item where DynamoDB checks items
//! (transactions and batches included) with the `dynamodb:LeadingKeys` it carries.
//!
//! Our own small evaluator rather than a policy library: the template uses four statement
//! forms (Allow/Deny, Action, Resource, `ForAllValues:StringLike` on LeadingKeys), and the
//! part no library does for us is the per-item request analysis below; anything else in a
//! policy is refused when the template is read, so an unsupported form never passes silently.

use crate::provision::{ProvisionError, Resources, parse, resources_of};
use serde_json::Value as Json;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;

/// moto's account and the local region.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

fn err(msg: impl Into<String>) -> ProvisionError {
    ProvisionError::Template(msg.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One condition of a statement: `operator` (`StringLike`, `StringEquals`), whether it is
/// `ForAllValues:`, the context key and its patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub for_all_values: bool,
    pub like: bool,
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub conditions: Vec<Condition>,
}

/// What one request asks to do: an action on a resource, with the partition key values
/// (`dynamodb:LeadingKeys`) of the item or query it touches, when it touches one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub action: String,
    pub resource: String,
    pub leading_keys: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No statement allows it (AWS: "no identity-based policy allows").
    ImplicitDeny,
    /// A Deny statement matches.
    ExplicitDeny,
}

/// `*` and `?` wildcards, as IAM matches actions, resources and `StringLike`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl Condition {
    fn holds(&self, check: &Check) -> bool {
        let values = match self.key.to_ascii_lowercase().as_str() {
            "dynamodb:leadingkeys" => check.leading_keys.as_deref(),
            _ => None,
        };
        let matches = |v: &String| {
            self.values
                .iter()
                .any(|p| if self.like { glob(p, v) } else { p == v })
        };
        match (self.for_all_values, values) {
            // ForAllValues over a key the request does not carry is true, as in AWS
            // (which is why a Scan is not limited by LeadingKeys: the template grants none).
            (true, None) => true,
            (true, Some(vs)) => vs.iter().all(matches),
            (false, None) => false,
            (false, Some(vs)) => vs.iter().any(matches),
        }
    }
}

impl Statement {
    fn applies(&self, check: &Check) -> bool {
        self.actions
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &check.action.to_ascii_lowercase()))
            && self.resources.iter().any(|r| glob(r, &check.resource))
            && self.conditions.iter().all(|c| c.holds(check))
    }
}

/// IAM's evaluation for one identity policy: an explicit deny wins, then any allow.
pub fn evaluate(statements: &[Statement], check: &Check) -> Decision {
    let applying: Vec<&Statement> = statements.iter().filter(|s| s.applies(check)).collect();
    if applying.iter().any(|s| s.effect == Effect::Deny) {
        Decision::ExplicitDeny
    } else if applying.iter().any(|s| s.effect == Effect::Allow) {
        Decision::Allowed
    } else {
        Decision::ImplicitDeny
    }
}

/// What `!Ref`, `!GetAtt` and `${…}` resolve to in the local stack.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    /// `Ref` values by logical id or parameter name.
    pub refs: BTreeMap<String, String>,
    /// `GetAtt` values by `Logical.Attribute`.
    pub attributes: BTreeMap<String, String>,
}

impl Resolver {
    /// The provisioned tables, queues and buses, with their ARNs as AWS writes them, and
    /// the template's parameters as given (`StripeSecretArn` and the like).
    pub fn from_resources(resources: &Resources, parameters: &BTreeMap<String, String>) -> Self {
        let mut r = Resolver {
            refs: parameters.clone(),
            ..Default::default()
        };
        r.refs.insert("AWS::Region".into(), REGION.into());
        r.refs.insert("AWS::AccountId".into(), ACCOUNT.into());
        r.refs.insert("AWS::Partition".into(), "aws".into());
        r.refs
            .insert("AWS::URLSuffix".into(), "amazonaws.com".into());
        for (logical, t) in &resources.tables {
            r.refs.insert(logical.clone(), t.name.clone());
            r.attributes
                .insert(format!("{logical}.Arn"), table_arn(&t.name));
            if let Some(stream) = &t.arn {
                r.attributes
                    .insert(format!("{logical}.StreamArn"), stream.clone());
            }
        }
        for (logical, q) in &resources.queues {
            if let Some(url) = &q.url {
                r.refs.insert(logical.clone(), url.clone());
            }
            if let Some(arn) = &q.arn {
                r.attributes.insert(format!("{logical}.Arn"), arn.clone());
            }
            r.attributes
                .insert(format!("{logical}.QueueName"), q.name.clone());
        }
        for (logical, b) in &resources.buses {
            r.refs.insert(logical.clone(), b.name.clone());
            r.attributes.insert(
                format!("{logical}.Arn"),
                b.arn.clone().unwrap_or_else(|| bus_arn(&b.name)),
            );
        }
        r
    }

    fn lookup(&self, name: &str) -> Result<String, ProvisionError> {
        if let Some((logical, attr)) = name.split_once('.') {
            return self
                .attributes
                .get(&format!("{logical}.{attr}"))
                .cloned()
                .ok_or_else(|| err(format!("cannot resolve !GetAtt {name} locally")));
        }
        self.refs
            .get(name)
            .cloned()
            .ok_or_else(|| err(format!("cannot resolve !Ref {name} locally")))
    }

    fn sub(&self, text: &str) -> Result<String, ProvisionError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| err(format!("unclosed ${{ in !Sub {text}")))?;
            out.push_str(&self.lookup(&rest[start + 2..start + end])?);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A resource value: a plain string or one intrinsic (short or long form).
    pub fn resolve(&self, v: &Value) -> Result<String, ProvisionError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Tagged(t) => {
                let tag = t.tag.to_string();
                let tag = tag.trim_start_matches('!');
                self.intrinsic(tag, &t.value)
            }
            Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one entry");
                let name = k.as_str().unwrap_or_default();
                let tag = name.strip_prefix("Fn::").unwrap_or(name);
                self.intrinsic(tag, v)
            }
            other => Err(err(format!("unsupported resource value {other:?}"))),
        }
    }

    fn intrinsic(&self, tag: &str, v: &Value) -> Result<String, ProvisionError> {
        match (tag, v) {
            ("Ref", Value::String(s)) => self.lookup(s),
            ("GetAtt", Value::String(s)) => self.lookup(s),
            ("GetAtt", Value::Sequence(parts)) if parts.len() == 2 => self.lookup(&format!(
                "{}.{}",
                parts[0].as_str().unwrap_or_default(),
                parts[1].as_str().unwrap_or_default()
            )),
            ("Sub", Value::String(s)) => self.sub(s),
            ("Join", Value::Sequence(parts)) if parts.len() == 2 => {
                let sep = parts[0].as_str().unwrap_or_default();
                let items = parts[1]
                    .as_sequence()
                    .ok_or_else(|| err("Fn::Join needs a list"))?
                    .iter()
                    .map(|i| self.resolve(i))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(items.join(sep))
            }
            (tag, v) => Err(err(format!(
                "unsupported intrinsic {tag} {v:?} in a policy"
            ))),
        }
    }
}

/// The template's parameters as the local stack deploys it: each one's `Default`, then any
/// local variable of the same name in SCREAMING_SNAKE_CASE (`StripeSecretArn` ←
/// `STRIPE_SECRET_ARN`). A parameter with neither resolves to a local ARN of its name, which
/// only that name's resource matches.
pub fn parameters(
    template: &str,
    env: &std::collections::HashMap<String, String>,
) -> Result<BTreeMap<String, String>, ProvisionError> {
    let doc = parse(template)?;
    let mut out = BTreeMap::new();
    for (name, p) in doc
        .get("Parameters")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
    {
        let Some(name) = name.as_str() else { continue };
        let mut snake = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_uppercase());
        }
        let value = env
            .get(&snake)
            .cloned()
            .or_else(|| match p.get("Default") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| format!("arn:aws:local:{REGION}:{ACCOUNT}:parameter/{name}"));
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

pub fn table_arn(name: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
}

pub fn bus_arn(name: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_owned();
    }
    format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}")
}

fn strings(v: Option<&Value>, resolver: Option<&Resolver>) -> Result<Vec<String>, ProvisionError> {
    let one = |v: &Value| match resolver {
        Some(r) => r.resolve(v),
        None => v
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| err(format!("expected a string, got {v:?}"))),
    };
    match v {
        None => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items.iter().map(one).collect(),
        Some(v) => Ok(vec![one(v)?]),
    }
}

fn statement(v: &Value, resolver: &Resolver) -> Result<Statement, ProvisionError> {
    let m = v
        .as_mapping()
        .ok_or_else(|| err("a policy statement is not a mapping"))?;
    for key in m.keys().filter_map(Value::as_str) {
        if !matches!(key, "Sid" | "Effect" | "Action" | "Resource" | "Condition") {
            return Err(err(format!(
                "policy statement field {key} is not enforced locally"
            )));
        }
    }
    let effect = match m.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        other => return Err(err(format!("statement Effect {other:?}"))),
    };
    let mut conditions = Vec::new();
    if let Some(c) = m.get("Condition") {
        for (op, keys) in c
            .as_mapping()
            .ok_or_else(|| err("Condition is not a mapping"))?
        {
            let op = op.as_str().unwrap_or_default();
            let (for_all_values, base) = match op.strip_prefix("ForAllValues:") {
                Some(base) => (true, base),
                None => (false, op),
            };
            let like = match base {
                "StringLike" => true,
                "StringEquals" => false,
                _ => {
                    return Err(err(format!(
                        "condition operator {op} is not enforced locally"
                    )));
                }
            };
            for (key, values) in keys
                .as_mapping()
                .ok_or_else(|| err("condition keys are not a mapping"))?
            {
                let key = key.as_str().unwrap_or_default().to_owned();
                if !key.eq_ignore_ascii_case("dynamodb:LeadingKeys") {
                    return Err(err(format!("condition key {key} is not enforced locally")));
                }
                conditions.push(Condition {
                    for_all_values,
                    like,
                    key,
                    values: strings(Some(values), None)?,
                });
            }
        }
    }
    Ok(Statement {
        sid: m.get("Sid").and_then(Value::as_str).map(str::to_owned),
        effect,
        actions: strings(m.get("Action"), None)?,
        resources: strings(m.get("Resource"), Some(resolver))?,
        conditions,
    })
}

/// A function of the template: its logical id, its binary, its resolved statements.
#[derive(Debug, Clone)]
pub struct FunctionPolicy {
    pub logical_id: String,
    pub binary: String,
    pub statements: Vec<Statement>,
}

/// Every function's policy, from its `Policies` (inline statements only: a SAM policy
/// template or a managed policy name is refused, as its expansion is not in the template).
pub fn function_policies(
    template: &str,
    resolver: &Resolver,
) -> Result<Vec<FunctionPolicy>, ProvisionError> {
    let doc = parse(template)?;
    let all = doc.get("Resources").and_then(Value::as_mapping);
    let mut out = Vec::new();
    for (logical, props) in resources_of(&doc, "AWS::Serverless::Function") {
        let binary = all
            .and_then(|r| r.get(logical.as_str()))
            .and_then(|r| r.get("Metadata"))
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or_else(|| err(format!("{logical} names no Binary")))?
            .to_owned();
        let mut statements = Vec::new();
        let policies = match props.get("Policies") {
            None => Vec::new(),
            Some(Value::Sequence(p)) => p.clone(),
            Some(other) => vec![other.clone()],
        };
        for policy in &policies {
            let Some(list) = policy.get("Statement") else {
                return Err(err(format!(
                    "{logical}: policy {policy:?} is not an inline statement list; write it out \
                     as statements so the local stack can enforce it"
                )));
            };
            let list = match list {
                Value::Sequence(s) => s.clone(),
                other => vec![other.clone()],
            };
            for s in &list {
                statements
                    .push(statement(s, resolver).map_err(|e| err(format!("{logical}: {e}")))?);
            }
        }
        out.push(FunctionPolicy {
            logical_id: logical,
            binary,
            statements,
        });
    }
    Ok(out)
}

/// The names, keys and ARNs a request is analysed with.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Table name → (partition key attribute, index name → index partition key attribute).
    pub tables: BTreeMap<String, (String, BTreeMap<String, String>)>,
    /// Queue URL → ARN.
    pub queues: BTreeMap<String, String>,
}

impl Catalog {
    /// The key schema of the template's tables, by their provisioned names.
    pub fn new(template: &str, resources: &Resources) -> Result<Self, ProvisionError> {
        let doc = parse(template)?;
        let mut tables = BTreeMap::new();
        let hash = |schema: Option<&Value>| -> Option<String> {
            schema?.as_sequence()?.iter().find_map(|k| {
                (k.get("KeyType")?.as_str()? == "HASH")
                    .then(|| k.get("AttributeName")?.as_str().map(str::to_owned))?
            })
        };
        for (logical, props) in resources_of(&doc, "AWS::DynamoDB::Table") {
            let Some(created) = resources.tables.get(&logical) else {
                continue;
            };
            let pk = hash(props.get("KeySchema")).ok_or_else(|| err("table without HASH key"))?;
            let mut indexes = BTreeMap::new();
            for i in props
                .get("GlobalSecondaryIndexes")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .chain(
                    props
                        .get("LocalSecondaryIndexes")
                        .and_then(Value::as_sequence)
                        .into_iter()
                        .flatten(),
                )
            {
                if let (Some(name), Some(key)) = (
                    i.get("IndexName").and_then(Value::as_str),
                    hash(i.get("KeySchema")),
                ) {
                    indexes.insert(name.to_owned(), key);
                }
            }
            tables.insert(created.name.clone(), (pk, indexes));
        }
        let queues = resources
            .queues
            .values()
            .filter_map(|q| Some((q.url.clone()?, q.arn.clone()?)))
            .collect();
        Ok(Catalog { tables, queues })
    }

    fn queue_arn(&self, url: &str) -> String {
        self.queues.get(url).cloned().unwrap_or_else(|| {
            let name = url.rsplit('/').next().unwrap_or(url);
            format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
        })
    }
}

fn s(v: &Json) -> Option<String> {
    v.get("S")
        .or_else(|| v.get("N"))
        .and_then(Json::as_str)
        .map(str::to_owned)
}

/// The partition key value of an item or key map.
fn item_key(catalog: &Catalog, table: &str, key: Option<&Json>) -> Option<Vec<String>> {
    let (pk, _) = catalog.tables.get(table)?;
    key?.get(pk).and_then(s).map(|v| vec![v])
}

/// The partition key a Query names in its key condition (`#pk = :v` or `pk = :v`).
fn query_key(body: &Json, key_attr: &str) -> Option<Vec<String>> {
    if let Some(kc) = body.get("KeyConditions").and_then(|k| k.get(key_attr)) {
        return kc
            .get("AttributeValueList")?
            .as_array()?
            .first()
            .and_then(s)
            .map(|v| vec![v]);
    }
    let expr = body.get("KeyConditionExpression")?.as_str()?;
    let names = body.get("ExpressionAttributeNames");
    let values = body.get("ExpressionAttributeValues");
    let lower = expr.to_ascii_lowercase();
    let mut clauses = Vec::new();
    let mut start = 0;
    while let Some(i) = lower[start..].find(" and ") {
        clauses.push(&expr[start..start + i]);
        start += i + 5;
    }
    clauses.push(&expr[start..]);
    for clause in clauses {
        let clause = clause.trim().trim_start_matches('(').trim_end_matches(')');
        let Some(eq) = clause.find('=') else { continue };
        if eq > 0 && matches!(clause.as_bytes()[eq - 1], b'<' | b'>' | b'!') {
            continue;
        }
        let (left, right) = (clause[..eq].trim(), clause[eq + 1..].trim());
        let name = if left.starts_with('#') {
            names
                .and_then(|n| n.get(left))
                .and_then(Json::as_str)
                .unwrap_or(left)
        } else {
            left
        };
        if name == key_attr {
            return values
                .and_then(|v| v.get(right))
                .and_then(s)
                .map(|v| vec![v]);
        }
    }
    None
}

/// The checks one request needs: `target` is its `X-Amz-Target` (`Service.Operation`).
pub fn checks(target: &str, body: &Json, catalog: &Catalog) -> Result<Vec<Check>, String> {
    let (service, op) = target
        .split_once('.')
        .ok_or_else(|| format!("no operation in target {target}"))?;
    let str_field = |name: &str| body.get(name).and_then(Json::as_str).map(str::to_owned);
    let one = |action: String, resource: String, leading_keys: Option<Vec<String>>| Check {
        action,
        resource,
        leading_keys,
    };
    match service {
        "DynamoDB_20120810" => {
            let item_check =
                |action: &str, item: &Json, key_field: &str| -> Result<Check, String> {
                    let table = item
                        .get("TableName")
                        .and_then(Json::as_str)
                        .ok_or("item without TableName")?;
                    Ok(one(
                        format!("dynamodb:{action}"),
                        table_arn(table),
                        item_key(catalog, table, item.get(key_field)),
                    ))
                };
            match op {
                "GetItem" | "UpdateItem" | "DeleteItem" => Ok(vec![item_check(op, body, "Key")?]),
                "PutItem" => Ok(vec![item_check(op, body, "Item")?]),
                "TransactWriteItems" | "TransactGetItems" => body
                    .get("TransactItems")
                    .and_then(Json::as_array)
                    .ok_or("no TransactItems")?
                    .iter()
                    .map(|entry| {
                        let (kind, item) = entry
                            .as_object()
                            .and_then(|o| o.iter().next())
                            .ok_or("empty transaction item")?;
                        let (action, key_field) = match kind.as_str() {
                            "Put" => ("PutItem", "Item"),
                            "Update" => ("UpdateItem", "Key"),
                            "Delete" => ("DeleteItem", "Key"),
                            "ConditionCheck" => ("ConditionCheckItem", "Key"),
                            "Get" => ("GetItem", "Key"),
                            other => return Err(format!("transaction item {other}")),
                        };
                        item_check(action, item, key_field)
                    })
                    .collect(),
                "BatchGetItem" | "BatchWriteItem" => {
                    let mut out = Vec::new();
                    for (table, request) in body
                        .get("RequestItems")
                        .and_then(Json::as_object)
                        .ok_or("no RequestItems")?
                    {
                        let keys: Vec<Option<&Json>> = if op == "BatchGetItem" {
                            request
                                .get("Keys")
                                .and_then(Json::as_array)
                                .map(|k| k.iter().map(Some).collect())
                                .unwrap_or_default()
                        } else {
                            request
                                .as_array()
                                .map(|r| {
                                    r.iter()
                                        .map(|w| {
                                            w.pointer("/PutRequest/Item")
                                                .or_else(|| w.pointer("/DeleteRequest/Key"))
                                        })
                                        .collect()
                                })
                                .unwrap_or_default()
                        };
                        for key in keys {
                            out.push(one(
                                format!("dynamodb:{op}"),
                                table_arn(table),
                                item_key(catalog, table, key),
                            ));
                        }
                    }
                    Ok(out)
                }
                "Query" | "Scan" => {
                    let table = str_field("TableName").ok_or("no TableName")?;
                    let index = str_field("IndexName");
                    let resource = match &index {
                        Some(i) => format!("{}/index/{i}", table_arn(&table)),
                        None => table_arn(&table),
                    };
                    let key_attr = catalog
                        .tables
                        .get(&table)
                        .and_then(|(pk, idx)| match &index {
                            Some(i) => idx.get(i).cloned(),
                            None => Some(pk.clone()),
                        });
                    let keys = match (op, key_attr) {
                        ("Query", Some(k)) => query_key(body, &k),
                        _ => None,
                    };
                    Ok(vec![one(format!("dynamodb:{op}"), resource, keys)])
                }
                _ => {
                    let table = str_field("TableName").unwrap_or_else(|| "*".into());
                    Ok(vec![one(format!("dynamodb:{op}"), table_arn(&table), None)])
                }
            }
        }
        "DynamoDBStreams_20120810" => {
            // GetRecords names only its iterator, which moto and DynamoDB derive from the
            // stream; the local stack's iterators carry the stream ARN as their prefix.
            let stream = str_field("StreamArn")
                .or_else(|| {
                    str_field("ShardIterator")
                        .and_then(|it| it.split('|').next().map(str::to_owned))
                        .filter(|a| a.starts_with("arn:"))
                })
                .or_else(|| str_field("TableName").map(|t| format!("{}/stream/*", table_arn(&t))))
                .unwrap_or_else(|| "*".into());
            Ok(vec![one(format!("dynamodb:{op}"), stream, None)])
        }
        "AmazonSQS" => {
            let action = match op {
                "SendMessageBatch" => "SendMessage",
                "DeleteMessageBatch" => "DeleteMessage",
                "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
                other => other,
            };
            let resource = match (str_field("QueueUrl"), str_field("QueueName")) {
                (Some(url), _) => catalog.queue_arn(&url),
                (None, Some(name)) => format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"),
                _ => "*".into(),
            };
            Ok(vec![one(format!("sqs:{action}"), resource, None)])
        }
        "AWSEvents" => {
            if op == "PutEvents" {
                return Ok(body
                    .get("Entries")
                    .and_then(Json::as_array)
                    .ok_or("no Entries")?
                    .iter()
                    .map(|e| {
                        let bus = e
                            .get("EventBusName")
                            .and_then(Json::as_str)
                            .unwrap_or("default");
                        one("events:PutEvents".into(), bus_arn(bus), None)
                    })
                    .collect());
            }
            let bus = str_field("EventBusName")
                .or_else(|| str_field("Name"))
                .unwrap_or_else(|| "default".into());
            Ok(vec![one(format!("events:{op}"), bus_arn(&bus), None)])
        }
        "secretsmanager" => {
            let id = str_field("SecretId").unwrap_or_else(|| "*".into());
            let arn = if id.starts_with("arn:") {
                id
            } else {
                format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{id}")
            };
            Ok(vec![one(format!("secretsmanager:{op}"), arn, None)])
        }
        other => Err(format!(
            "service {other} is not known to the local IAM check"
        )),
    }
}

/// The service's own answer to a denied request: status, content type and body.
pub fn denial(
    target: &str,
    principal: &str,
    check: &Check,
    decision: Decision,
) -> (u16, &'static str, String) {
    let why = match decision {
        Decision::ExplicitDeny => "with an explicit deny in an identity-based policy",
        _ => "because no identity-based policy allows the action",
    };
    let message = format!(
        "User: arn:aws:sts::{ACCOUNT}:assumed-role/{principal}Role/{principal} is not authorized \
         to perform: {} on resource: {} {why}",
        check.action, check.resource
    );
    let service = target.split('.').next().unwrap_or_default();
    match service {
        "DynamoDB_20120810" | "DynamoDBStreams_20120810" => (
            400,
            "application/x-amz-json-1.0",
            serde_json::json!({
                "__type": "com.amazon.coral.service#AccessDeniedException",
                "Message": message,
            })
            .to_string(),
        ),
        "AmazonSQS" => (
            403,
            "application/x-amz-json-1.0",
            serde_json::json!({
                "__type": "com.amazon.coral.service#AccessDeniedException",
                "message": message,
            })
            .to_string(),
        ),
        _ => (
            400,
            "application/x-amz-json-1.1",
            serde_json::json!({ "__type": "AccessDeniedException", "Message": message })
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TABLE: &str = "t1";

    fn catalog() -> Catalog {
        Catalog {
            tables: BTreeMap::from([(
                TABLE.to_owned(),
                (
                    "pk".to_owned(),
                    BTreeMap::from([("gsi2".to_owned(), "gsi2pk".to_owned())]),
                ),
            )]),
            queues: BTreeMap::new(),
        }
    }

    fn policy(yaml: &str) -> Vec<Statement> {
        let v: Value = serde_yaml_ng::from_str(yaml).unwrap();
        let mut r = Resolver::default();
        r.attributes
            .insert("BillingTable.Arn".into(), table_arn(TABLE));
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|s| statement(s, &r).unwrap())
            .collect()
    }

    fn user_records() -> Vec<Statement> {
        policy(
            r#"
- Effect: Allow
  Action: [dynamodb:GetItem, dynamodb:UpdateItem, dynamodb:PutItem]
  Resource: !GetAtt BillingTable.Arn
  Condition:
    ForAllValues:StringLike:
      dynamodb:LeadingKeys: ["USER#*"]
- Effect: Allow
  Action: dynamodb:Query
  Resource: !Sub "${BillingTable.Arn}/index/gsi2"
"#,
        )
    }

    fn decide(statements: &[Statement], target: &str, body: Json) -> Vec<Decision> {
        checks(target, &body, &catalog())
            .unwrap()
            .iter()
            .map(|c| evaluate(statements, c))
            .collect()
    }

    fn get(pk: &str) -> Json {
        json!({"TableName": TABLE, "Key": {"pk": {"S": pk}, "sk": {"S": "PROFILE"}}})
    }

    #[test]
    fn an_action_on_an_allowed_key_of_the_table_is_allowed() {
        assert_eq!(
            decide(&user_records(), "DynamoDB_20120810.GetItem", get("USER#u1")),
            [Decision::Allowed]
        );
    }

    #[test]
    fn an_action_no_statement_names_is_denied() {
        assert_eq!(
            decide(
                &user_records(),
                "DynamoDB_20120810.DeleteItem",
                get("USER#u1")
            ),
            [Decision::ImplicitDeny]
        );
    }

    #[test]
    fn another_table_is_denied_by_resource() {
        let body = json!({"TableName": "other", "Key": {"pk": {"S": "USER#u1"}}});
        assert_eq!(
            decide(&user_records(), "DynamoDB_20120810.GetItem", body),
            [Decision::ImplicitDeny]
        );
    }

    #[test]
    fn a_key_outside_the_leading_keys_condition_is_denied() {
        assert_eq!(
            decide(
                &user_records(),
                "DynamoDB_20120810.GetItem",
                get("CHECKOUT#cs_1")
            ),
            [Decision::ImplicitDeny]
        );
    }

    #[test]
    fn each_transaction_item_is_checked_on_its_own_key() {
        let body = json!({"TransactItems": [
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "USER#u1"}}}},
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "CHECKOUT#cs_1"}}}},
            {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "USER#u1"}}}},
        ]});
        assert_eq!(
            decide(
                &user_records(),
                "DynamoDB_20120810.TransactWriteItems",
                body
            ),
            [
                Decision::Allowed,
                Decision::ImplicitDeny,
                Decision::ImplicitDeny
            ],
            "the put is outside USER#, the condition check is an action of its own"
        );
    }

    #[test]
    fn each_item_of_a_batch_and_of_a_read_transaction_is_checked() {
        let batch = json!({"RequestItems": {TABLE: {"Keys": [
            {"pk": {"S": "USER#u1"}}, {"pk": {"S": "REFERRAL#x"}}
        ]}}});
        let checks_of = checks("DynamoDB_20120810.BatchGetItem", &batch, &catalog()).unwrap();
        assert_eq!(checks_of.len(), 2);
        assert_eq!(
            checks_of[1].leading_keys.as_deref(),
            Some(&["REFERRAL#x".to_owned()][..])
        );
        let read = json!({"TransactItems": [
            {"Get": {"TableName": TABLE, "Key": {"pk": {"S": "USER#u1"}}}},
            {"Get": {"TableName": TABLE, "Key": {"pk": {"S": "EVENT#e"}}}},
        ]});
        assert_eq!(
            decide(&user_records(), "DynamoDB_20120810.TransactGetItems", read),
            [Decision::Allowed, Decision::ImplicitDeny]
        );
    }

    #[test]
    fn an_index_is_a_resource_of_its_own() {
        let on_index = json!({"TableName": TABLE, "IndexName": "gsi2",
            "KeyConditionExpression": "#p = :p", "ExpressionAttributeNames": {"#p": "gsi2pk"},
            "ExpressionAttributeValues": {":p": {"S": "PURCHASES#u1"}}});
        let c = checks("DynamoDB_20120810.Query", &on_index, &catalog()).unwrap();
        assert_eq!(c[0].resource, format!("{}/index/gsi2", table_arn(TABLE)));
        assert_eq!(
            c[0].leading_keys.as_deref(),
            Some(&["PURCHASES#u1".to_owned()][..])
        );
        assert_eq!(evaluate(&user_records(), &c[0]), Decision::Allowed);
        let on_table = json!({"TableName": TABLE, "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": "USER#u1"}, ":s": {"S": "SUB#"}}});
        assert_eq!(
            decide(&user_records(), "DynamoDB_20120810.Query", on_table),
            [Decision::ImplicitDeny],
            "the index grant does not reach the table"
        );
    }

    #[test]
    fn an_explicit_deny_wins_over_an_allow() {
        let mut statements = user_records();
        statements.extend(policy(
            "- Effect: Deny\n  Action: dynamodb:*\n  Resource: \"*\"\n",
        ));
        assert_eq!(
            decide(&statements, "DynamoDB_20120810.GetItem", get("USER#u1")),
            [Decision::ExplicitDeny]
        );
    }

    #[test]
    fn a_statement_form_the_evaluator_does_not_know_is_refused_not_ignored() {
        let v: Value = serde_yaml_ng::from_str(
            "Effect: Allow\nAction: s3:GetObject\nResource: \"*\"\nCondition:\n  IpAddress:\n    aws:SourceIp: 10.0.0.0/8\n",
        )
        .unwrap();
        assert!(statement(&v, &Resolver::default()).is_err());
        let sam_template = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildProperties:\n        Binary: f\n    Properties:\n      Policies:\n        - DynamoDBCrudPolicy:\n            TableName: t\n";
        assert!(function_policies(sam_template, &Resolver::default()).is_err());
    }

    #[test]
    fn sqs_events_and_secrets_name_their_resources_by_arn() {
        let mut c = catalog();
        c.queues.insert(
            "http://q/1/fulfil.fifo".into(),
            "arn:aws:sqs:us-east-1:1:fulfil.fifo".into(),
        );
        let send = checks(
            "AmazonSQS.SendMessageBatch",
            &json!({"QueueUrl": "http://q/1/fulfil.fifo"}),
            &c,
        )
        .unwrap();
        assert_eq!(send[0].action, "sqs:SendMessage");
        assert_eq!(send[0].resource, "arn:aws:sqs:us-east-1:1:fulfil.fifo");
        let put = checks(
            "AWSEvents.PutEvents",
            &json!({"Entries": [{"EventBusName": "b"}, {}]}),
            &c,
        )
        .unwrap();
        assert_eq!(
            put.iter().map(|c| c.resource.as_str()).collect::<Vec<_>>(),
            [bus_arn("b"), bus_arn("default")]
        );
        let secret = checks(
            "secretsmanager.GetSecretValue",
            &json!({"SecretId": "arn:aws:secretsmanager:us-east-1:1:secret:s-AbC"}),
            &c,
        )
        .unwrap();
        assert_eq!(
            secret[0].resource,
            "arn:aws:secretsmanager:us-east-1:1:secret:s-AbC"
        );
    }

    #[test]
    fn a_dynamodb_denial_is_answered_as_dynamodb_answers_it() {
        let check =
            &checks("DynamoDB_20120810.GetItem", &get("CHECKOUT#x"), &catalog()).unwrap()[0];
        let (status, _, body) = denial(
            "DynamoDB_20120810.GetItem",
            "CheckoutFunction",
            check,
            Decision::ImplicitDeny,
        );
        assert_eq!(status, 400);
        let body: Json = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body["__type"],
            "com.amazon.coral.service#AccessDeniedException"
        );
        assert!(
            body["Message"]
                .as_str()
                .unwrap()
                .contains("dynamodb:GetItem")
        );
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(glob("USER#*", "USER#u1"));
        assert!(glob("arn:*:table/t?", "arn:aws:table/t1"));
        assert!(!glob("USER#*", "XUSER#u1"));
        assert!(glob("*", ""));
    }
}
