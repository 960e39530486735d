//! `local-stack fake-stripe`: the tests' one fake Stripe server
//! ([`billing_testing::FakeStripeServer`]) on a loopback port until stopped, for the suites
//! that run outside `cargo test` (`infra/fake_stripe.py` starts it for the Python ones).
//!
//! `local-stack fake-stripe --port N [--by NAME] [--tag TAG] [--checkout-delay-ms MS]
//! [--prices plan=price,…]` prints `fake Stripe on http://127.0.0.1:N` once it serves.

use billing_testing::{FakeStripeServer, ServerOptions};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: local-stack fake-stripe --port N [--by NAME] [--tag TAG] \
                     [--checkout-delay-ms MS] [--prices plan=price,…]";

/// The options named on the command line, or what is wrong with them.
pub fn options(args: &[String]) -> Result<(u16, ServerOptions), String> {
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| {
                args.get(i + 1)
                    .cloned()
                    .ok_or(format!("{name} needs a value"))
            })
            .transpose()
    };
    let port = value("--port")?
        .ok_or("--port is required")?
        .parse::<u16>()
        .map_err(|e| format!("--port: {e}"))?;
    let delay = value("--checkout-delay-ms")?
        .map(|ms| {
            ms.parse::<u64>()
                .map_err(|e| format!("--checkout-delay-ms: {e}"))
        })
        .transpose()?
        .unwrap_or(0);
    let prices = value("--prices")?
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(plan, price)| (plan.trim().to_owned(), price.trim().to_owned()))
                .ok_or(format!("--prices: {pair:?} is not plan=price"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        port,
        ServerOptions {
            by: value("--by")?.unwrap_or_else(|| "local-stack fake-stripe".into()),
            tag: value("--tag")?.unwrap_or_else(|| "fake".into()),
            checkout_delay: Duration::from_millis(delay),
            prices,
            ..ServerOptions::default()
        },
    ))
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn run(args: &[String]) -> ExitCode {
    let (port, options) = match options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fake Stripe: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = FakeStripeServer::start(listener, options).await;
    println!("fake Stripe on {}", server.base());
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return ExitCode::FAILURE;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    async fn server(prices: &str) -> FakeStripeServer {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let mut line = args("--port 0 --tag unit --prices");
        line.push(prices.to_owned());
        let (_, options) = options(&line).unwrap();
        FakeStripeServer::start(listener, options).await
    }

    async fn post(base: &str, path: &str, key: &str, form: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("idempotency-key", key)
            .body(form.replace('{', "%7B").replace('}', "%7D"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn get(url: String) -> (u16, String) {
        let resp = reqwest::get(url).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    #[test]
    fn the_command_line_names_the_port_the_prices_and_the_delay_and_refuses_a_bad_price() {
        let (port, o) = options(&args(
            "--port 4242 --by me --tag t --checkout-delay-ms 1000 --prices a=price_a,b=price_b",
        ))
        .unwrap();
        assert_eq!((port, o.by.as_str(), o.tag.as_str()), (4242, "me", "t"));
        assert_eq!(o.checkout_delay, Duration::from_secs(1));
        assert_eq!(
            o.prices,
            [
                ("a".into(), "price_a".into()),
                ("b".into(), "price_b".into())
            ]
        );
        assert!(options(&args("--port 1 --prices a")).is_err());
        assert!(options(&args("--tag t")).is_err(), "the port is required");
    }

    #[tokio::test]
    async fn it_lists_what_it_received_with_the_key_the_form_and_whether_stripe_refused_it() {
        let s = server("").await;
        let form = "mode=payment&line_items[0][price]=price_a&line_items[0][quantity]=1\
                    &success_url=http://app/s?session_id={CHECKOUT_SESSION_ID}&cancel_url=http://app/c";
        let (status, session) = post(&s.base(), "/v1/checkout/sessions", "key-1", form).await;
        assert_eq!(status, 200, "{session}");
        assert!(
            session["id"]
                .as_str()
                .unwrap()
                .starts_with("cs_test_unit_1_")
        );
        let (status, refusal) = post(
            &s.base(),
            "/v1/checkout/sessions",
            "key-2",
            "not_a_stripe_param=1",
        )
        .await;
        assert_eq!(
            (status, refusal["error"]["code"].as_str()),
            (400, Some("parameter_unknown"))
        );
        let (_, listed) = get(format!("{}/_fake/requests", s.base())).await;
        let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_eq!(listed[0]["idempotency_key"], "key-1");
        assert_eq!(listed[0]["form"]["line_items[0][price]"], "price_a");
        assert_eq!(listed[0]["refused"], Value::Null);
        assert_eq!(listed[1]["refused"]["error"]["code"], "parameter_unknown");
    }

    #[tokio::test]
    async fn its_checkout_page_pays_to_the_success_url_of_the_session_and_cancels_to_its_cancel_url()
     {
        let s = server("").await;
        let form = "mode=payment&line_items[0][price]=price_a&line_items[0][quantity]=1\
                    &success_url=http://app/s?session_id={CHECKOUT_SESSION_ID}&cancel_url=http://app/c";
        let (_, session) = post(&s.base(), "/v1/checkout/sessions", "key-1", form).await;
        let id = session["id"].as_str().unwrap();
        assert_eq!(session["url"], format!("{}/c/pay/{id}", s.base()));
        let (status, page) = get(format!("{}/c/pay/{id}", s.base())).await;
        assert_eq!(status, 200);
        assert!(
            page.contains(&format!("<a id=pay href='http://app/s?session_id={id}'>")),
            "{page}"
        );
        assert!(page.contains("<a id=cancel href='http://app/c'>"), "{page}");
        let (status, _) = get(format!("{}/c/pay/cs_test_none", s.base())).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn a_preview_of_a_held_subscription_prices_the_change_from_the_catalog() {
        let s = server("pro_monthly=price_p,team_monthly=price_t").await;
        let mut sub = billing_testing::fixture("subscription");
        sub["id"] = "sub_unit".into();
        sub["items"]["data"][0]["id"] = "si_unit".into();
        sub["items"]["data"][0]["quantity"] = 1.into();
        sub["items"]["data"][0]["price"]["id"] = "price_p".into();
        let held = reqwest::Client::new()
            .post(format!("{}/_fake/subscriptions", s.base()))
            .json(&sub)
            .send()
            .await
            .unwrap();
        assert_eq!(held.status().as_u16(), 204);
        let (status, preview) = post(
            &s.base(),
            "/v1/invoices/create_preview",
            "",
            "customer=cus_unit&subscription=sub_unit&subscription_details[items][0][id]=si_unit\
             &subscription_details[items][0][price]=price_t&subscription_details[items][0][quantity]=5",
        )
        .await;
        assert_eq!(status, 200, "{preview}");
        // The catalog: Pro is $29.00 a month, Team $12.00 a seat.
        assert_eq!(preview["amount_due"], 5 * 1200 - 2900);
        let amounts: Vec<&Value> = preview["lines"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["amount"])
            .collect();
        assert_eq!(amounts, [&json!(6000), &json!(-2900)]);
        let (status, _) = post(
            &s.base(),
            "/v1/invoices/create_preview",
            "",
            "customer=cus_unit&subscription=sub_none&subscription_details[items][0][price]=price_t",
        )
        .await;
        assert_eq!(status, 404, "a subscription Stripe does not hold");
    }

    #[tokio::test]
    async fn an_event_it_is_asked_for_is_the_one_event_builders_around_the_given_object() {
        let s = server("").await;
        let object = json!({ "id": "sub_unit", "object": "subscription", "status": "active" });
        let built: Value = reqwest::Client::new()
            .post(format!("{}/_fake/events", s.base()))
            .json(&json!({ "type": "customer.subscription.updated", "object": object, "created": 1_795_000_000 }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = built["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("evt_test_unit_"), "{id}");
        assert_eq!(
            built,
            billing_testing::event(&id, "customer.subscription.updated", 1_795_000_000, object)
        );
    }

    #[tokio::test]
    async fn a_session_is_read_back_with_its_line_and_expires_once_as_stripe_allows() {
        let s = server("credits_starter=price_c").await;
        let form = "mode=payment&line_items[0][price]=price_c&line_items[0][quantity]=2\
                    &success_url=http://app/s&cancel_url=http://app/c";
        let (status, session) = post(&s.base(), "/v1/checkout/sessions", "key-1", form).await;
        assert_eq!(status, 200, "{session}");
        assert_eq!(session["amount_total"], 2 * 1000, "priced from the catalog");
        let id = session["id"].as_str().unwrap();
        let (_, read) = get(format!("{}/v1/checkout/sessions/{id}", s.base())).await;
        let read: Value = serde_json::from_str(&read).unwrap();
        assert_eq!(
            (read["id"].as_str(), read["status"].as_str()),
            (Some(id), Some("open"))
        );
        assert!(read.get("line_items_bought").is_none(), "{read}");
        let (_, lines) = get(format!("{}/v1/checkout/sessions/{id}/line_items", s.base())).await;
        let lines: Value = serde_json::from_str(&lines).unwrap();
        assert_eq!(lines["data"][0]["price"]["id"], "price_c");
        assert_eq!(lines["data"][0]["quantity"], 2);
        let expire = format!("/v1/checkout/sessions/{id}/expire");
        let (status, expired) = post(&s.base(), &expire, "key-2", "").await;
        assert_eq!((status, expired["status"].as_str()), (200, Some("expired")));
        let (status, again) = post(&s.base(), &expire, "key-3", "").await;
        assert_eq!(status, 400, "Stripe expires only an open session: {again}");
        let (status, _) = post(
            &s.base(),
            "/v1/checkout/sessions/cs_test_none/expire",
            "key-4",
            "",
        )
        .await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn given_prices_it_refuses_any_other_price_and_a_price_in_the_wrong_mode() {
        let s = server("credits_starter=price_c,pro_monthly=price_p").await;
        let form = |mode: &str, price: &str| {
            format!(
                "mode={mode}&line_items[0][price]={price}&line_items[0][quantity]=1\
                 &success_url=http://app/s&cancel_url=http://app/c"
            )
        };
        let (status, refused) = post(
            &s.base(),
            "/v1/checkout/sessions",
            "k1",
            &form("payment", "price_x"),
        )
        .await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (400, Some("resource_missing"))
        );
        let (status, _) = post(
            &s.base(),
            "/v1/checkout/sessions",
            "k2",
            &form("payment", "price_p"),
        )
        .await;
        assert_eq!(status, 400, "a subscription's price in payment mode");
        let (status, _) = post(
            &s.base(),
            "/v1/checkout/sessions",
            "k3",
            &form("subscription", "price_p"),
        )
        .await;
        assert_eq!(status, 200);
    }
}
