//! The webhook intake's CPU path at three payload sizes (`make bench` reads the estimates):
//!
//! - `floor`: HMAC-SHA256 over `"{t}.{body}"` plus `serde_json` parsing the body, nothing else;
//! - `verify_parse`: `intake::verify` (size check, header parse, constant-time compare
//!   against every configured secret, tolerance, typed parse, id check), what the SDK peers do;
//! - `receive`: `intake::receive` on in-memory adapters, each iteration a new event id, so
//!   every delivery goes all the way: verify, parse, claim (conditional put of the redacted
//!   record), send to the queue, mark queued, metric line and log line.

use bench::{SIZES, payload, with_id};
use billing_core::usecases::intake::{self, IntakeOutcome};
use billing_testing::{TEST_WEBHOOK_SECRET, memory_services, signature};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Deliveries per fresh set of in-memory services, so the store never holds more than this.
const CHUNK: u64 = 50;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn floor(secret: &[u8], timestamp: &str, body: &[u8]) -> serde_json::Value {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    black_box(mac.finalize().into_bytes());
    serde_json::from_slice(body).expect("the payload is JSON")
}

fn intake(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("intake");
    for (label, target) in SIZES {
        let template = payload(target);
        group.throughput(Throughput::Bytes(template.len() as u64));

        let now = chrono::Utc::now().timestamp();
        let ts = now.to_string();
        group.bench_with_input(BenchmarkId::new("floor", label), &template, |b, body| {
            b.iter(|| {
                floor(
                    TEST_WEBHOOK_SECRET.as_bytes(),
                    &ts,
                    black_box(body.as_bytes()),
                )
            })
        });

        let services = memory_services(&[]);
        let header = signature(TEST_WEBHOOK_SECRET, now, &template);
        group.bench_with_input(
            BenchmarkId::new("verify_parse", label),
            &template,
            |b, body| {
                b.iter(|| {
                    intake::verify(&services, Some(black_box(&header)), body.as_bytes())
                        .expect("a signed event verifies")
                })
            },
        );

        group.bench_with_input(BenchmarkId::new("receive", label), &template, |b, tpl| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(CHUNK);
                    // Untimed: fresh services and n signed deliveries of new events.
                    let services = memory_services(&[]);
                    let now = chrono::Utc::now().timestamp();
                    let deliveries: Vec<(String, String)> = (0..n)
                        .map(|_| {
                            let body = with_id(tpl, NEXT_ID.fetch_add(1, Ordering::Relaxed));
                            let header = signature(TEST_WEBHOOK_SECRET, now, &body);
                            (body, header)
                        })
                        .collect();
                    let start = Instant::now();
                    rt.block_on(async {
                        for (body, header) in &deliveries {
                            let outcome =
                                intake::receive(&services, Some(header), body.as_bytes()).await;
                            assert!(matches!(outcome, Ok(IntakeOutcome::Queued)));
                        }
                    });
                    spent += start.elapsed();
                    done += n;
                }
                spent
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    // Short runs: the whole `make bench` stays within minutes; the estimates stay tight
    // because each sample holds thousands of iterations.
    Criterion::default()
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = intake }
criterion_main!(benches);
