//! The local stack's IAM: a loopback proxy in front of moto that every function's AWS
//! clients talk to. A function signs with an access key id that is its logical id in
//! `template.yaml`; the proxy evaluates the request against that function's statements
//! ([`crate::iam`]) and answers a denial exactly as the service would (moto ignores IAM),
//! or passes the request on untouched. Requests signed with any other key (the harness's
//! own provisioning and inspection) pass unchecked.
//!
//! A proxy rather than a layer around the adapters: it sees the very requests the SDK sends
//! (transaction items, batch entries, index names), whatever code path built them.

use crate::iam::{self, Catalog, Decision, FunctionPolicy};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One refused request, as the log and the tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub function: String,
    pub action: String,
    pub resource: String,
    pub leading_keys: Option<Vec<String>>,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AccessDenied: {} may not {} on {}",
            self.function, self.action, self.resource
        )?;
        if let Some(keys) = &self.leading_keys {
            write!(f, " (LeadingKeys {})", keys.join(", "))?;
        }
        Ok(())
    }
}

pub struct Enforcer {
    moto: String,
    principals: HashMap<String, FunctionPolicy>,
    catalog: Catalog,
    denials: Mutex<Vec<Denial>>,
    client: reqwest::Client,
}

/// The access key id a function signs with.
pub fn access_key(policy: &FunctionPolicy) -> String {
    policy.logical_id.clone()
}

fn key_of(req: &Request<Incoming>) -> Option<String> {
    let auth = req.headers().get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    Some(credential.split('/').next()?.to_owned())
}

impl Enforcer {
    pub fn new(moto: &str, policies: Vec<FunctionPolicy>, catalog: Catalog) -> Self {
        Self {
            moto: moto.trim_end_matches('/').to_owned(),
            principals: policies.into_iter().map(|p| (access_key(&p), p)).collect(),
            catalog,
            denials: Mutex::new(Vec::new()),
            client: reqwest::Client::new(),
        }
    }

    /// Every request refused so far.
    pub fn denials(&self) -> Vec<Denial> {
        self.denials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `None`: allowed (or not a function's request); `Some`: the service's answer.
    fn decide(
        &self,
        key: Option<&str>,
        target: &str,
        body: &[u8],
    ) -> Option<Response<Full<Bytes>>> {
        let policy = self.principals.get(key?)?;
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let checks = match iam::checks(target, &json, &self.catalog) {
            Ok(c) => c,
            Err(why) => {
                // A request the check cannot read is refused, never waved through.
                let check = iam::Check {
                    action: target.to_owned(),
                    resource: format!("unreadable request: {why}"),
                    leading_keys: None,
                };
                return Some(self.refuse(policy, target, &check, Decision::ImplicitDeny));
            }
        };
        if let Some(path) = std::env::var_os("LOCAL_IAM_REQUESTS_LOG") {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                for c in &checks {
                    let _ = writeln!(
                        f,
                        "{}\t{}\t{}\t{:?}",
                        policy.logical_id, c.action, c.resource, c.leading_keys
                    );
                }
            }
        }
        checks.iter().find_map(|check| {
            let decision = iam::evaluate(&policy.statements, check);
            (decision != Decision::Allowed).then(|| self.refuse(policy, target, check, decision))
        })
    }

    fn refuse(
        &self,
        policy: &FunctionPolicy,
        target: &str,
        check: &iam::Check,
        decision: Decision,
    ) -> Response<Full<Bytes>> {
        let denial = Denial {
            function: policy.logical_id.clone(),
            action: check.action.clone(),
            resource: check.resource.clone(),
            leading_keys: check.leading_keys.clone(),
        };
        tracing::warn!(%denial, "the function's template policy does not allow this request");
        // For a whole test run's record of denials, whatever the test asserted.
        if let Some(path) = std::env::var_os("LOCAL_IAM_DENIALS_LOG") {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{denial}");
            }
        }
        self.denials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(denial);
        let (status, content_type, body) = iam::denial(target, &policy.logical_id, check, decision);
        let mut response = Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string());
        if target.starts_with("AmazonSQS.") {
            response = response.header("x-amzn-query-error", "AccessDenied;Sender");
        }
        response
            .body(Full::new(Bytes::from(body)))
            .expect("static headers are valid")
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let key = key_of(&req);
        let target = req
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return plain(502, &format!("reading the request failed: {e}")),
        };
        if let Some(denied) = self.decide(key.as_deref(), &target, &body) {
            return denied;
        }
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::POST);
        let mut forward = self.client.request(method, format!("{}{path}", self.moto));
        for (name, value) in &parts.headers {
            if !matches!(name.as_str(), "host" | "content-length" | "connection") {
                forward = forward.header(name.as_str(), value.as_bytes());
            }
        }
        let answer = match forward.body(body).send().await {
            Ok(a) => a,
            Err(e) => return plain(502, &format!("moto did not answer: {e}")),
        };
        let mut response = Response::builder().status(answer.status().as_u16());
        for (name, value) in answer.headers() {
            if !matches!(
                name.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            ) {
                response = response.header(name.as_str(), value.as_bytes());
            }
        }
        let bytes = answer.bytes().await.unwrap_or_default();
        response
            .body(Full::new(bytes))
            .unwrap_or_else(|e| plain(502, &e.to_string()))
    }
}

fn plain(status: u16, text: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(text.to_owned())))
        .expect("a plain response is valid")
}

/// Starts the proxy on a free loopback port; returns its endpoint and its task.
pub async fn start(enforcer: Arc<Enforcer>) -> std::io::Result<(String, JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let enforcer = enforcer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let enforcer = enforcer.clone();
                    async move { Ok::<_, std::convert::Infallible>(enforcer.handle(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((endpoint, task))
}
