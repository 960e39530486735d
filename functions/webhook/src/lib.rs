//! `POST /api/stripe/webhook`: verify, record once, queue, answer (`docs/api.md`).

use billing_core::app::Services;
use billing_core::inbound::http::{self, ApiError};
use billing_core::usecases::intake;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(services: &Services, req: Request) -> Result<Response<Body>, Error> {
    // lambda_http has already decoded a body API Gateway marked as base64.
    let signature = http::header(&req, "stripe-signature");
    let outcome = intake::receive(services, signature, req.body().as_ref()).await;
    Ok(http::respond(
        outcome
            .map(|o| (200, serde_json::json!({ "status": o.as_str() })))
            .map_err(ApiError::from),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use billing_testing::{TEST_WEBHOOK_SECRET, memory_services, signature};
    use serde_json::Value;

    const SAMPLE: &str = include_str!("../../../events/webhook.json");

    /// The sample API Gateway event, re-signed now, optionally with a base64 body.
    fn sample(base64_body: bool, secret: &str) -> Request {
        let mut event: Value = serde_json::from_str(SAMPLE).unwrap();
        let body = event["body"].as_str().unwrap().to_owned();
        event["headers"]["stripe-signature"] =
            signature(secret, chrono::Utc::now().timestamp(), &body).into();
        if base64_body {
            event["body"] = base64::engine::general_purpose::STANDARD
                .encode(&body)
                .into();
            event["isBase64Encoded"] = true.into();
        }
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    async fn status_of(resp: Response<Body>) -> (u16, Value) {
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_slice(resp.body().as_ref()).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_sample_event_is_queued_then_a_duplicate() {
        let services = memory_services(&[]);
        let first = status_of(
            handle(&services, sample(false, TEST_WEBHOOK_SECRET))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(first, (200, serde_json::json!({ "status": "queued" })));
        let again = status_of(
            handle(&services, sample(false, TEST_WEBHOOK_SECRET))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(again, (200, serde_json::json!({ "status": "duplicate" })));
    }

    #[tokio::test]
    async fn a_base64_encoded_body_is_verified_over_its_decoded_bytes() {
        let services = memory_services(&[]);
        let (status, body) = status_of(
            handle(&services, sample(true, TEST_WEBHOOK_SECRET))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, body["status"].as_str()), (200, Some("queued")));
    }

    #[tokio::test]
    async fn a_wrong_secret_gets_the_contract_error_without_internals() {
        let services = memory_services(&[]);
        let (status, body) = status_of(
            handle(&services, sample(false, "whsec_wrong"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "invalid_signature");
        assert!(!body.to_string().contains(TEST_WEBHOOK_SECRET));
    }
}
