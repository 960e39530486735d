//! What `make bench` measures with, shared by the criterion bench (`benches/intake.rs`) and
//! the `bench` tool (`src/main.rs`): webhook payloads of chosen sizes built from Stripe's
//! official fixtures, and store and queue wrappers that count what DynamoDB and SQS would
//! bill for each request.

pub mod delayed;
pub mod features;
pub mod metered;

use billing_testing::{checkout_session, event, fixture};
use serde_json::{Value, json};

/// The payload sizes the intake path is measured at, as (label, target bytes).
pub const SIZES: [(&str, usize); 3] = [("1KB", 1024), ("8KB", 8 * 1024), ("64KB", 64 * 1024)];

/// The fixed-width id every template payload carries, replaced per delivery by [`with_id`].
pub const TEMPLATE_ID: &str = "evt_bench_000000000000";

/// The session's fields our code reads, kept when a payload is trimmed to a small size.
const ESSENTIAL: &[&str] = &[
    "id",
    "object",
    "client_reference_id",
    "customer",
    "metadata",
    "mode",
    "payment_status",
    "status",
    "amount_total",
    "currency",
    "payment_intent",
    "created",
    "livemode",
];

fn drop_empty(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, x| {
            !(x.is_null()
                || x.as_object().is_some_and(|o| o.is_empty())
                || x.as_array().is_some_and(|a| a.is_empty())
                || x.as_str() == Some(""))
        });
        map.values_mut().for_each(drop_empty);
    }
}

/// A signed-ready `checkout.session.completed` event (a paid credit pack, as our checkout
/// creates it) whose compact JSON is within a few bytes of `target`, with id [`TEMPLATE_ID`].
///
/// Small targets drop the fixture's empty fields, then its fields our code never reads;
/// large ones add the session's line items (the official `item` fixture, each with its own
/// id), then one metadata note for the last few bytes.
pub fn payload(target: usize) -> String {
    let session = checkout_session(
        "cs_test_bench_0001",
        "bench_user",
        "credits_starter",
        "paid",
        1000,
    );
    let mut e = event(
        TEMPLATE_ID,
        "checkout.session.completed",
        1_795_000_000,
        session,
    );
    let size = |e: &Value| e.to_string().len();
    if size(&e) > target {
        drop_empty(&mut e["data"]["object"]);
        let removable: Vec<String> = e["data"]["object"]
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| !ESSENTIAL.contains(&k.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for key in removable {
            if size(&e) <= target {
                break;
            }
            if let Some(o) = e["data"]["object"].as_object_mut() {
                o.remove(&key);
            }
        }
    }
    let item = fixture("item");
    let mut n = 0;
    loop {
        let mut line = item.clone();
        line["id"] = format!("li_bench_{n:06}").into();
        let grown = size(&e) + line.to_string().len() + 1;
        if grown > target {
            break;
        }
        let object = &mut e["data"]["object"];
        if object.get("line_items").is_none() {
            object["line_items"] = json!({ "object": "list", "data": [], "has_more": false,
                "url": "/v1/checkout/sessions/cs_test_bench_0001/line_items" });
        }
        if let Some(data) = object["line_items"]["data"].as_array_mut() {
            data.push(line);
        }
        n += 1;
    }
    let missing = target.saturating_sub(size(&e) + r#","note":"""#.len());
    if missing > 0 {
        e["data"]["object"]["metadata"]["note"] = "n".repeat(missing).into();
    }
    e.to_string()
}

/// `template` with its [`TEMPLATE_ID`] replaced by a fresh id of the same width.
pub fn with_id(template: &str, n: u64) -> String {
    template.replacen(TEMPLATE_ID, &format!("evt_bench_{n:012}"), 1)
}

/// The `q`-quantile (0..=1) of `sorted` (ascending), nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_events_within_a_few_bytes_of_their_target_size() {
        for (label, target) in SIZES {
            let p = payload(target);
            let parsed: Value = serde_json::from_str(&p).unwrap();
            assert_eq!(parsed["type"], "checkout.session.completed", "{label}");
            assert!(
                p.len() <= target && p.len() + 64 >= target,
                "{label}: {} bytes",
                p.len()
            );
            assert_eq!(with_id(&p, 7).len(), p.len());
        }
    }
}
