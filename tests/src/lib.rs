//! The black-box harness: a real local stack (moto + the functions' handlers behind the
//! HTTP front) on a free loopback port, driven over HTTP like any client would.
//!
//! One moto serves a whole test binary (started here, or by the test command through
//! `MOTO_ENDPOINT`); each `TestApp` gets its own tables and queues by prefix.

use billing_testing::{TEST_WEBHOOK_SECRET, signature};
use local_stack::auth;
use local_stack::moto::shared_endpoint;
use local_stack::{LocalStack, StackOptions};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const JWT_SECRET: &str = "test-jwt-secret";

pub struct TestApp {
    pub stack: LocalStack,
    pub http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub fn unique_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// A stack whose functions see the test webhook secret plus `env`.
    pub async fn spawn_with(env: &[(&str, &str)]) -> Self {
        Self::spawn_from(env, None).await
    }

    /// As [`TestApp::spawn_with`], deployed from `template` (a changed copy of
    /// template.yaml) instead of the repository's.
    pub async fn spawn_from(env: &[(&str, &str)], template: Option<String>) -> Self {
        let mut vars: HashMap<String, String> = HashMap::from([
            ("STRIPE_WEBHOOK_SECRET".into(), TEST_WEBHOOK_SECRET.into()),
            ("PUBLIC_BASE_URL".into(), "https://app.example.com".into()),
        ]);
        for (k, v) in env {
            vars.insert(k.to_string(), v.to_string());
        }
        let opts = StackOptions {
            moto_endpoint: shared_endpoint()
                .expect("moto_server is needed; run infra/bootstrap.sh"),
            port: 0,
            prefix: unique_prefix(),
            env: vars,
            jwt_secret: JWT_SECRET.into(),
            visibility_override: Some(2),
            template,
        };
        let stack = LocalStack::start(opts)
            .await
            .expect("the local stack starts");
        Self {
            stack,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.base_url)
    }

    pub fn token(&self, user: &str) -> String {
        auth::token(
            JWT_SECRET,
            user,
            Some(&format!("{user}@example.com")),
            "openid",
            3600,
        )
    }

    async fn reply(r: reqwest::Response) -> Reply {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Posts `body` to the webhook with `signature_header` as given (or none).
    pub async fn post_webhook(&self, body: &str, signature_header: Option<&str>) -> Reply {
        let mut req = self
            .http
            .post(self.url("/api/stripe/webhook"))
            .body(body.to_owned());
        if let Some(h) = signature_header {
            req = req.header("stripe-signature", h);
        }
        Self::reply(req.send().await.expect("the stack answers")).await
    }

    /// Posts an event signed now with the test secret, as Stripe would.
    pub async fn deliver(&self, event: &Value) -> Reply {
        let body = event.to_string();
        let header = signature(TEST_WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
        self.post_webhook(&body, Some(&header)).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.send().await.expect("the stack answers")).await
    }

    /// Posts a JSON body to `path`, with a bearer token when given.
    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.send().await.expect("the stack answers")).await
    }

    pub async fn account(&self, user: &str) -> Value {
        let r = self
            .get("/api/billing/account", Some(&self.token(user)))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    pub async fn checkout_state(&self, session: &str) -> String {
        let r = self
            .get(
                &format!("/api/billing/checkout-status?session_id={session}"),
                None,
            )
            .await;
        r.body["state"].as_str().unwrap_or_default().to_owned()
    }

    /// Polls `probe` until it returns true, for up to 15 s (the queue is asynchronous).
    /// The messages a queue of the stack holds (its logical id in template.yaml): waiting,
    /// plus those received and not yet deleted when `in_flight` is set.
    pub async fn queue_depth(&self, queue: &str, in_flight: bool) -> i64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let url = self.stack.resources.queues[queue].url.clone().unwrap();
        let sdk = local_stack::stack::moto_sdk_config(&shared_endpoint().unwrap()).await;
        let mut wanted = vec![A::ApproximateNumberOfMessages];
        if in_flight {
            wanted.push(A::ApproximateNumberOfMessagesNotVisible);
        }
        let attrs = aws_sdk_sqs::Client::new(&sdk)
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(wanted.clone()))
            .send()
            .await
            .unwrap();
        let attrs = attrs.attributes().cloned().unwrap_or_default();
        wanted
            .iter()
            .map(|a| {
                attrs
                    .get(a)
                    .and_then(|n| n.parse::<i64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }

    pub async fn eventually<F, Fut>(&self, what: &str, mut probe: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !probe().await {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
