//! The CloudWatch adapter of the metrics port, in Embedded Metric Format: one JSON line per
//! metric on stdout, which Lambda's log pipeline turns into metrics, so dashboards and
//! alarms need no extra library or call.

use super::{Metric, Metrics};
use serde_json::json;

pub const NAMESPACE: &str = "Billing";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// The EMF document for one value of `name`, dimensioned by `function`.
pub fn emf_line(function: &str, name: &str, value: f64, unit: Unit, timestamp_ms: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [{ "Name": name, "Unit": unit.as_str() }],
            }],
        },
        "Function": function,
        name: value,
    })
    .to_string()
}

/// Emits one metric line (stdout is what CloudWatch Logs reads for EMF).
fn emit(function: &str, name: &str, value: f64, unit: Unit) {
    println!(
        "{}",
        emf_line(
            function,
            name,
            value,
            unit,
            chrono::Utc::now().timestamp_millis()
        )
    );
}

/// Metrics as EMF lines on stdout (what CloudWatch Logs reads for EMF).
#[derive(Debug, Default, Clone, Copy)]
pub struct EmfMetrics;

impl Metrics for EmfMetrics {
    fn record(&self, metric: Metric) {
        let (function, name, value, unit) = emf_value(metric);
        emit(function, name, value, unit);
    }
}

/// The function dimension, name, value and unit a metric is published under (the names
/// the template's alarms and dashboards use).
pub fn emf_value(metric: Metric) -> (&'static str, &'static str, f64, Unit) {
    match metric {
        Metric::EventReceived => ("webhook", names::EVENTS_RECEIVED, 1.0, Unit::Count),
        Metric::EventDuplicate => ("webhook", names::EVENTS_DUPLICATE, 1.0, Unit::Count),
        Metric::EventIgnored => ("webhook", names::EVENTS_IGNORED, 1.0, Unit::Count),
        Metric::EventModeMismatch => ("webhook", names::EVENTS_MODE_MISMATCH, 1.0, Unit::Count),
        Metric::EventFailed => ("worker", names::EVENTS_FAILED, 1.0, Unit::Count),
        Metric::FulfilmentLatency { millis } => (
            "worker",
            names::FULFILMENT_LATENCY,
            millis as f64,
            Unit::Milliseconds,
        ),
        Metric::UsageDenied => ("usage", names::USAGE_DENIED, 1.0, Unit::Count),
    }
}

/// Metric names, in one place for dashboards and alarms.
pub mod names {
    pub const EVENTS_RECEIVED: &str = "EventsReceived";
    pub const EVENTS_DUPLICATE: &str = "EventsDuplicate";
    pub const EVENTS_IGNORED: &str = "EventsIgnored";
    pub const EVENTS_FAILED: &str = "EventsFailed";
    /// A verified event of the other mode than the key's, answered 503 so Stripe retries it.
    pub const EVENTS_MODE_MISMATCH: &str = "EventsModeMismatch";
    pub const FULFILMENT_LATENCY: &str = "FulfilmentLatency";
    pub const USAGE_DENIED: &str = "UsageDenied";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_metric_keeps_the_name_and_function_the_alarms_and_dashboards_read() {
        let published: Vec<_> = [
            Metric::EventReceived,
            Metric::EventDuplicate,
            Metric::EventIgnored,
            Metric::EventModeMismatch,
            Metric::EventFailed,
            Metric::FulfilmentLatency { millis: 1500 },
            Metric::UsageDenied,
        ]
        .into_iter()
        .map(emf_value)
        .collect();
        assert_eq!(
            published,
            [
                ("webhook", "EventsReceived", 1.0, Unit::Count),
                ("webhook", "EventsDuplicate", 1.0, Unit::Count),
                ("webhook", "EventsIgnored", 1.0, Unit::Count),
                ("webhook", "EventsModeMismatch", 1.0, Unit::Count),
                ("worker", "EventsFailed", 1.0, Unit::Count),
                ("worker", "FulfilmentLatency", 1500.0, Unit::Milliseconds),
                ("usage", "UsageDenied", 1.0, Unit::Count),
            ]
        );
    }

    #[test]
    fn an_emf_line_declares_its_metric_and_carries_its_value() {
        let line: serde_json::Value =
            serde_json::from_str(&emf_line("webhook", "EventsReceived", 1.0, Unit::Count, 7))
                .unwrap();
        assert_eq!(line["_aws"]["Timestamp"], 7);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "EventsReceived"
        );
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Function"
        );
        assert_eq!(
            (line["Function"].as_str(), line["EventsReceived"].as_f64()),
            (Some("webhook"), Some(1.0))
        );
    }
}
