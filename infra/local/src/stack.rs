//! Assembles and starts a local stack: resources in moto from the template, the HTTP
//! front on a loopback port, and the queue → worker mapping.

use crate::cors::{AllowedOrigins, CorsError};
use crate::entitlement_events::{Received, run_mapping, subscribe};
use crate::provision::{self, ProvisionError, Resources};
use crate::server::Front;
use billing_core::app::Services;
use billing_core::app::config::{Config, ConfigError};
use billing_core::events::eventbridge::EventBridgeBus;
use billing_core::queue::Queue;
use billing_core::queue::sqs::SqsQueue;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct StackOptions {
    pub moto_endpoint: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Prefix of the created tables and queues, so stacks can share one moto.
    pub prefix: String,
    /// The environment the functions see (docs/api.md's configuration).
    pub env: HashMap<String, String>,
    pub jwt_secret: String,
    pub visibility_override: Option<u32>,
    /// The template to deploy; `None` is the repository's `template.yaml`.
    pub template: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on 127.0.0.1:{0}: {1}")]
    Listen(u16, std::io::Error),
    #[error(transparent)]
    Cors(#[from] CorsError),
}

pub struct LocalStack {
    pub base_url: String,
    /// The webhook function's configuration with the harness's unrestricted identity (not
    /// held to any template policy), for tests that reach past HTTP.
    pub services: Services,
    /// Every function's services, by binary, each built from its template environment.
    pub functions: HashMap<String, Services>,
    pub resources: Resources,
    /// The bus the publisher publishes to, as its template environment names it (`None`
    /// when the template gives it none: then no stream mapping runs).
    pub entitlement_bus: Option<String>,
    /// The IAM proxy every function's AWS calls go through; its denials, for tests.
    pub iam: Arc<crate::iam_proxy::Enforcer>,
    worker_paused: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// An SDK config that talks to moto with throwaway credentials (the harness's own
/// identity: unrestricted).
pub async fn moto_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_as(endpoint, "test").await
}

/// An SDK config that signs with `access_key`: a function's logical id, which the IAM proxy
/// ([`crate::iam_proxy`]) holds to that function's template statements.
pub async fn sdk_config_as(endpoint: &str, access_key: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            access_key,
            "test",
            None,
            None,
            "local-stack",
        ))
        .load()
        .await
}

impl LocalStack {
    pub async fn start(opts: StackOptions) -> Result<Self, StackError> {
        let sdk = moto_sdk_config(&opts.moto_endpoint).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let template = opts.template.as_deref().unwrap_or(provision::TEMPLATE);
        let resources = provision::provision(
            template,
            &opts.prefix,
            &dynamo,
            &sqs,
            opts.visibility_override,
        )
        .await?;
        let mut resources = resources;
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        resources.buses = provision::provision_buses(template, &opts.prefix, &events).await?;
        let bus = resources
            .buses
            .get("EntitlementEventBus")
            .map(|b| b.name.clone())
            .unwrap_or_default();
        let stream_arn = resources
            .tables
            .get("BillingTable")
            .and_then(|t| t.arn.clone());
        let table = resources
            .tables
            .get("BillingTable")
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let queue = resources.queues.get("FulfilmentQueue").cloned();
        let queue_url = queue
            .as_ref()
            .and_then(|q| q.url.clone())
            .unwrap_or_default();
        let queue_arn = queue
            .as_ref()
            .and_then(|q| q.arn.clone())
            .unwrap_or_default();

        // IAM as deployed: every function's AWS calls go through the proxy, signed as the
        // function, and are held to its own statements in the template.
        let parameters = crate::iam::parameters(template, &opts.env)?;
        let resolver = crate::iam::Resolver::from_resources(&resources, &parameters);
        let policies = crate::iam::function_policies(template, &resolver)?;
        let catalog = crate::iam::Catalog::new(template, &resources)?;
        let identities: HashMap<String, String> = policies
            .iter()
            .map(|p| (p.binary.clone(), crate::iam_proxy::access_key(p)))
            .collect();
        let iam = Arc::new(crate::iam_proxy::Enforcer::new(
            &opts.moto_endpoint,
            policies,
            catalog,
        ));
        let (iam_endpoint, iam_task) = crate::iam_proxy::start(iam.clone())
            .await
            .map_err(|e| StackError::Listen(0, e))?;
        let mut function_sdk = HashMap::new();
        for (binary, key) in &identities {
            function_sdk.insert(binary.clone(), sdk_config_as(&iam_endpoint, key).await);
        }
        let sdk_of = |binary: &str| {
            function_sdk.get(binary).cloned().ok_or_else(|| {
                StackError::Provision(ProvisionError::Template(format!(
                    "template.yaml has no {binary} function"
                )))
            })
        };

        let mut env = opts.env.clone();
        env.insert("BILLING_TABLE".into(), table);
        env.insert("FULFILMENT_QUEUE_URL".into(), queue_url.clone());
        env.insert(publisher::BUS_ENV.into(), bus.clone());
        let mut functions = HashMap::new();
        let mut publisher_bus = None;
        for (binary, names) in crate::environment::declared(template)? {
            let own = crate::environment::for_function(&names, &env);
            let config = Config::from_lookup(|name| own.get(name).cloned())?;
            if binary == "publisher" {
                publisher_bus = publisher::bus_name(|name| own.get(name).cloned()).ok();
            }
            let own_sdk = sdk_of(&binary)?;
            functions.insert(binary, Services::on_aws(config, &own_sdk));
        }
        let function = |binary: &str| {
            functions.get(binary).cloned().ok_or_else(|| {
                StackError::Provision(ProvisionError::Template(format!(
                    "template.yaml has no {binary} function"
                )))
            })
        };
        let timeouts = crate::timeouts::declared(template)?;
        let timeout_of = |binary: &str| {
            timeouts
                .get(binary)
                .copied()
                .unwrap_or(crate::timeouts::LAMBDA_DEFAULT)
        };
        // The harness's own view (inspection past HTTP): the webhook's configuration with the
        // unrestricted identity, as a test's own AWS calls are not a function's.
        let services = Services::on_aws((*function("webhook")?.config).clone(), &sdk);
        let worker = function("worker")?;
        let publisher = function("publisher")?;

        let listener = TcpListener::bind(("127.0.0.1", opts.port))
            .await
            .map_err(|e| StackError::Listen(opts.port, e))?;
        let port = listener
            .local_addr()
            .map_err(|e| StackError::Listen(opts.port, e))?
            .port();
        let base_url = format!("http://127.0.0.1:{port}");
        let allowed_origins = AllowedOrigins::from_env(
            env.get("ALLOWED_ORIGINS").map(String::as_str),
            &base_url,
            env.get("PUBLIC_BASE_URL").map(String::as_str),
        )?;
        // The entitlement events: the stream → publisher mapping, and what reached the bus.
        let received = Arc::new(Received::default());
        let subscription = subscribe(
            &events,
            &sqs,
            &bus,
            &format!("{}-entitlement-events", opts.prefix),
        )
        .await
        .map_err(|e| StackError::Provision(ProvisionError::Aws(bus.clone(), e)))?;
        let mut tasks = vec![tokio::spawn(subscription.run(received.clone())), iam_task];
        // Lambda's event source mappings read with the function's own role, so the stream
        // and the queue are read as the publisher and the worker.
        let publisher_sdk = sdk_of("publisher")?;
        let worker_sdk = sdk_of("worker")?;
        if let (Some(stream_arn), Some(bus_name)) = (stream_arn, publisher_bus.clone()) {
            let adapter =
                EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&publisher_sdk), bus_name);
            tasks.push(tokio::spawn(run_mapping(
                aws_sdk_dynamodbstreams::Client::new(&publisher_sdk),
                stream_arn,
                publisher,
                Arc::new(adapter),
                timeout_of("publisher"),
            )));
        }
        let front = Arc::new(Front {
            functions: functions.clone(),
            jwt_secret: opts.jwt_secret.clone(),
            timeouts: timeouts.clone().into_iter().collect(),
            allowed_origins,
            entitlement_events: received.clone(),
        });
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let front = front.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let front = front.clone();
                        async move { Ok::<_, std::convert::Infallible>(front.handle(req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let queue: Arc<dyn Queue> = Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(&worker_sdk),
            queue_url,
        ));
        let worker_paused = Arc::new(AtomicBool::new(false));
        let mapping = tokio::spawn(crate::esm::run(
            worker,
            queue,
            queue_arn,
            worker_paused.clone(),
            timeout_of("worker"),
        ));
        Ok(Self {
            base_url,
            services,
            functions,
            resources,
            entitlement_bus: publisher_bus,
            iam,
            worker_paused,
            tasks: {
                tasks.extend([server, mapping]);
                tasks
            },
        })
    }

    /// Stops (`true`) or restarts the queue → worker mapping; a test uses it to let several
    /// messages gather into one batch.
    pub fn pause_worker(&self, paused: bool) {
        self.worker_paused.store(paused, Ordering::SeqCst);
    }
}
