//! Stripe's errors, keeping the message a user may see apart from the one only operators
//! may read.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with an error object.
    #[error("Stripe refused ({status} {kind}): {internal}")]
    Api {
        status: u16,
        kind: String,
        code: Option<String>,
        /// Safe to show a user: Stripe's message for card errors, a generic one otherwise.
        user_message: String,
        /// For logs only: may name ids and parameters.
        internal: String,
    },
    /// Stripe has no such object (HTTP 404): another account's or mode's id, or one never
    /// made. The message is for logs only.
    #[error("Stripe has no such object: {0}")]
    NotFound(String),
    #[error("Stripe could not be reached: {0}")]
    Network(String),
    #[error("Stripe did not answer in time")]
    Timeout,
    #[error("Stripe's answer could not be read: {0}")]
    Decode(String),
}

impl StripeError {
    pub fn user_message(&self) -> &str {
        match self {
            StripeError::Api { user_message, .. } => user_message,
            StripeError::NotFound(_) => "the payment provider refused the request",
            _ => "the payment provider could not be reached; try again",
        }
    }
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorObject,
}

#[derive(Debug, Deserialize)]
struct ErrorObject {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The error an HTTP answer of `status` with `body` stands for.
pub(super) fn api_error(status: u16, body: &[u8]) -> StripeError {
    let parsed = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    let kind = parsed
        .as_ref()
        .and_then(|e| e.kind.clone())
        .unwrap_or_else(|| "api_error".to_owned());
    let message = parsed
        .as_ref()
        .and_then(|e| e.message.clone())
        .unwrap_or_else(|| format!("HTTP {status}"));
    if status == 404 {
        return StripeError::NotFound(message);
    }
    // Stripe writes card errors for customers; every other message is for developers.
    let user_message = if kind == "card_error" {
        message.clone()
    } else {
        "the payment provider refused the request".to_owned()
    };
    StripeError::Api {
        status,
        kind,
        code: parsed.and_then(|e| e.code),
        user_message,
        internal: message,
    }
}
