//! Paged queries, newest first: what the table's and the indexes' pages share.

use super::{DynamoTable, from_attrs, unavailable};
use crate::store::{Item, ItemExt, Page, StoreError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

impl DynamoTable {
    /// One page of `request`'s items, largest sort key first: up to `limit` of those `keep`
    /// takes, and the cursor (`sort_attr` of the last) when more may follow. DynamoDB ends
    /// a request at `Limit` items or 1 MB evaluated, whichever comes first: keep asking until
    /// the page is full (one more than asked tells whether another page exists) or DynamoDB
    /// says nothing follows.
    pub(super) async fn newest_first(
        &self,
        request: QueryFluentBuilder,
        limit: usize,
        sort_attr: &str,
        keep: impl Fn(&Item) -> bool,
    ) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut items: Vec<Item> = Vec::new();
        let mut start = None;
        let more = loop {
            let wanted = limit + 1 - items.len();
            let wanted = self.request_item_cap.map_or(wanted, |cap| wanted.min(cap));
            let out = request
                .clone()
                .scan_index_forward(false)
                .limit(wanted as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            let got = out.items.unwrap_or_default().into_iter().map(from_attrs);
            items.extend(got.filter(|i| keep(i)));
            if items.len() > limit {
                break true;
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break false,
            }
        };
        items.truncate(limit);
        let next = more
            .then(|| {
                items
                    .last()
                    .and_then(|i| i.str(sort_attr))
                    .map(str::to_owned)
            })
            .flatten();
        Ok(Page { items, next })
    }
}
