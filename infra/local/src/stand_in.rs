//! The local stand-in for Stripe that `make dev` serves when no Stripe key is configured, so
//! a newcomer's first purchase works end to end with no Stripe account
//! (docs/local-development.md, "Buy something").
//!
//! It is the tests' one fake Stripe server ([`FakeStripeServer`]) in its stand-in mode, not
//! another fake: every request it receives first goes through Stripe's own parameter
//! definitions and is refused as Stripe refuses it; its objects and events are the vendored
//! official fixtures (`shared/testdata/stripe/fixtures3.json`) with the session's own values
//! merged in.
//!
//! It sells every plan of the catalog through Checkout: the functions get a test-mode key,
//! `STRIPE_API_BASE` pointing here and a stand-in price for each plan. Its pages say it is a
//! stand-in; its "Pay" completes the session and hands Stripe's events for it
//! (`checkout.session.completed`, and for a subscription `customer.subscription.created` and
//! the first `invoice.paid`) to [`deliver`], which signs each with the stack's webhook secret
//! and posts it to the stack's own webhook route; then the browser goes to the session's
//! `success_url`, as with Stripe. Later changes to a subscription (cancel, resume, seats) are
//! answered but send no event: Stripe's test mode does that.

use billing_core::domain::catalog::{Catalog, Plan};
use billing_testing::{FakeStripeServer, ServerOptions, signature};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What the banner and the checkout page say it is.
pub const LABEL: &str = "local stand-in, no real payment";
/// The test-mode key the functions get with the stand-in; Stripe itself knows no such key.
pub const KEY: &str = "sk_test_local_stand_in";
/// Turns the stand-in off (`STRIPE_STAND_IN=off`): no key then means no checkout, as in a
/// deployment without one.
pub const SWITCH: &str = "STRIPE_STAND_IN";

/// The stand-in, serving on a loopback port until dropped.
pub struct StandIn {
    server: FakeStripeServer,
    prices: Vec<(String, String)>,
    /// Whose definitions it checks requests against (`stripe 16.1.0`).
    definitions: String,
}

/// Whether `make dev` serves the stand-in: no Stripe key configured and not switched off.
pub fn wanted(env: &HashMap<String, String>) -> bool {
    let set = |name: &str| env.get(name).is_some_and(|v| !v.trim().is_empty());
    !set("STRIPE_SECRET_KEY") && env.get(SWITCH).is_none_or(|v| v.trim() != "off")
}

impl StandIn {
    /// Starts the stand-in for `catalog`; "Pay" posts the signed events to `webhook_url`.
    pub async fn start(catalog: &Catalog, webhook_url: &str, webhook_secret: &str) -> Self {
        let mut prices: Vec<(String, String)> = catalog
            .plans()
            .map(|p| (p.id.to_string(), price_of(p)))
            .collect();
        // A plan with a metered price gets a stand-in one too, so it stays sellable.
        prices.extend(
            catalog
                .plans()
                .filter(|p| p.metered_price.is_some())
                .map(|p| {
                    (
                        p.metered_env_suffix().to_ascii_lowercase(),
                        format!("{}_metered", price_of(p)),
                    )
                }),
        );
        prices.sort();
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .expect("a loopback port for the stand-in");
        let (url, secret) = (webhook_url.to_owned(), webhook_secret.to_owned());
        let options = ServerOptions {
            by: "make dev (the local stand-in)".into(),
            tag: "standin".into(),
            prices: prices.clone(),
            catalog: Some(catalog.clone()),
            stand_in: Some(billing_testing::StandIn {
                label: LABEL.into(),
                deliver: Arc::new(move |_kind: &str, event: &Value| deliver(&url, &secret, event)),
            }),
            ..ServerOptions::default()
        };
        Self {
            server: FakeStripeServer::start(listener, options).await,
            prices,
            definitions: String::new(),
        }
    }

    /// Where it serves: the functions' `STRIPE_API_BASE`.
    pub fn base(&self) -> String {
        self.server.base()
    }

    /// The variables the functions get from it: the test key, the API base and a price for
    /// each plan it sells.
    pub fn environment(&self) -> Vec<(String, String)> {
        let prices = self
            .prices
            .iter()
            .map(|(plan, price)| format!("{plan}={price}"))
            .collect::<Vec<_>>()
            .join(",");
        vec![
            ("STRIPE_SECRET_KEY".into(), KEY.into()),
            ("STRIPE_API_BASE".into(), self.base()),
            ("STRIPE_PRICES".into(), prices),
        ]
    }
}

fn price_of(plan: &Plan) -> String {
    format!("price_standin_{}", plan.id)
}

/// Signs `event` with the webhook secret and posts it to the stack's webhook from a thread
/// of its own (a responder is not async), waiting for the answer: `Err` unless a 2xx.
fn deliver(url: &str, secret: &str, event: &Value) -> Result<(), String> {
    let body = event.to_string();
    let header = signature(secret, chrono::Utc::now().timestamp(), &body);
    let url = url.to_owned();
    let status = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .header("stripe-signature", header)
                .body(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| format!("{url} could not be reached: {e}"))
        })
    })
    .join()
    .map_err(|_| "the delivery thread panicked".to_owned())??;
    match status {
        200..=299 => Ok(()),
        status => Err(format!("the stack's webhook answered {status}")),
    }
}

/// `make dev`'s choice: with no Stripe key (and `STRIPE_STAND_IN` not `off`), starts the
/// stand-in for the default or `CATALOG_JSON` catalog and points the functions at it
/// through `env`; with a key, `None` and `env` untouched.
pub async fn serve_if_wanted(env: &mut HashMap<String, String>, port: u16) -> Option<StandIn> {
    if !wanted(env) {
        return None;
    }
    let json = env
        .get("CATALOG_JSON")
        .filter(|j| !j.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| billing_core::domain::catalog::DEFAULT_CATALOG.to_owned());
    let catalog = match Catalog::parse(&json, |_| None) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no local stand-in for Stripe: the catalog does not parse");
            return None;
        }
    };
    // Loaded now, so a missing `.venv` says so at start rather than at the first request.
    let definitions = tokio::task::spawn_blocking(|| {
        std::panic::catch_unwind(|| {
            billing_testing::stripe_definitions::definitions()
                .source
                .clone()
        })
    })
    .await;
    let Ok(Ok(source)) = definitions else {
        eprintln!(
            "no local stand-in for Stripe: Stripe's definitions did not load (run `make bootstrap`)"
        );
        return None;
    };
    let webhook = format!("http://127.0.0.1:{port}/api/stripe/webhook");
    let secret = env
        .get("STRIPE_WEBHOOK_SECRET")
        .cloned()
        .unwrap_or_default();
    let mut stand_in = StandIn::start(&catalog, &webhook, &secret).await;
    stand_in.definitions = source;
    env.extend(stand_in.environment());
    Some(stand_in)
}

impl StandIn {
    /// The start-up banner's lines about it.
    pub fn banner(&self) -> String {
        format!(
            "  Stripe: {LABEL} on {} (no Stripe key set)\n    \
             every request is checked against Stripe's definitions: {}\n    \
             sells all {} plans through its checkout page; Pay sends the signed webhook (docs/local-development.md)",
            self.base(),
            self.definitions,
            self.prices.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_core::domain::catalog::DEFAULT_CATALOG;
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SECRET: &str = "whsec_stand_in_test";

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    async fn stand_in(webhook_url: &str) -> StandIn {
        let catalog = Catalog::parse(DEFAULT_CATALOG, |_| None).unwrap();
        StandIn::start(&catalog, webhook_url, SECRET).await
    }

    fn checkout_form(extra: &str) -> String {
        format!(
            "mode=payment&line_items[0][price]=price_standin_credits_starter&line_items[0][quantity]=1\
             &client_reference_id=u64_dXNlcl9h&metadata[user_id]=user_a&metadata[plan_id]=credits_starter\
             &success_url=http://127.0.0.1:9/billing/success?session_id={{CHECKOUT_SESSION_ID}}\
             &cancel_url=http://127.0.0.1:9/billing/cancel{extra}"
        )
    }

    async fn create(base: &str, form: String) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{base}/v1/checkout/sessions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.replace('{', "%7B").replace('}', "%7D"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    #[test]
    fn a_configured_key_or_the_switch_means_no_stand_in() {
        assert!(wanted(&env(&[])), "no key: the stand-in");
        assert!(
            wanted(&env(&[("STRIPE_SECRET_KEY", " ")])),
            "a blank key is no key"
        );
        assert!(!wanted(&env(&[("STRIPE_SECRET_KEY", "sk_test_real")])));
        assert!(!wanted(&env(&[(SWITCH, "off")])));
    }

    #[tokio::test]
    async fn with_a_key_make_dev_starts_no_stand_in_and_keeps_the_api_base() {
        let mut vars = env(&[
            ("STRIPE_SECRET_KEY", "sk_test_real"),
            ("STRIPE_WEBHOOK_SECRET", SECRET),
        ]);
        let before = vars.clone();
        assert!(serve_if_wanted(&mut vars, 9).await.is_none());
        assert_eq!(vars, before, "the functions' environment is untouched");
    }

    #[tokio::test]
    async fn it_gives_the_functions_a_test_key_its_base_and_a_price_for_every_plan() {
        let s = stand_in("http://127.0.0.1:9/api/stripe/webhook").await;
        let vars: HashMap<String, String> = s.environment().into_iter().collect();
        assert_eq!(vars["STRIPE_SECRET_KEY"], KEY);
        assert_eq!(vars["STRIPE_API_BASE"], s.base());
        assert!(vars["STRIPE_PRICES"].contains("credits_starter=price_standin_credits_starter"));
        assert!(vars["STRIPE_PRICES"].contains("pro_monthly=price_standin_pro_monthly"));
    }

    #[tokio::test]
    async fn it_refuses_a_parameter_stripe_does_not_have_as_stripe_does() {
        let s = stand_in("http://127.0.0.1:9/api/stripe/webhook").await;
        let (status, body) = create(&s.base(), checkout_form("&not_a_stripe_param=1")).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "parameter_unknown", "{body}");
        let (status, body) = create(&s.base(), checkout_form("")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["object"], "checkout.session");
        assert_eq!(body["amount_total"], 1000);
        let url = body["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{}/c/pay/cs_test_standin_", s.base())),
            "{url}"
        );
    }

    #[tokio::test]
    async fn paying_a_subscription_sends_completed_created_and_invoice_paid_and_holds_it() {
        let webhook = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "queued"})))
            .mount(&webhook)
            .await;
        let s = stand_in(&format!("{}/api/stripe/webhook", webhook.uri())).await;
        let form = checkout_form("&subscription_data[metadata][user_id]=user_a&subscription_data[metadata][plan_id]=pro_monthly")
            .replace("mode=payment", "mode=subscription")
            .replace("credits_starter", "pro_monthly");
        let (status, session) = create(&s.base(), form).await;
        assert_eq!(status, 200, "{session}");
        let id = session["id"].as_str().unwrap();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/c/pay/{id}", s.base()))
            .send()
            .await
            .unwrap();
        let events: Vec<Value> = webhook
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "checkout.session.completed",
                "customer.subscription.created",
                "invoice.paid"
            ]
        );
        let sub_id = events[0]["data"]["object"]["subscription"]
            .as_str()
            .unwrap();
        let sub = &events[1]["data"]["object"];
        assert_eq!(sub["id"], sub_id);
        assert_eq!(sub["status"], "active");
        assert_eq!(
            sub["metadata"],
            json!({"user_id": "user_a", "plan_id": "pro_monthly"})
        );
        assert_eq!(
            sub["items"]["data"][0]["price"]["id"],
            "price_standin_pro_monthly"
        );
        let invoice = &events[2]["data"]["object"];
        assert_eq!(
            invoice["parent"]["subscription_details"]["subscription"],
            sub_id
        );
        assert_eq!(invoice["amount_paid"], session["amount_total"]);
        let held: Value = reqwest::get(format!("{}/v1/subscriptions/{sub_id}", s.base()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(&held, sub, "the worker fetches what the event said");
    }

    #[tokio::test]
    async fn a_price_in_the_wrong_mode_is_refused() {
        let s = stand_in("http://127.0.0.1:9/api/stripe/webhook").await;
        let form = checkout_form("").replace("credits_starter", "pro_monthly");
        let (status, body) = create(&s.base(), form).await;
        assert_eq!(status, 400, "{body}");
    }

    #[tokio::test]
    async fn pay_posts_a_signed_completed_event_then_sends_the_browser_to_the_success_url() {
        let webhook = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/stripe/webhook"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "queued"})))
            .mount(&webhook)
            .await;
        let s = stand_in(&format!("{}/api/stripe/webhook", webhook.uri())).await;
        let (_, session) = create(&s.base(), checkout_form("")).await;
        let id = session["id"].as_str().unwrap();
        let page = reqwest::get(session["url"].as_str().unwrap())
            .await
            .unwrap();
        assert!(
            page.text().await.unwrap().contains(LABEL),
            "the checkout page is labelled"
        );
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let paid = no_redirects
            .post(format!("{}/c/pay/{id}", s.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(paid.status().as_u16(), 303);
        assert_eq!(
            paid.headers()["location"],
            format!("http://127.0.0.1:9/billing/success?session_id={id}").as_str()
        );
        let received = webhook.received_requests().await.unwrap();
        assert_eq!(received.len(), 1, "one event per payment");
        let body = String::from_utf8(received[0].body.clone()).unwrap();
        let header = received[0].headers["stripe-signature"].to_str().unwrap();
        let t: i64 = header
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            header,
            signature(SECRET, t, &body),
            "signed with the webhook secret"
        );
        let event: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(event["type"], "checkout.session.completed");
        let object = &event["data"]["object"];
        assert_eq!(object["id"], id);
        assert_eq!(object["payment_status"], "paid");
        assert_eq!(object["client_reference_id"], "u64_dXNlcl9h");
        assert_eq!(
            object["metadata"],
            json!({"user_id": "user_a", "plan_id": "credits_starter"})
        );
        assert!(object.get("line_items_bought").is_none(), "{object}");
        let again = no_redirects
            .post(format!("{}/c/pay/{id}", s.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 303);
        assert_eq!(
            webhook.received_requests().await.unwrap().len(),
            1,
            "paid once"
        );
    }
}
