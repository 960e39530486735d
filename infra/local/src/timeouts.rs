//! Each function's `Timeout` as `template.yaml` gives it (its own, else
//! `Globals.Function.Timeout`, else Lambda's default of 3 s), and the stop Lambda puts to an
//! invocation that runs past it: the local stack runs every handler under
//! `tokio::time::timeout`, so the handler's future is dropped at the deadline and nothing it
//! would have done after that point happens (moto never stops anything). What the caller
//! then sees is what API Gateway and the SQS mapping see: a 503 for HTTP, and for the queue
//! the whole batch left to come back after its visibility timeout (`esm`).

use crate::provision::{ProvisionError, parse, resources_of};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Lambda's own default, for a template that sets none.
pub const LAMBDA_DEFAULT: Duration = Duration::from_secs(3);

fn seconds(v: Option<&Value>) -> Option<Duration> {
    v.and_then(Value::as_u64).map(Duration::from_secs)
}

/// Every function's timeout, by its binary (`Metadata.BuildProperties.Binary`).
pub fn declared(template: &str) -> Result<BTreeMap<String, Duration>, ProvisionError> {
    let doc = parse(template)?;
    let global = seconds(
        doc.get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Timeout")),
    )
    .unwrap_or(LAMBDA_DEFAULT);
    let resources = doc.get("Resources").and_then(Value::as_mapping);
    let mut out = BTreeMap::new();
    for (logical, props) in resources_of(&doc, "AWS::Serverless::Function") {
        let binary = resources
            .and_then(|r| r.get(logical.as_str()))
            .and_then(|r| r.get("Metadata"))
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str)
            .ok_or_else(|| ProvisionError::Template(format!("{logical} names no Binary")))?;
        out.insert(
            binary.to_owned(),
            seconds(props.get("Timeout")).unwrap_or(global),
        );
    }
    Ok(out)
}

/// API Gateway's answer when the function did not answer in time (its own body shape, not
/// the project's: the function never got to write one).
pub fn timed_out_body() -> serde_json::Value {
    serde_json::json!({ "message": "Service Unavailable" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_core::stripe::api::RetryPolicy;

    #[test]
    fn a_function_s_own_timeout_wins_over_the_global_one() {
        let t = declared(crate::provision::TEMPLATE).unwrap();
        assert_eq!(t["worker"], Duration::from_secs(30));
        assert_eq!(
            t["worker"],
            worker::TEMPLATE_TIMEOUT,
            "the worker's fallback is the template's"
        );
        assert_eq!(t["checkout"], Duration::from_secs(10), "the Globals value");
        assert_eq!(t["admin"], Duration::from_secs(60));
    }

    #[test]
    fn the_worker_can_finish_one_worst_case_event_within_its_timeout_and_every_function_one_stripe_call()
     {
        let t = declared(crate::provision::TEMPLATE).unwrap();
        let one_event = billing_core::usecases::fulfil::worst_case_event(&RetryPolicy::default());
        assert!(
            one_event + worker::FINISHING < t["worker"],
            "{one_event:?} + {:?} must fit {:?}",
            worker::FINISHING,
            t["worker"]
        );
        for (function, timeout) in &t {
            assert!(
                RetryPolicy::default().worst_case() < *timeout,
                "{function}: one Stripe call with its retries must fit {timeout:?}"
            );
        }
    }
}
