//! The event bus port's contract, run against the in-memory bus and EventBridge (moto, the
//! bus created from template.yaml, read back through a rule targeting an SQS queue, as an
//! app subscribes).

use billing_core::events::eventbridge::EventBridgeBus;
use billing_core::events::memory::MemoryBus;
use billing_core::events::{BusError, Credits, DETAIL_TYPE, EntitlementsChanged, EventBus, SOURCE};
use black_box_tests::unique_prefix;
use local_stack::entitlement_events::{Subscription, subscribe};
use local_stack::moto::shared_endpoint;
use local_stack::provision::{self, TEMPLATE};
use local_stack::stack::moto_sdk_config;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An adapter and a way to read back what reached its subscribers, with their envelopes'
/// source and detail-type.
struct Adapter {
    bus: Arc<dyn EventBus>,
    read: Reader,
}

enum Reader {
    Memory(Arc<MemoryBus>),
    Queue(Subscription),
}

impl Adapter {
    async fn received(&self, count: usize) -> Vec<(String, String, EntitlementsChanged)> {
        match &self.read {
            Reader::Memory(bus) => bus
                .published()
                .into_iter()
                .map(|e| (SOURCE.to_owned(), DETAIL_TYPE.to_owned(), e))
                .collect(),
            Reader::Queue(sub) => {
                let mut got = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(10);
                while got.len() < count && Instant::now() < deadline {
                    for e in sub.drain(Duration::from_secs(1)).await.unwrap() {
                        got.push((
                            e["source"].as_str().unwrap_or_default().to_owned(),
                            e["detail-type"].as_str().unwrap_or_default().to_owned(),
                            serde_json::from_value(e["detail"].clone()).unwrap(),
                        ));
                    }
                }
                got
            }
        }
    }
}

async fn memory() -> Adapter {
    let bus = Arc::new(MemoryBus::default());
    Adapter {
        bus: bus.clone(),
        read: Reader::Memory(bus),
    }
}

async fn eventbridge() -> Adapter {
    let sdk = moto_sdk_config(&shared_endpoint().unwrap()).await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let prefix = unique_prefix();
    let buses = provision::provision_buses(TEMPLATE, &prefix, &events)
        .await
        .unwrap();
    let bus = buses["EntitlementEventBus"].name.clone();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sub = subscribe(&events, &sqs, &bus, &format!("{prefix}-subscriber"))
        .await
        .unwrap();
    Adapter {
        bus: Arc::new(EventBridgeBus::new(events, bus)),
        read: Reader::Queue(sub),
    }
}

fn changed(user: &str, version: i64) -> EntitlementsChanged {
    EntitlementsChanged {
        id: format!("{user}:{version}"),
        user_id: user.into(),
        tier: "paid".into(),
        plan_id: Some("pro_monthly".into()),
        subscription_status: Some("active".into()),
        credits: Credits {
            balance: 1000 + version,
            free_uses_remaining: 0,
        },
        credit_until: Some("2026-12-31T00:00:00Z".into()),
        features: Default::default(),
        cause: format!("evt_contract_{version}"),
        version,
    }
}

macro_rules! contract {
    ($adapter:ident) => {
        mod $adapter {
            use super::*;

            #[tokio::test]
            async fn a_published_event_reaches_a_subscriber_with_its_source_type_and_detail() {
                let a = super::$adapter().await;
                let sent = vec![changed("ivy", 1), changed("ivy", 2)];
                for e in &sent {
                    a.bus.publish(e).await.unwrap();
                }
                let mut got = a.received(2).await;
                got.sort_by_key(|(_, _, e)| e.version);
                let expected: Vec<_> = sent
                    .into_iter()
                    .map(|e| (SOURCE.to_owned(), DETAIL_TYPE.to_owned(), e))
                    .collect();
                assert_eq!(got, expected);
            }

            #[tokio::test]
            async fn the_same_version_published_twice_reaches_the_subscriber_twice_with_one_id() {
                let a = super::$adapter().await;
                a.bus.publish(&changed("jo", 7)).await.unwrap();
                a.bus.publish(&changed("jo", 7)).await.unwrap();
                let got = a.received(2).await;
                let ids: Vec<&str> = got.iter().map(|(_, _, e)| e.id.as_str()).collect();
                assert_eq!(ids, vec!["jo:7", "jo:7"]);
            }
        }
    };
}

contract!(memory);
contract!(eventbridge);

#[tokio::test]
async fn an_unreachable_event_bridge_is_an_error_the_publisher_retries() {
    let sdk = moto_sdk_config("http://127.0.0.1:9").await;
    let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), "nowhere");
    let err = bus.publish(&changed("kim", 1)).await.unwrap_err();
    assert!(matches!(err, BusError::Unavailable(_)), "{err}");
}
