//! `bench`: the measuring tool behind `make bench` (driven by `infra/bench/run.py`).
//!
//! - `bench payloads <dir>`: writes the 1 KB / 8 KB / 64 KB webhook payloads the SDK peers time
//! - `bench cost <out.json>`: DynamoDB and SQS requests and billed units per intake and per
//!   fulfilment, an account read at 0 / 1,000 / 100,000 usage records, an admin list page
//!   at 1 KB / 64 KB payloads, intake's sequential AWS calls (all on metered in-memory
//!   adapters), and intake's latency with 10 ms added to every store and queue call
//! - `bench startup`: in a fresh process, how long each start-up step takes the first time
//!   (tracing, config, services, and what the first store, queue and Stripe calls build),
//!   printed as JSON; run it several times and take medians
//! - `bench provision <moto-endpoint> <prefix>`: the template's table and queues in moto,
//!   printed as environment lines (for the cold-start runs)
//! - `bench throughput <out.json> [events] [concurrency]`: signed events through the local
//!   stack (moto, the HTTP front, the queue → worker mapping) until each checkout reads
//!   `fulfilled`, then every account checked
//!
//! Results go to the named file: the handlers print their EMF metric lines on stdout.

use bench::delayed::Delayed;
use bench::metered::{Counts, MeteredQueue, MeteredTable};
use bench::{SIZES, payload, quantile, with_id};
use billing_core::app::Services;
use billing_core::domain::clock::SystemClock;
use billing_core::queue::memory::MemoryQueue;
use billing_core::store::memory::MemoryTable;
use billing_core::usecases::fulfil;
use billing_core::usecases::intake::{self, IntakeOutcome};
use billing_testing::{TEST_WEBHOOK_SECRET, checkout_session, event, signature, subscription};
use futures::StreamExt;
use local_stack::{LocalStack, StackOptions};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn usage() -> ExitCode {
    eprintln!(
        "usage: bench payloads <dir>\n       bench cost <out.json>\n       bench provision <moto-endpoint> <prefix>\n       bench throughput <out.json> [events] [concurrency]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let result = match (arg(0), arg(1)) {
        (Some("payloads"), Some(dir)) => payloads(dir),
        (Some("cost"), Some(out)) => cost().await.and_then(|v| write(out, &v)),
        (Some("startup"), _) => startup().await,
        (Some("provision"), Some(moto)) => provision(moto, arg(2).unwrap_or("bench")).await,
        (Some("throughput"), Some(out)) => {
            let events = arg(2).and_then(|v| v.parse().ok()).unwrap_or(640);
            let concurrency = arg(3).and_then(|v| v.parse().ok()).unwrap_or(32);
            throughput(events, concurrency)
                .await
                .and_then(|v| write(out, &v))
        }
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(path: &str, value: &Value) -> Result<(), String> {
    std::fs::write(path, format!("{value:#}\n")).map_err(|e| format!("cannot write {path}: {e}"))
}

fn payloads(dir: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
    for (label, target) in SIZES {
        let path = format!("{dir}/{label}.json");
        std::fs::write(&path, payload(target)).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

struct Metered {
    services: Services,
    table: Arc<MeteredTable<MemoryTable>>,
    queue: Arc<MeteredQueue<MemoryQueue>>,
}

impl Metered {
    fn new() -> Self {
        let table = Arc::new(MeteredTable::new(MemoryTable::new()));
        let queue = Arc::new(MeteredQueue::new(MemoryQueue::default()));
        let services = Services {
            config: Arc::new(billing_testing::config(&[])),
            table: table.clone(),
            queue: queue.clone(),
            clock: Arc::new(SystemClock),
            stripe: None,
            metrics: Arc::new(billing_core::metrics::memory::MemoryMetrics::default()),
            secrets: None,
        };
        Self {
            services,
            table,
            queue,
        }
    }
    fn counts(&self) -> Counts {
        let (t, q) = (self.table.counts(), self.queue.counts());
        Counts {
            sqs_sends: q.sqs_sends,
            sqs_receives: q.sqs_receives,
            sqs_deletes: q.sqs_deletes,
            sqs_billed_requests: q.sqs_billed_requests,
            ..t
        }
    }
    async fn deliver(&self, body: &str) -> Result<IntakeOutcome, String> {
        let header = signature(TEST_WEBHOOK_SECRET, chrono::Utc::now().timestamp(), body);
        intake::receive(&self.services, Some(&header), body.as_bytes())
            .await
            .map_err(|e| e.to_string())
    }
    /// What the worker does with one message: receive, apply, delete.
    async fn work_one(&self) -> Result<fulfil::Outcome, String> {
        let mut got = self
            .services
            .queue
            .receive(10, Duration::ZERO)
            .await
            .map_err(|e| e.to_string())?;
        let m = got.pop().ok_or("the queue is empty")?;
        let outcome = fulfil::process(&self.services, &m.body)
            .await
            .map_err(|e| e.to_string())?;
        self.services
            .queue
            .delete(&m.receipt)
            .await
            .map_err(|e| e.to_string())?;
        Ok(outcome)
    }
}

async fn phase<F, Fut, T>(m: &Metered, f: F) -> Result<(T, Counts), String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let before = m.counts();
    let out = f().await?;
    Ok((out, m.counts().minus(&before)))
}

/// Requests and units per event for the common paths, each on realistic payloads.
async fn cost() -> Result<Value, String> {
    let m = Metered::new();
    let credits = event(
        "evt_cost_credits",
        "checkout.session.completed",
        chrono::Utc::now().timestamp() - 2,
        checkout_session("cs_test_cost", "cost_user", "credits_starter", "paid", 1000),
    )
    .to_string();
    let sub = event(
        "evt_cost_sub",
        "customer.subscription.updated",
        chrono::Utc::now().timestamp() - 1,
        subscription(
            "sub_cost",
            "cost_user",
            "pro_monthly",
            "active",
            chrono::Utc::now().timestamp() + 2_600_000,
        ),
    )
    .to_string();

    let (o1, intake_new) = phase(&m, || m.deliver(&credits)).await?;
    let (o2, intake_dup) = phase(&m, || m.deliver(&credits)).await?;
    let (o3, fulfil_checkout) = phase(&m, || m.work_one()).await?;
    let (o4, intake_sub) = phase(&m, || m.deliver(&sub)).await?;
    let (o5, fulfil_sub) = phase(&m, || m.work_one()).await?;
    if (o1, o2, o4)
        != (
            IntakeOutcome::Queued,
            IntakeOutcome::Duplicate,
            IntakeOutcome::Queued,
        )
        || o3 != fulfil::Outcome::Applied
        || o5 != fulfil::Outcome::Applied
    {
        return Err(format!(
            "unexpected outcomes {o1:?} {o2:?} {o3:?} {o4:?} {o5:?}"
        ));
    }
    // Every call intake makes is awaited before the next: the calls of a new event are
    // its sequential round trips.
    let sequential = intake_new.ddb_reads
        + intake_new.ddb_writes
        + intake_new.ddb_transactions
        + intake_new.sqs_sends;
    let mut account_rru = serde_json::Map::new();
    for usage_records in [0, 1_000, 100_000] {
        account_rru.insert(
            usage_records.to_string(),
            account_read_rru(usage_records).await?.into(),
        );
    }
    let mut admin_page_rru = serde_json::Map::new();
    for (label, size) in [("1KB", 1024), ("64KB", 64 * 1024)] {
        admin_page_rru.insert(label.into(), admin_page_rru_at(size).await?.into());
    }
    let feature_costs = bench::features::costs().await?;
    let feature_throughput = bench::features::throughput(2_000).await?;
    Ok(json!({
        "feature_costs": feature_costs,
        "feature_throughput": feature_throughput,
        "intake_sequential_calls": sequential,
        "account_read_rru": account_rru,
        "admin_page_rru": admin_page_rru,
        "intake_latency_10ms": intake_latency(Duration::from_millis(10), 200).await?,
        "payload_bytes": { "checkout": credits.len(), "subscription": sub.len() },
        "phases": {
            "intake_new_checkout": intake_new.to_json(),
            "intake_duplicate": intake_dup.to_json(),
            "fulfil_checkout": fulfil_checkout.to_json(),
            "intake_new_subscription": intake_sub.to_json(),
            "fulfil_subscription": fulfil_sub.to_json(),
        }
    }))
}

/// RRUs of one account read (after the first, which creates the referral code) of an
/// account with a subscription, 25 purchases and `usage_records` usage idempotency records.
async fn account_read_rru(usage_records: usize) -> Result<u64, String> {
    use billing_core::domain::ids::{PurchaseId, UserId};
    use billing_core::store::records::{purchase, usage};
    use billing_core::usecases::account::account;
    let m = Metered::new();
    let user = UserId::parse("busy_user").map_err(|e| e.to_string())?;
    let seed = |w| billing_core::store::Table::apply(&m.table.inner, w);
    let start = chrono::DateTime::from_timestamp(1_793_491_200, 0).unwrap_or_default(); // 2026-11-01
    for i in 0..25 {
        let paid = purchase::Paid {
            plan_id: "credits_starter".into(),
            amount: 1000,
            currency: "usd".into(),
            credits: 1000,
            quantity: 1,
            payment_intent: Some(format!("pi_bench_{i:04}")),
            at: start + chrono::Duration::minutes(i),
        };
        let session =
            PurchaseId::parse(&format!("cs_test_bench_{i:04}")).map_err(|e| e.to_string())?;
        seed(purchase::paid(&user, &session, &paid))
            .await
            .map_err(|e| e.to_string())?;
    }
    for i in 0..usage_records {
        let answer = usage::Answer {
            units: 1,
            free_uses_remaining: 0,
            balance: 1_000_000 - i as i64,
        };
        let key = format!("req-{i:08}-0b6f6b3e-8f0c-4a52-9d3c-2f1d5c9a7e41");
        seed(usage::recorded(&user, &key, answer, start, 1_795_000_000))
            .await
            .map_err(|e| e.to_string())?;
    }
    account(&m.services, &user)
        .await
        .map_err(|e| e.to_string())?;
    let (view, cost) = phase(&m, || async {
        account(&m.services, &user).await.map_err(|e| e.to_string())
    })
    .await?;
    if view.purchases.len() != 20 || view.purchases_next.is_none() {
        return Err("the account did not show its latest 20 purchases".into());
    }
    Ok(cost.rru)
}

/// RRUs of one admin list page (50 events, no state filter) after 120 deliveries whose
/// payloads are `size` bytes.
async fn admin_page_rru_at(size: usize) -> Result<u64, String> {
    use billing_core::usecases::admin::{EventsQuery, list_events};
    let m = Metered::new();
    let query = EventsQuery {
        state: None,
        limit: 50,
        cursor: None,
    };
    let template = payload(size);
    for n in 0..120 {
        m.deliver(&with_id(&template, n)).await?;
    }
    let (page, cost) = phase(&m, || async {
        list_events(&m.services, &query)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    if page.events.len() != 50 || page.next.is_none() {
        return Err(format!("the admin page held {} events", page.events.len()));
    }
    Ok(cost.rru)
}

/// Intake's latency per new event (p50, p99 over `events` deliveries, one at a time) when
/// every store and queue call takes `delay` more, as a round trip to DynamoDB or SQS does.
async fn intake_latency(delay: Duration, events: u64) -> Result<Value, String> {
    let services = Services {
        config: Arc::new(billing_testing::config(&[])),
        table: Arc::new(Delayed::new(MemoryTable::new(), delay)),
        queue: Arc::new(Delayed::new(MemoryQueue::default(), delay)),
        clock: Arc::new(SystemClock),
        stripe: None,
        metrics: Arc::new(billing_core::metrics::memory::MemoryMetrics::default()),
        secrets: None,
    };
    let template = payload(SIZES[1].1);
    let mut samples = Vec::with_capacity(events as usize);
    for n in 0..events {
        let body = with_id(&template, n);
        let header = signature(TEST_WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
        let start = Instant::now();
        let outcome = intake::receive(&services, Some(&header), body.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
        if outcome != IntakeOutcome::Queued {
            return Err(format!("delivery {n} answered {outcome:?}"));
        }
    }
    samples.sort_by(f64::total_cmp);
    Ok(json!({
        "delay_ms": delay.as_secs_f64() * 1e3,
        "events": events,
        "payload_bytes": template.len(),
        "p50_ms": quantile(&samples, 0.5),
        "p99_ms": quantile(&samples, 0.99),
    }))
}

/// The first-time cost of each start-up step, in this fresh process, in milliseconds.
async fn startup() -> Result<(), String> {
    let mut steps = serde_json::Map::new();
    let mut time = |name: &str, since: Instant| {
        steps.insert(name.into(), (since.elapsed().as_secs_f64() * 1e3).into());
    };
    let t = Instant::now();
    billing_core::runtime::logging::init_tracing();
    time("tracing", t);
    let t = Instant::now();
    let config = billing_core::app::config::Config::from_env().map_err(|e| e.to_string())?;
    time("config (env + catalog)", t);
    let t = Instant::now();
    let services = Services::from_env().await.map_err(|e| e.to_string())?;
    time("services (lazy)", t);
    let t = Instant::now();
    let aws = aws_config::load_from_env().await;
    time("aws config (first store/queue call)", t);
    let t = Instant::now();
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    time("dynamodb client (first store call)", t);
    let t = Instant::now();
    let _sqs = aws_sdk_sqs::Client::new(&aws);
    time("sqs client (first queue call)", t);
    let t = Instant::now();
    let _ = dynamo.list_tables().limit(1).send().await;
    time("first DynamoDB request (connection, signing)", t);
    let t = Instant::now();
    let _client = reqwest::Client::builder()
        .build()
        .map_err(|e| e.to_string())?;
    time("HTTPS client with root certificates (first Stripe call)", t);
    drop((config, services));
    println!("{}", Value::Object(steps));
    Ok(())
}

async fn provision(moto: &str, prefix: &str) -> Result<(), String> {
    let sdk = local_stack::stack::moto_sdk_config(moto).await;
    let res = local_stack::provision::provision(
        local_stack::provision::TEMPLATE,
        prefix,
        &aws_sdk_dynamodb::Client::new(&sdk),
        &aws_sdk_sqs::Client::new(&sdk),
        None,
    )
    .await
    .map_err(|e| e.to_string())?;
    let table = res
        .tables
        .get("BillingTable")
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let queue = res
        .queues
        .get("FulfilmentQueue")
        .and_then(|q| q.url.clone())
        .unwrap_or_default();
    println!("BILLING_TABLE={table}\nFULFILMENT_QUEUE_URL={queue}");
    Ok(())
}

const JWT_SECRET: &str = "bench-jwt-secret";
/// How often a client reads checkout-status while it waits, as a return page would poll;
/// faster polling mostly loads moto, which serves the worker too.
const POLL_MS: u64 = 100;

struct Sample {
    intake_ms: f64,
    e2e_ms: f64,
}

/// One client's share of the events: deliver, then read the checkout until it is fulfilled.
async fn client(
    base: String,
    http: reqwest::Client,
    next: Arc<AtomicUsize>,
    events: usize,
) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= events {
            return Ok(samples);
        }
        let session = format!("cs_test_tp_{i:06}");
        let body = event(
            &format!("evt_tp_{i:06}"),
            "checkout.session.completed",
            chrono::Utc::now().timestamp(),
            checkout_session(&session, &format!("tp{i}"), "credits_starter", "paid", 1000),
        )
        .to_string();
        let start = Instant::now();
        let header = signature(TEST_WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
        let r = http
            .post(format!("{base}/api/stripe/webhook"))
            .header("stripe-signature", header)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        if status != 200 || !text.contains("queued") {
            return Err(format!("event {i}: intake answered {status} {text}"));
        }
        let intake_ms = start.elapsed().as_secs_f64() * 1e3;
        let url = format!("{base}/api/billing/checkout-status?session_id={session}");
        loop {
            let state: Value = http
                .get(&url)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            if state["state"] == "fulfilled" {
                break;
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err(format!("event {i} was not fulfilled within 120 s"));
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
        samples.push(Sample {
            intake_ms,
            e2e_ms: start.elapsed().as_secs_f64() * 1e3,
        });
    }
}

async fn throughput(events: usize, concurrency: usize) -> Result<Value, String> {
    let moto = local_stack::moto::shared_endpoint().map_err(|e| e.to_string())?;
    let env: HashMap<String, String> = HashMap::from([
        ("STRIPE_WEBHOOK_SECRET".into(), TEST_WEBHOOK_SECRET.into()),
        ("PUBLIC_BASE_URL".into(), "https://app.example.com".into()),
    ]);
    let stack = LocalStack::start(StackOptions {
        moto_endpoint: moto,
        port: 0,
        prefix: format!("tp{}", std::process::id()),
        env,
        jwt_secret: JWT_SECRET.into(),
        visibility_override: Some(10),
        template: None,
    })
    .await
    .map_err(|e| e.to_string())?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    let base = stack.base_url.clone();

    // One event end to end first, so connections and moto's tables are warm.
    let warm = Arc::new(AtomicUsize::new(0));
    client(base.clone(), http.clone(), warm, 1).await?;

    let next = Arc::new(AtomicUsize::new(1));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(client(base.clone(), http.clone(), next.clone(), events + 1)))
        .collect();
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.map_err(|e| e.to_string())??);
    }
    let seconds = start.elapsed().as_secs_f64();

    // Untimed: every account holds exactly one pack.
    let balances: Vec<Result<Value, String>> = futures::stream::iter(1..=events)
        .map(|i| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let token =
                    local_stack::auth::token(JWT_SECRET, &format!("tp{i}"), None, "openid", 3600);
                // A 503 says "try again" (moto fails some requests under this load): a
                // client retries it; only the answer it ends with is checked.
                let mut refused = 0;
                loop {
                    let r = http
                        .get(format!("{base}/api/billing/account"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = r.status().as_u16();
                    let mut body = r.json::<Value>().await.map_err(|e| e.to_string())?;
                    if status == 503 && refused < 10 {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    body["http_status"] = status.into();
                    body["refused_before"] = refused.into();
                    break Ok(body);
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let (mut wrong, mut refused) = (Vec::new(), 0);
    for account in balances {
        let account = account?;
        refused += account["refused_before"].as_u64().unwrap_or(0);
        if account["credits"]["balance"] != 1000 {
            wrong.push(account);
        }
    }
    let mut intake: Vec<f64> = samples.iter().map(|s| s.intake_ms).collect();
    let mut e2e: Vec<f64> = samples.iter().map(|s| s.e2e_ms).collect();
    intake.sort_by(f64::total_cmp);
    e2e.sort_by(f64::total_cmp);
    Ok(json!({
        "events": samples.len(),
        "concurrency": concurrency,
        "seconds": seconds,
        "events_per_s": samples.len() as f64 / seconds,
        "intake_p50_ms": quantile(&intake, 0.5),
        "intake_p99_ms": quantile(&intake, 0.99),
        "e2e_p50_ms": quantile(&e2e, 0.5),
        "e2e_p99_ms": quantile(&e2e, 0.99),
        "accounts_wrong": wrong.len(),
        "accounts_wrong_examples": wrong.iter().take(3).collect::<Vec<_>>(),
        "account_reads_refused_then_retried": refused,
    }))
}
