//! What a feature check and a track cost (`docs/features.md`, "Flat cost"), measured: read and
//! write units from the metered store, requests, and round trips (calls that overlap count
//! once: [`Waves`]), for an account with 0, 1,000 and 100,000 usage records across 12 past
//! periods; and tracks per second on one account against the seed's
//! `POST /api/billing/usage`, both in process on the in-memory store.

use crate::metered::MeteredTable;
use async_trait::async_trait;
use billing_core::app::Services;
use billing_core::domain::clock::SystemClock;
use billing_core::domain::entitlement::SubscriptionStatus;
use billing_core::domain::features::FeatureId;
use billing_core::domain::ids::{PlanId, SubscriptionId, UserId};
use billing_core::queue::memory::MemoryQueue;
use billing_core::store::memory::MemoryTable;
use billing_core::store::records::subscription::{SubscriptionState, apply_if_newer};
use billing_core::store::records::{profile, usage};
use billing_core::store::{Cond, Index, Item, Key, Page, StoreError, Write};
use billing_core::store::{Op, Table};
use billing_core::usecases::features::{self, TrackRequest};
use billing_core::usecases::usage::{UsageRequest, consume};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A store that counts round trips: a call that starts while none is in flight starts a new
/// one; calls made together (`try_join!`) share it.
pub struct Waves<T> {
    pub inner: T,
    in_flight: AtomicU64,
    waves: AtomicU64,
}

impl<T> Waves<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            in_flight: AtomicU64::new(0),
            waves: AtomicU64::new(0),
        }
    }
    pub fn round_trips(&self) -> u64 {
        self.waves.load(Ordering::SeqCst)
    }
    async fn call<R>(&self, f: impl std::future::Future<Output = R>) -> R {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.waves.fetch_add(1, Ordering::SeqCst);
        }
        // As on a network, the call is away for a moment: what starts meanwhile overlaps it.
        tokio::task::yield_now().await;
        let out = f.await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        out
    }
}

#[async_trait]
impl<T: Table> Table for Waves<T> {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.call(self.inner.get(key)).await
    }
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.call(self.inner.query(pk, sk_prefix)).await
    }
    async fn query_index(
        &self,
        index: &Index,
        pk: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.call(self.inner.query_index(index, pk, limit, after))
            .await
    }
    async fn query_page(
        &self,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.call(self.inner.query_page(pk, sk_prefix, limit, after))
            .await
    }
    async fn put(&self, key: &Key, item: Item, cond: Option<Cond>) -> Result<(), StoreError> {
        self.call(self.inner.put(key, item, cond)).await
    }
    async fn update(
        &self,
        key: &Key,
        ops: Vec<Op>,
        cond: Option<Cond>,
    ) -> Result<Item, StoreError> {
        self.call(self.inner.update(key, ops, cond)).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.call(self.inner.transact(writes)).await
    }
}

fn services(table: Arc<dyn Table>) -> Services {
    Services {
        config: Arc::new(billing_testing::config(&[])),
        table,
        queue: Arc::new(MemoryQueue::default()),
        clock: Arc::new(SystemClock),
        stripe: None,
        metrics: Arc::new(billing_core::metrics::memory::MemoryMetrics::default()),
        secrets: None,
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A pro subscriber with `records` tracked calls of `ai_messages` spread over 12 months.
async fn seed(table: &dyn Table, user: &UserId, records: usize) -> Result<(), String> {
    let plan = PlanId::parse("pro_monthly").map_err(err)?;
    let end = chrono::Utc::now().timestamp() + 10 * 86_400;
    let state = SubscriptionState {
        status: SubscriptionStatus::Active,
        version: "v1".into(),
        plan: Some(&plan),
        cancel_at_period_end: false,
        current_period_end: Some(end),
        cancel_at: None,
        trial_end: None,
        quantity: 1,
    };
    let sub = SubscriptionId::parse("sub_bench").map_err(err)?;
    table
        .apply(apply_if_newer(user, &sub, state, chrono::Utc::now()))
        .await
        .map_err(err)?;
    let feature = FeatureId::parse("ai_messages").ok_or("no ai_messages feature")?;
    for i in 0..records {
        let answer = usage::Answer {
            units: 1,
            free_uses_remaining: 3,
            balance: 0,
        };
        let at =
            chrono::DateTime::parse_from_rfc3339(&format!("2025-{:02}-01T00:00:00Z", 1 + i % 12))
                .map_err(err)?
                .to_utc();
        let key = format!("req-{i:08}-0b6f6b3e-8f0c-4a52-9d3c-2f1d5c9a7e41");
        let json = r#"{"allowed":true,"feature":{"type":"metered","enabled":true,"limit":null,"included":1000,"used":1,"remaining":999,"resets_at":null,"overage":"block"},"credits":{"balance":0}}"#;
        let write = usage::tracked(user, &feature, &key, answer, json.into(), at, 0);
        table.apply(write).await.map_err(err)?;
    }
    Ok(())
}

fn cost(c: crate::metered::Counts, round_trips: u64) -> Value {
    json!({
        "rru": c.rru, "wru": c.wru,
        "requests": c.ddb_reads + c.ddb_writes + c.ddb_transactions,
        "round_trips": round_trips,
    })
}

/// The check and track cost at each history size.
pub async fn costs() -> Result<Value, String> {
    let mut out = Map::new();
    for records in [0usize, 1_000, 100_000] {
        // Waves outside the meter: the meter's own reads (to size writes) are not calls.
        let table = Arc::new(Waves::new(MeteredTable::new(MemoryTable::new())));
        let s = services(table.clone());
        let user = UserId::parse("busy_user").map_err(err)?;
        seed(&table.inner.inner, &user, records).await?;
        let warm = TrackRequest {
            units: 1,
            idempotency_key: "warm".into(),
        };
        features::track(&s, &user, "ai_messages", warm)
            .await
            .map_err(err)?;

        let (before, trips) = (table.inner.counts(), table.round_trips());
        let check = features::check(&s, &user, "ai_messages", 1)
            .await
            .map_err(err)?;
        let check_cost = cost(
            table.inner.counts().minus(&before),
            table.round_trips() - trips,
        );
        if !check.allowed {
            return Err("the check refused".into());
        }
        let (before, trips) = (table.inner.counts(), table.round_trips());
        let req = TrackRequest {
            units: 1,
            idempotency_key: "measured".into(),
        };
        features::track(&s, &user, "ai_messages", req)
            .await
            .map_err(err)?;
        let track_cost = cost(
            table.inner.counts().minus(&before),
            table.round_trips() - trips,
        );
        out.insert(
            records.to_string(),
            json!({ "check": check_cost, "track": track_cost }),
        );
    }
    Ok(Value::Object(out))
}

/// Tracks per second on one account (a metered feature paid with credits beyond its
/// allowance) against the seed's usage calls, `calls` of each, one at a time.
pub async fn throughput(calls: usize) -> Result<Value, String> {
    // Each on an account of its own store, with credits for every call.
    let fresh = || async {
        let s = services(Arc::new(MemoryTable::new()));
        let user = UserId::parse("one_account").map_err(err)?;
        s.table
            .update(
                &profile::key(&user),
                vec![Op::add("credits", 1_000_000_000)],
                None,
            )
            .await
            .map_err(err)?;
        Ok::<_, String>((s, user))
    };
    let (s, user) = fresh().await?;
    let start = Instant::now();
    for i in 0..calls {
        let req = TrackRequest {
            units: 1,
            idempotency_key: format!("t-{i}"),
        };
        features::track(&s, &user, "exports", req)
            .await
            .map_err(err)?;
    }
    let tracks = calls as f64 / start.elapsed().as_secs_f64();
    let (s, user) = fresh().await?;
    let start = Instant::now();
    for i in 0..calls {
        let req = UsageRequest {
            units: 1,
            idempotency_key: format!("u-{i}"),
        };
        consume(&s, &user, req).await.map_err(err)?;
    }
    let usage = calls as f64 / start.elapsed().as_secs_f64();
    Ok(json!({ "calls": calls, "tracks_per_s": tracks, "usage_per_s": usage }))
}
