//! The queue port's contract, run against the in-memory FIFO queue and SQS (moto, with the
//! queues created from template.yaml, visibility shortened to one second).

use billing_core::queue::memory::MemoryQueue;
use billing_core::queue::sqs::SqsQueue;
use billing_core::queue::{OutgoingMessage, Queue};
use black_box_tests::unique_prefix;
use local_stack::moto::shared_endpoint;
use local_stack::provision;
use local_stack::stack::moto_sdk_config;
use std::sync::Arc;
use std::time::Duration;

async fn sqs() -> Arc<dyn Queue> {
    let sdk = moto_sdk_config(&shared_endpoint().unwrap()).await;
    let (d, q) = (
        aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_sqs::Client::new(&sdk),
    );
    let res = provision::provision(provision::TEMPLATE, &unique_prefix(), &d, &q, Some(1))
        .await
        .unwrap();
    let url = res.queues["FulfilmentQueue"].url.clone().unwrap();
    Arc::new(SqsQueue::new(q, url))
}

async fn memory() -> Arc<dyn Queue> {
    Arc::new(MemoryQueue::new(Duration::from_secs(1), 5))
}

fn msg(group: &str, id: &str) -> OutgoingMessage {
    OutgoingMessage {
        group: group.into(),
        dedup_id: id.into(),
        body: format!("body-{id}"),
    }
}

async fn drain(q: &Arc<dyn Queue>) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let got = q.receive(10, Duration::from_millis(200)).await.unwrap();
        if got.is_empty() {
            return bodies;
        }
        for m in got {
            bodies.push(m.body.clone());
            q.delete(&m.receipt).await.unwrap();
        }
    }
}

macro_rules! contract {
    ($adapter:ident) => {
        mod $adapter {
            use super::*;

            #[tokio::test]
            async fn a_sent_message_is_received_with_its_group_and_gone_once_deleted() {
                let q = super::$adapter().await;
                q.send(&msg("cus_1", "evt_1")).await.unwrap();
                let got = q.receive(10, Duration::from_secs(1)).await.unwrap();
                assert_eq!(got.len(), 1);
                assert_eq!(
                    (
                        got[0].body.as_str(),
                        got[0].group.as_str(),
                        got[0].receive_count
                    ),
                    ("body-evt_1", "cus_1", 1)
                );
                q.delete(&got[0].receipt).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1200)).await;
                assert!(
                    q.receive(10, Duration::from_millis(200))
                        .await
                        .unwrap()
                        .is_empty()
                );
            }

            #[tokio::test]
            async fn a_second_send_with_the_same_dedup_id_is_dropped() {
                let q = super::$adapter().await;
                q.send(&msg("cus_1", "evt_same")).await.unwrap();
                q.send(&msg("cus_1", "evt_same")).await.unwrap();
                assert_eq!(drain(&q).await, ["body-evt_same"]);
            }

            #[tokio::test]
            async fn one_groups_messages_arrive_in_order() {
                let q = super::$adapter().await;
                for i in 0..5 {
                    q.send(&msg("cus_o", &format!("evt_{i}"))).await.unwrap();
                }
                assert_eq!(
                    drain(&q).await,
                    [
                        "body-evt_0",
                        "body-evt_1",
                        "body-evt_2",
                        "body-evt_3",
                        "body-evt_4"
                    ]
                );
            }

            #[tokio::test]
            async fn a_group_is_held_while_its_message_is_in_flight() {
                let q = super::$adapter().await;
                q.send(&msg("cus_h", "evt_a")).await.unwrap();
                let first = q.receive(1, Duration::from_secs(1)).await.unwrap();
                assert_eq!(first[0].body, "body-evt_a");
                q.send(&msg("cus_h", "evt_b")).await.unwrap();
                q.send(&msg("cus_other", "evt_c")).await.unwrap();
                let next = q.receive(10, Duration::from_millis(300)).await.unwrap();
                let bodies: Vec<&str> = next.iter().map(|m| m.body.as_str()).collect();
                assert_eq!(
                    bodies,
                    ["body-evt_c"],
                    "the held group must not deliver evt_b yet"
                );
            }

            #[tokio::test]
            async fn an_undeleted_message_comes_back_after_the_visibility_timeout() {
                let q = super::$adapter().await;
                q.send(&msg("cus_v", "evt_v")).await.unwrap();
                let first = q.receive(1, Duration::from_secs(1)).await.unwrap();
                assert_eq!(first.len(), 1);
                tokio::time::sleep(Duration::from_millis(1300)).await;
                let again = q.receive(1, Duration::from_secs(2)).await.unwrap();
                assert_eq!(
                    (again[0].body.as_str(), again[0].receive_count),
                    ("body-evt_v", 2)
                );
            }
        }
    };
}

contract!(memory);
contract!(sqs);
