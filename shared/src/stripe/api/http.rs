//! The HTTP adapter of the Stripe port: reqwest with rustls, retries where Stripe says a
//! retry is safe, the key never printed. The port's methods as Stripe's paths are in
//! `port`, the forms they send in [`forms`].

pub mod forms;
mod port;

use super::error::{StripeError, api_error};
use super::{Form, STRIPE_VERSION, SecretKeySource};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub request_timeout: Duration,
}

impl RetryPolicy {
    /// The longest one call can take: every attempt running to its timeout, plus the
    /// backoff between them. Function timeouts and the worker's time budget are sized from
    /// it (docs/stripe-fidelity.md).
    pub fn worst_case(&self) -> Duration {
        let attempts = self.request_timeout * (self.max_retries + 1);
        let backoff: Duration = (0..self.max_retries)
            .map(|n| self.base_delay * 2u32.pow(n))
            .sum();
        attempts + backoff
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Two retries within a 10 s Lambda: 3 × 2.5 s attempts plus 0.25 + 0.5 s of backoff
        // (8.25 s, `worst_case`); the worker's budget counts two such calls per event.
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(250),
            request_timeout: Duration::from_millis(2500),
        }
    }
}

#[derive(Clone)]
pub struct HttpStripe {
    /// Built by the first call: its TLS setup (root certificates) is most of a cold
    /// start's cost, and most invocations of most functions never call Stripe.
    http: std::sync::OnceLock<reqwest::Client>,
    base: String,
    key: std::sync::Arc<dyn SecretKeySource>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for HttpStripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStripe")
            .field("base", &self.base)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

enum Method {
    Get,
    Post,
}

impl HttpStripe {
    pub fn new(base: &str, key: SecretString, retry: RetryPolicy) -> Self {
        Self::with_key_source(base, std::sync::Arc::new(key), retry)
    }

    /// A client that asks `key` for the secret key on every call (a rotated key is used
    /// as soon as the source has it).
    pub fn with_key_source(
        base: &str,
        key: std::sync::Arc<dyn SecretKeySource>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http: std::sync::OnceLock::new(),
            base: base.trim_end_matches('/').to_owned(),
            key,
            retry,
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .pool_idle_timeout(Duration::from_secs(90))
                .user_agent(concat!("billing-backend/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default()
        })
    }

    /// A form POST to `path` under `idempotency_key`.
    async fn post_form<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<T, StripeError> {
        self.call(Method::Post, path, Some(form), Some(idempotency_key))
            .await
    }

    /// A GET of `path` with `query` (may be empty).
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &Form,
    ) -> Result<T, StripeError> {
        let url = match query.0.is_empty() {
            true => path.to_owned(),
            false => format!("{path}?{}", query.encode()),
        };
        self.call(Method::Get, &url, None, None).await
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: Option<&Form>,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let url = format!("{}{path}", self.base);
        let key = self
            .key
            .secret_key()
            .await
            .ok_or_else(|| StripeError::Network("no Stripe secret key is configured".into()))?;
        let mut attempt = 0;
        loop {
            let mut req = match method {
                Method::Get => self.http().get(&url),
                Method::Post => self.http().post(&url),
            }
            .bearer_auth(key.expose_secret())
            .header("Stripe-Version", STRIPE_VERSION)
            .timeout(self.retry.request_timeout);
            if let Some(key) = idempotency_key {
                req = req.header("Idempotency-Key", key);
            }
            if let Some(form) = form {
                req = req
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form.encode());
            }
            let (result, retryable) = match req.send().await {
                Err(e) if e.is_timeout() => (Err(StripeError::Timeout), true),
                Err(e) => (Err(StripeError::Network(without_url(&e))), true),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let should_retry = resp
                        .headers()
                        .get("stripe-should-retry")
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v == "true");
                    match resp.bytes().await {
                        Err(e) if e.is_timeout() => (Err(StripeError::Timeout), true),
                        Err(e) => (Err(StripeError::Network(without_url(&e))), true),
                        Ok(body) if (200..300).contains(&status) => (
                            serde_json::from_slice(&body)
                                .map_err(|e| StripeError::Decode(e.to_string())),
                            false,
                        ),
                        Ok(body) => {
                            let retry = should_retry
                                .unwrap_or(status == 409 || status == 429 || status >= 500);
                            (Err(api_error(status, &body)), retry)
                        }
                    }
                }
            };
            if result.is_ok() || !retryable || attempt >= self.retry.max_retries {
                return result;
            }
            attempt += 1;
            tokio::time::sleep(self.retry.base_delay * 2u32.pow(attempt - 1)).await;
        }
    }
}

/// reqwest errors name the URL; ours never leave the process, but keep them short anyway.
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "<stripe>");
    }
    msg
}
