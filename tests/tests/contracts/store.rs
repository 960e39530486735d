//! The store port's contract, run against every adapter: the in-memory table and
//! DynamoDB (moto, with the table created from template.yaml). If the in-memory adapter
//! drifts from DynamoDB's behaviour, one of these fails for one adapter only.

use billing_core::store::dynamo::DynamoTable;
use billing_core::store::memory::MemoryTable;
use billing_core::store::schema::{EVENTS_BY_STATE, PURCHASES_BY_TIME};
use billing_core::store::{Cond, Item, ItemExt, Key, Op, Page, StoreError, Table, Value, Write};
use black_box_tests::unique_prefix;
use local_stack::moto::shared_endpoint;
use local_stack::provision;
use local_stack::stack::moto_sdk_config;
use std::sync::Arc;

async fn dynamo() -> Arc<dyn Table> {
    Arc::new(dynamo_table().await)
}

/// DynamoDB cutting every index request at two items, as its 1 MB limit cuts pages.
async fn dynamo_short_pages() -> Arc<dyn Table> {
    Arc::new(dynamo_table().await.with_request_item_cap(2))
}

async fn dynamo_table() -> DynamoTable {
    let sdk = moto_sdk_config(&shared_endpoint().unwrap()).await;
    let (d, q) = (
        aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
    );
    let res = provision::provision(provision::TEMPLATE, &unique_prefix(), &d, &q, None)
        .await
        .unwrap();
    DynamoTable::new(d, res.tables["BillingTable"].name.clone())
}

fn sort_keys(p: &Page, attr: &str) -> Vec<String> {
    p.items
        .iter()
        .map(|i| i.str(attr).unwrap().to_owned())
        .collect()
}

/// Five event records in state `queued`, e0 (oldest) to e4, each with a large payload.
async fn five_events(t: &dyn Table) {
    for i in 0..5 {
        let it = item(&[
            ("gsi1pk", "EVENTS#queued".into()),
            ("gsi1sk", format!("2026-01-0{i}#e{i}").into()),
            ("type", "invoice.paid".into()),
            ("payload", "x".repeat(20_000).into()),
        ]);
        t.put(&Key::new(format!("EVENT#e{i}"), "EVENT"), it, None)
            .await
            .unwrap();
    }
}

async fn memory() -> Arc<dyn Table> {
    Arc::new(MemoryTable::new())
}

fn item(pairs: &[(&str, Value)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

macro_rules! contract {
    ($adapter:ident) => {
        mod $adapter {
            use super::*;

            #[tokio::test]
            async fn a_missing_item_reads_as_none() {
                let t = super::$adapter().await;
                assert!(t.get(&Key::new("A", "B")).await.unwrap().is_none());
            }

            #[tokio::test]
            async fn a_put_item_reads_back_with_its_key() {
                let t = super::$adapter().await;
                let k = Key::new("U#1", "P");
                t.put(&k, item(&[("n", Value::N(7)), ("s", "x".into()), ("b", true.into())]), None).await.unwrap();
                let got = t.get(&k).await.unwrap().unwrap();
                assert_eq!((got.num("n"), got.str("s"), got.boolean("b")), (Some(7), Some("x"), Some(true)));
                assert_eq!((got.str("pk"), got.str("sk")), (Some("U#1"), Some("P")));
            }

            #[tokio::test]
            async fn a_put_that_must_not_overwrite_fails_and_changes_nothing() {
                let t = super::$adapter().await;
                let k = Key::new("E#1", "E");
                t.put(&k, item(&[("v", 1.into())]), Some(Cond::ItemNotExists)).await.unwrap();
                let again = t.put(&k, item(&[("v", 2.into())]), Some(Cond::ItemNotExists)).await;
                assert!(matches!(again, Err(StoreError::ConditionFailed)));
                assert_eq!(t.get(&k).await.unwrap().unwrap().num("v"), Some(1));
            }

            #[tokio::test]
            async fn an_update_creates_the_item_and_applies_set_add_if_missing_and_remove() {
                let t = super::$adapter().await;
                let k = Key::new("U#2", "P");
                let new = t
                    .update(&k, vec![Op::add("c", 5), Op::set_if_missing("first", "a"), Op::set("r", "gone")], None)
                    .await
                    .unwrap();
                assert_eq!((new.num("c"), new.str("first")), (Some(5), Some("a")));
                let new = t
                    .update(&k, vec![Op::add("c", -2), Op::set_if_missing("first", "b"), Op::remove("r")], None)
                    .await
                    .unwrap();
                assert_eq!((new.num("c"), new.str("first"), new.str("r")), (Some(3), Some("a"), None));
            }

            #[tokio::test]
            async fn an_update_whose_condition_fails_changes_nothing() {
                let t = super::$adapter().await;
                let k = Key::new("U#3", "P");
                t.update(&k, vec![Op::set("c", 1)], None).await.unwrap();
                let r = t.update(&k, vec![Op::add("c", -5)], Some(Cond::ge("c", 5))).await;
                assert!(matches!(r, Err(StoreError::ConditionFailed)));
                assert_eq!(t.get(&k).await.unwrap().unwrap().num("c"), Some(1));
            }

            #[tokio::test]
            async fn a_comparison_with_a_missing_attribute_is_false() {
                let t = super::$adapter().await;
                let k = Key::new("U#4", "P");
                t.put(&k, item(&[("x", 1.into())]), None).await.unwrap();
                for cond in [Cond::lt("v", "b"), Cond::ge("v", 0), Cond::eq("v", 1), Cond::one_of("v", &["a"])] {
                    assert!(matches!(t.update(&k, vec![Op::set("y", 1)], Some(cond)).await, Err(StoreError::ConditionFailed)));
                }
                let either = Cond::Or(vec![Cond::missing("v"), Cond::lt("v", "b")]);
                t.update(&k, vec![Op::set("v", "a")], Some(either)).await.unwrap();
            }

            #[tokio::test]
            async fn strings_compare_byte_wise_and_numbers_numerically() {
                let t = super::$adapter().await;
                let k = Key::new("U#5", "P");
                t.put(&k, item(&[("v", "000000000100:2:evt_b".into()), ("n", 9.into())]), None).await.unwrap();
                assert!(t.update(&k, vec![Op::set("z", 1)], Some(Cond::lt("v", "000000000100:2:evt_c"))).await.is_ok());
                assert!(t.update(&k, vec![Op::set("z", 1)], Some(Cond::lt("v", "000000000099:9:evt_z"))).await.is_err());
                assert!(t.update(&k, vec![Op::set("z", 1)], Some(Cond::lt("n", 10))).await.is_ok());
                assert!(t.update(&k, vec![Op::set("z", 1)], Some(Cond::one_of("v", &["x", "000000000100:2:evt_b"]))).await.is_ok());
            }

            #[tokio::test]
            async fn a_transaction_applies_every_write_or_none() {
                let t = super::$adapter().await;
                let (a, b) = (Key::new("T#1", "A"), Key::new("T#1", "B"));
                t.put(&b, item(&[("v", 1.into())]), None).await.unwrap();
                let writes = vec![
                    Write::Update { key: a.clone(), ops: vec![Op::add("c", 10)], cond: None },
                    Write::Update { key: b.clone(), ops: vec![Op::set("v", 2)], cond: Some(Cond::eq("v", 99)) },
                ];
                let r = t.transact(writes).await;
                assert!(matches!(r, Err(StoreError::TransactionConditionFailed(ref f)) if f == &vec![1]), "{r:?}");
                assert!(t.get(&a).await.unwrap().is_none());
                assert_eq!(t.get(&b).await.unwrap().unwrap().num("v"), Some(1));

                let writes = vec![
                    Write::Update { key: a.clone(), ops: vec![Op::add("c", 10)], cond: None },
                    Write::Update { key: b.clone(), ops: vec![Op::set("v", 2)], cond: Some(Cond::eq("v", 1)) },
                    Write::Put { key: Key::new("T#1", "C"), item: item(&[("w", "x".into())]), cond: Some(Cond::ItemNotExists) },
                    Write::Check { key: Key::new("T#1", "B"), cond: Cond::ItemExists }.clone(),
                ];
                // Two writes to B in one transaction are refused by DynamoDB; drop the check.
                let writes: Vec<Write> = writes.into_iter().take(3).collect();
                t.transact(writes).await.unwrap();
                assert_eq!(t.get(&a).await.unwrap().unwrap().num("c"), Some(10));
                assert_eq!(t.get(&b).await.unwrap().unwrap().num("v"), Some(2));
                assert!(t.get(&Key::new("T#1", "C")).await.unwrap().is_some());
            }

            #[tokio::test]
            async fn a_transaction_writing_one_item_twice_is_refused() {
                let t = super::$adapter().await;
                let k = Key::new("T#2", "A");
                let writes = vec![
                    Write::Update { key: k.clone(), ops: vec![Op::add("c", 1)], cond: None },
                    Write::Check { key: k.clone(), cond: Cond::ItemExists },
                ];
                assert!(matches!(t.transact(writes).await, Err(StoreError::Invalid(_))));
                assert!(t.get(&k).await.unwrap().is_none());
            }

            #[tokio::test]
            async fn a_condition_check_can_veto_a_transaction() {
                let t = super::$adapter().await;
                let writes = vec![
                    Write::Update { key: Key::new("T#3", "A"), ops: vec![Op::add("c", 1)], cond: None },
                    Write::Check { key: Key::new("T#3", "GATE"), cond: Cond::ItemExists },
                ];
                assert!(matches!(t.transact(writes).await, Err(StoreError::TransactionConditionFailed(ref f)) if f == &vec![1]));
            }

            #[tokio::test]
            async fn a_query_returns_one_partition_by_prefix_in_sort_order() {
                let t = super::$adapter().await;
                for sk in ["SUB#b", "PROFILE", "SUB#a", "PURCHASE#x"] {
                    t.put(&Key::new("USER#q", sk), Item::new(), None).await.unwrap();
                }
                t.put(&Key::new("USER#other", "SUB#c"), Item::new(), None).await.unwrap();
                let subs: Vec<String> =
                    t.query("USER#q", "SUB#").await.unwrap().iter().map(|i| i.str("sk").unwrap().to_owned()).collect();
                assert_eq!(subs, ["SUB#a", "SUB#b"]);
                assert_eq!(t.query("USER#q", "").await.unwrap().len(), 4);
            }

            #[tokio::test]
            async fn a_partition_page_holds_one_prefix_newest_first_and_pages_to_the_end() {
                let t = super::$adapter().await;
                for sk in ["GRANT#2026-01-01#a", "GRANT#2026-01-03#c", "PROFILE", "GRANT#2026-01-02#b", "GRANTKEY#z", "REFUND#x"] {
                    t.put(&Key::new("USER#g", sk), Item::new(), None).await.unwrap();
                }
                t.put(&Key::new("USER#other", "GRANT#2026-01-09#o"), Item::new(), None).await.unwrap();
                let sks = |p: &Page| sort_keys(p, "sk");
                let first = t.query_page("USER#g", "GRANT#2", 2, None).await.unwrap();
                assert_eq!(sks(&first), ["GRANT#2026-01-03#c", "GRANT#2026-01-02#b"]);
                let rest = t.query_page("USER#g", "GRANT#2", 2, first.next.as_deref()).await.unwrap();
                assert_eq!((sks(&rest), rest.next), (vec!["GRANT#2026-01-01#a".to_owned()], None));
                let exact = t.query_page("USER#g", "GRANT#2", 3, None).await.unwrap();
                assert_eq!((exact.items.len(), exact.next), (3, None));
                let none = t.query_page("USER#g", "NOTHING#", 5, None).await.unwrap();
                assert_eq!((none.items.len(), none.next), (0, None));
            }

            #[tokio::test]
            async fn the_state_index_pages_newest_first() {
                let t = super::$adapter().await;
                five_events(t.as_ref()).await;
                let sks = |p: &Page| sort_keys(p, "gsi1sk");
                let first = t.query_index(&EVENTS_BY_STATE, "EVENTS#queued", 2, None).await.unwrap();
                assert_eq!(sks(&first), ["2026-01-04#e4", "2026-01-03#e3"]);
                let second = t.query_index(&EVENTS_BY_STATE, "EVENTS#queued", 2, first.next.as_deref()).await.unwrap();
                assert_eq!(sks(&second), ["2026-01-02#e2", "2026-01-01#e1"]);
                let last = t.query_index(&EVENTS_BY_STATE, "EVENTS#queued", 2, second.next.as_deref()).await.unwrap();
                assert_eq!((sks(&last), last.next), (vec!["2026-01-00#e0".to_owned()], None));
            }

            #[tokio::test]
            async fn an_index_entry_carries_only_the_keys_and_what_the_index_projects() {
                let t = super::$adapter().await;
                five_events(t.as_ref()).await;
                let page = t.query_index(&EVENTS_BY_STATE, "EVENTS#queued", 1, None).await.unwrap();
                let entry = &page.items[0];
                assert_eq!((entry.str("pk"), entry.str("type")), (Some("EVENT#e4"), Some("invoice.paid")));
                assert!(entry.get("payload").is_none(), "the payload is not projected: {:?}", entry.keys());
            }

            #[tokio::test]
            async fn the_purchase_index_pages_an_accounts_purchases_newest_first() {
                let t = super::$adapter().await;
                for (at, cs) in [("2026-01-02T00:00:00Z", "cs_b"), ("2026-01-03T00:00:00Z", "cs_a"), ("2026-01-01T00:00:00Z", "cs_c")] {
                    let it = item(&[("gsi2pk", "PURCHASES#u".into()), ("gsi2sk", format!("{at}#{cs}").into()), ("at", at.into())]);
                    t.put(&Key::new("USER#u", format!("PURCHASE#{cs}")), it, None).await.unwrap();
                }
                let first = t.query_index(&PURCHASES_BY_TIME, "PURCHASES#u", 2, None).await.unwrap();
                assert_eq!(first.items.iter().map(|i| i.str("sk").unwrap()).collect::<Vec<_>>(), ["PURCHASE#cs_a", "PURCHASE#cs_b"]);
                let rest = t.query_index(&PURCHASES_BY_TIME, "PURCHASES#u", 2, first.next.as_deref()).await.unwrap();
                assert_eq!((rest.items.len(), rest.next), (1, None));
            }

            #[tokio::test]
            async fn concurrent_guarded_decrements_never_overdraw() {
                let t = super::$adapter().await;
                let k = Key::new("U#c", "P");
                t.put(&k, item(&[("credits", 10.into())]), None).await.unwrap();
                let tasks: Vec<_> = (0..25)
                    .map(|_| {
                        let (t, k) = (t.clone(), k.clone());
                        tokio::spawn(async move { t.update(&k, vec![Op::add("credits", -1)], Some(Cond::ge("credits", 1))).await.is_ok() })
                    })
                    .collect();
                let mut ok = 0;
                for task in tasks {
                    ok += task.await.unwrap() as i32;
                }
                assert_eq!(ok, 10);
                assert_eq!(t.get(&k).await.unwrap().unwrap().num("credits"), Some(0));
            }
        }
    };
}

contract!(memory);
contract!(dynamo);

/// DynamoDB ends a query request at 1 MB however many items were asked for; the adapter
/// keeps asking, so a page is as long as its limit and `next` says whether more follow.
mod dynamo_short_pages {
    use super::*;

    #[tokio::test]
    async fn a_page_holds_its_limit_across_requests_and_says_more_follow() {
        let t = super::dynamo_short_pages().await;
        five_events(t.as_ref()).await;
        let sks = |p: &Page| sort_keys(p, "gsi1sk");
        let first = t
            .query_index(&EVENTS_BY_STATE, "EVENTS#queued", 3, None)
            .await
            .unwrap();
        assert_eq!(
            sks(&first),
            ["2026-01-04#e4", "2026-01-03#e3", "2026-01-02#e2"]
        );
        assert_eq!(first.next.as_deref(), Some("2026-01-02#e2"));
        let rest = t
            .query_index(&EVENTS_BY_STATE, "EVENTS#queued", 3, first.next.as_deref())
            .await
            .unwrap();
        assert_eq!(
            (sks(&rest), rest.next),
            (
                vec!["2026-01-01#e1".to_owned(), "2026-01-00#e0".to_owned()],
                None
            )
        );
    }

    #[tokio::test]
    async fn a_partition_page_holds_its_limit_across_requests() {
        let t = super::dynamo_short_pages().await;
        for i in 0..5 {
            let k = Key::new("USER#s", format!("GRANT#2026-01-0{i}#g{i}"));
            t.put(&k, Item::new(), None).await.unwrap();
        }
        let first = t.query_page("USER#s", "GRANT#", 3, None).await.unwrap();
        assert_eq!(first.items.len(), 3);
        assert_eq!(first.next.as_deref(), Some("GRANT#2026-01-02#g2"));
        let rest = t
            .query_page("USER#s", "GRANT#", 3, first.next.as_deref())
            .await
            .unwrap();
        assert_eq!(
            (sort_keys(&rest, "sk"), rest.next),
            (
                vec![
                    "GRANT#2026-01-01#g1".to_owned(),
                    "GRANT#2026-01-00#g0".to_owned()
                ],
                None
            )
        );
    }

    #[tokio::test]
    async fn a_page_that_ends_exactly_at_the_last_entry_has_no_next() {
        let t = super::dynamo_short_pages().await;
        five_events(t.as_ref()).await;
        let all = t
            .query_index(&EVENTS_BY_STATE, "EVENTS#queued", 5, None)
            .await
            .unwrap();
        assert_eq!((all.items.len(), all.next), (5, None));
    }
}
