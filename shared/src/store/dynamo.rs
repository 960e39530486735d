//! The DynamoDB adapter of the store port. Conditions and updates are rendered to
//! expressions with placeholders (never string-spliced values), reads are strongly
//! consistent, and a cancelled transaction reports which writes' conditions failed.

use super::{
    Cond, Index, Item, ItemExt, Key, Op, Page, StoreError, Table, Value, Write,
    validate_transaction,
};
use crate::store::schema::{PK, SK};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use std::collections::HashMap;

mod query;

#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
    /// At most this many items per index `Query` request, to make DynamoDB cut its pages
    /// short as its 1 MB limit does (the contract suite's knob; `None` in service).
    request_item_cap: Option<usize>,
}

impl DynamoTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            request_item_cap: None,
        }
    }
    /// Caps every index `Query` request at `items`, so one page takes several requests.
    pub fn with_request_item_cap(mut self, items: usize) -> Self {
        self.request_item_cap = Some(items.max(1));
        self
    }
    pub fn client(&self) -> &Client {
        &self.client
    }
    pub fn table_name(&self) -> &str {
        &self.table
    }
}

fn to_attr(v: &Value) -> AttributeValue {
    match v {
        Value::S(s) => AttributeValue::S(s.clone()),
        Value::N(n) => AttributeValue::N(n.to_string()),
        Value::B(b) => AttributeValue::Bool(*b),
    }
}

fn from_attrs(map: HashMap<String, AttributeValue>) -> Item {
    map.into_iter()
        .filter_map(|(k, v)| {
            let value = match v {
                AttributeValue::S(s) => Value::S(s),
                AttributeValue::N(n) => Value::N(n.parse().ok()?),
                AttributeValue::Bool(b) => Value::B(b),
                _ => return None,
            };
            Some((k, value))
        })
        .collect()
}

fn key_attrs(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn item_attrs(key: &Key, item: &Item) -> HashMap<String, AttributeValue> {
    let mut map: HashMap<_, _> = item.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect();
    map.extend(key_attrs(key));
    map
}

/// Placeholders for one request's expressions.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, attr: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| a.as_str() == attr) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }
    fn value(&mut self, v: &Value) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), to_attr(v));
        placeholder
    }
    fn cond(&mut self, c: &Cond) -> String {
        match c {
            Cond::ItemExists => format!("attribute_exists({})", self.name(PK)),
            Cond::ItemNotExists => format!("attribute_not_exists({})", self.name(PK)),
            Cond::Exists(a) => format!("attribute_exists({})", self.name(a)),
            Cond::NotExists(a) => format!("attribute_not_exists({})", self.name(a)),
            Cond::Eq(a, v) => format!("{} = {}", self.name(a), self.value(v)),
            Cond::Lt(a, v) => format!("{} < {}", self.name(a), self.value(v)),
            Cond::Ge(a, v) => format!("{} >= {}", self.name(a), self.value(v)),
            Cond::In(a, vs) => {
                let n = self.name(a);
                let list: Vec<String> = vs.iter().map(|v| self.value(v)).collect();
                format!("{n} IN ({})", list.join(", "))
            }
            Cond::And(cs) => self.join(
                cs,
                " AND ",
                "attribute_exists(pk) OR attribute_not_exists(pk)",
            ),
            Cond::Or(cs) => self.join(
                cs,
                " OR ",
                "attribute_exists(pk) AND attribute_not_exists(pk)",
            ),
        }
    }
    fn join(&mut self, cs: &[Cond], sep: &str, empty: &str) -> String {
        if cs.is_empty() {
            return empty.to_owned();
        }
        let parts: Vec<String> = cs.iter().map(|c| format!("({})", self.cond(c))).collect();
        parts.join(sep)
    }
    fn update(&mut self, ops: &[Op]) -> String {
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        for op in ops {
            match op {
                Op::Set(a, v) => set.push(format!("{} = {}", self.name(a), self.value(v))),
                Op::SetIfMissing(a, v) => {
                    let n = self.name(a);
                    set.push(format!("{n} = if_not_exists({n}, {})", self.value(v)))
                }
                Op::Add(a, n) => {
                    add.push(format!("{} {}", self.name(a), self.value(&Value::N(*n))))
                }
                Op::Remove(a) => remove.push(self.name(a)),
            }
        }
        let mut clauses = Vec::new();
        if !set.is_empty() {
            clauses.push(format!("SET {}", set.join(", ")));
        }
        if !add.is_empty() {
            clauses.push(format!("ADD {}", add.join(", ")));
        }
        if !remove.is_empty() {
            clauses.push(format!("REMOVE {}", remove.join(", ")));
        }
        clauses.join(" ")
    }
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn unavailable<E: std::error::Error + 'static, R>(err: SdkError<E, R>) -> StoreError
where
    R: std::fmt::Debug,
    SdkError<E, R>: std::error::Error,
{
    StoreError::Unavailable(DisplayErrorContext(&err).to_string())
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Invalid(e.to_string()))
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item.map(from_attrs))
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start);
            // DynamoDB refuses an empty string in a key condition: no prefix, no sort-key test.
            request = if sk_prefix.is_empty() {
                request.key_condition_expression("#pk = :pk")
            } else {
                request
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.to_owned()))
            };
            let out = request.send().await.map_err(unavailable)?;
            items.extend(out.items.unwrap_or_default().into_iter().map(from_attrs));
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    async fn query_page(
        &self,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        // DynamoDB refuses an empty string in a key condition; `BETWEEN` with the cursor (or
        // the prefix's upper end) as upper bound keeps the range within the prefix. The
        // bound is inclusive, so the cursor's own item is dropped below.
        let upper = after.map_or_else(|| format!("{sk_prefix}\u{10FFFF}"), str::to_owned);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .expression_attribute_values(":upper", AttributeValue::S(upper))
            .consistent_read(true);
        request = if sk_prefix.is_empty() {
            request.key_condition_expression("#pk = :pk AND #sk < :upper")
        } else {
            request
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lower AND :upper")
                .expression_attribute_values(":lower", AttributeValue::S(sk_prefix.to_owned()))
        };
        let in_range = |i: &Item| {
            i.str(SK)
                .is_some_and(|sk| sk.starts_with(sk_prefix) && after.is_none_or(|c| sk < c))
        };
        self.newest_first(request, limit, SK, in_range).await
    }

    async fn query_index(
        &self,
        index: &Index,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index.name)
            .expression_attribute_names("#p", index.pk)
            .expression_attribute_values(":p", AttributeValue::S(pk.to_owned()));
        request = match after {
            Some(cursor) => request
                .key_condition_expression("#p = :p AND #s < :after")
                .expression_attribute_names("#s", index.sk)
                .expression_attribute_values(":after", AttributeValue::S(cursor.to_owned())),
            None => request.key_condition_expression("#p = :p"),
        };
        self.newest_first(request, limit, index.sk, |_| true).await
    }

    async fn put(&self, key: &Key, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        let mut expr = Expr::default();
        let condition = cond.as_ref().map(|c| expr.cond(c));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_attrs(key, &item)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::ConditionFailed),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn update(
        &self,
        key: &Key,
        ops: Vec<Op>,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        let mut expr = Expr::default();
        let update = expr.update(&ops);
        let condition = cond.as_ref().map(|c| expr.cond(c));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(from_attrs(out.attributes.unwrap_or_default())),
            Err(e) if is_condition_failure(&e) => Err(StoreError::ConditionFailed),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_transaction(&writes)?;
        let mut items = Vec::with_capacity(writes.len());
        for w in &writes {
            let mut expr = Expr::default();
            let item = match w {
                Write::Put { key, item, cond } => {
                    let condition = cond.as_ref().map(|c| expr.cond(c));
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item_attrs(key, item)))
                        .set_condition_expression(condition)
                        .set_expression_attribute_names(expr.names())
                        .set_expression_attribute_values(expr.values());
                    TransactWriteItem::builder()
                        .put(built(put.build())?)
                        .build()
                }
                Write::Update { key, ops, cond } => {
                    let update = expr.update(ops);
                    let condition = cond.as_ref().map(|c| expr.cond(c));
                    let up = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        .update_expression(update)
                        .set_condition_expression(condition)
                        .set_expression_attribute_names(expr.names())
                        .set_expression_attribute_values(expr.values());
                    TransactWriteItem::builder()
                        .update(built(up.build())?)
                        .build()
                }
                Write::Check { key, cond } => {
                    let condition = expr.cond(cond);
                    let check = ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        .condition_expression(condition)
                        .set_expression_attribute_names(expr.names())
                        .set_expression_attribute_values(expr.values());
                    TransactWriteItem::builder()
                        .condition_check(built(check.build())?)
                        .build()
                }
                Write::Delete { key, cond } => {
                    let condition = cond.as_ref().map(|c| expr.cond(c));
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        .set_condition_expression(condition)
                        .set_expression_attribute_names(expr.names())
                        .set_expression_attribute_values(expr.values());
                    TransactWriteItem::builder()
                        .delete(built(delete.build())?)
                        .build()
                }
            };
            items.push(item);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
        match err.as_service_error() {
            Some(E::TransactionCanceledException(cancel)) => {
                let reasons = cancel.cancellation_reasons();
                let failed: Vec<usize> = reasons
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                    .map(|(i, _)| i)
                    .collect();
                if !failed.is_empty() {
                    Err(StoreError::TransactionConditionFailed(failed))
                } else if reasons
                    .iter()
                    .any(|r| r.code() == Some("TransactionConflict"))
                {
                    Err(StoreError::Conflict)
                } else {
                    Err(unavailable(err))
                }
            }
            Some(E::TransactionInProgressException(_)) => Err(StoreError::Conflict),
            _ => Err(unavailable(err)),
        }
    }
}
