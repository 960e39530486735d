//! Checkout Sessions and billing portal sessions as Stripe holds them, and the stand-in's
//! "Pay": the session completes and Stripe's events for it are handed on.

use super::{State, error};
use crate::{object, subscription_invoice};
use billing_core::domain::catalog::Mode;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use wiremock::ResponseTemplate;

impl State {
    /// `POST /v1/checkout/sessions`, as Stripe creates it: open, with its hosted URL (this
    /// server's checkout page). A price the server was given is sold in its plan's mode and
    /// amount; when it was given prices, any other price is refused, as Stripe refuses one
    /// it does not have.
    pub(super) fn create_session(&self, form: &HashMap<String, String>) -> ResponseTemplate {
        let price = form
            .get("line_items[0][price]")
            .map(String::as_str)
            .unwrap_or("");
        let plan = self.plans.get(price);
        if plan.is_none() && !self.plans.is_empty() {
            return error(400, "resource_missing", format!("No such price: '{price}'"));
        }
        let quantity: i64 = form
            .get("line_items[0][quantity]")
            .and_then(|q| q.parse().ok())
            .unwrap_or(1);
        let mode = form.get("mode").map(String::as_str).unwrap_or("payment");
        let id = self.id("cs");
        let now = chrono::Utc::now().timestamp();
        let mut session = object(
            "checkout.session",
            json!({
                "id": id,
                "object": "checkout.session",
                "url": format!("{}/c/pay/{id}", self.base),
                "status": "open",
                "payment_status": "unpaid",
                "mode": mode,
                "livemode": false,
                "created": now,
                "expires_at": now + 24 * 3600,
                "success_url": form.get("success_url"),
                "cancel_url": form.get("cancel_url"),
                "client_reference_id": form.get("client_reference_id"),
                "customer": form.get("customer"),
                "customer_email": form.get("customer_email"),
                "payment_intent": Value::Null,
            }),
        );
        if let Some(plan) = plan {
            let sold_in = match plan.mode {
                Mode::Payment => "payment",
                Mode::Subscription => "subscription",
            };
            if mode != sold_in {
                return error(
                    400,
                    "parameter_invalid",
                    format!("The price {price} is sold in {sold_in} mode."),
                );
            }
            session["amount_subtotal"] = (plan.amount * quantity).into();
            session["amount_total"] = (plan.amount * quantity).into();
            session["currency"] = plan.currency.clone().into();
        }
        // `metadata` replaces rather than merges: the fixture's own keys must not leak in.
        session["metadata"] = bracketed(form, "metadata[").into();
        let trial_days: Option<i64> = form
            .get("subscription_data[trial_period_days]")
            .and_then(|d| d.parse().ok());
        session[BOUGHT] = json!({ "price": price, "quantity": quantity,
            "subscription_metadata": bracketed(form, "subscription_data[metadata]["),
            "trial_days": trial_days });
        self.sessions
            .lock()
            .unwrap()
            .insert(id.clone(), session.clone());
        ResponseTemplate::new(200).set_body_json(public(&session))
    }

    /// A session it holds, as `view` shows it.
    pub(super) fn session(&self, id: &str, view: fn(&Value) -> Value) -> ResponseTemplate {
        match self.sessions.lock().unwrap().get(id) {
            Some(session) => ResponseTemplate::new(200).set_body_json(view(session)),
            None => no_such_session(id),
        }
    }

    /// `POST /v1/checkout/sessions/{id}/expire`: an open session expires; any other is
    /// refused, as Stripe refuses it.
    pub(super) fn expire(&self, id: &str) -> ResponseTemplate {
        let mut sessions = self.sessions.lock().unwrap();
        let Some(session) = sessions.get_mut(id) else {
            return no_such_session(id);
        };
        if session["status"] != "open" {
            // As the contract suite's account answers it (`FakeAccount`): no code.
            return ResponseTemplate::new(400).set_body_json(json!({ "error": {
                "type": "invalid_request_error", "code": null,
                "message": format!("Only Checkout Sessions with a status in [\"open\"] can be expired: '{id}'") } }));
        }
        session["status"] = "expired".into();
        session["url"] = Value::Null;
        ResponseTemplate::new(200).set_body_json(public(session))
    }

    /// `POST /v1/billing_portal/sessions`: its URL is this server's portal page.
    pub(super) fn create_portal(&self, form: &HashMap<String, String>) -> ResponseTemplate {
        let id = self.id("bps");
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        self.portals
            .lock()
            .unwrap()
            .insert(id.clone(), (field("customer"), field("return_url")));
        ResponseTemplate::new(200).set_body_json(object(
            "billing_portal.session",
            json!({
                "id": id,
                "url": format!("{}/p/session/{id}", self.base),
                "customer": form.get("customer"),
                "return_url": form.get("return_url"),
                "livemode": false,
            }),
        ))
    }

    /// The stand-in's "Pay": the session completes and is paid; Stripe's
    /// `checkout.session.completed` for it (and for a subscription,
    /// `customer.subscription.created` and the first `invoice.paid`, the subscription then
    /// held) is handed to [`super::StandIn::deliver`] in that order; then the browser goes to
    /// the session's `success_url`. A session paid already is not paid again.
    pub(super) fn pay(&self, id: &str) -> ResponseTemplate {
        let Some(stand_in) = &self.options.stand_in else {
            return self.page_with_status(
                404,
                "Pay sends nothing here",
                "<p>This fake Stripe sends no events: the test that drives it does.</p>",
            );
        };
        let completed = {
            let mut sessions = self.sessions.lock().unwrap();
            let Some(session) = sessions.get_mut(id) else {
                return no_such_session(id);
            };
            if session["status"] != "open" {
                return ResponseTemplate::new(303)
                    .insert_header("location", format!("/c/pay/{id}"));
            }
            session["status"] = "complete".into();
            session["payment_status"] = "paid".into();
            session["url"] = Value::Null;
            if session["customer"].is_null() {
                session["customer"] = self.id("cus").into();
            }
            if session["mode"] == "subscription" {
                session["subscription"] = self.id("sub").into();
                session["invoice"] = self.id("in").into();
            } else {
                session["payment_intent"] = self.id("pi").into();
            }
            session.clone()
        };
        let mut events = vec![("checkout.session.completed", public(&completed))];
        if completed["mode"] == "subscription" {
            let (subscription, invoice) = self.subscribe(&completed);
            self.subscriptions.put(&subscription);
            events.push(("customer.subscription.created", subscription));
            events.push(("invoice.paid", invoice));
        }
        for (kind, object) in events {
            let event = crate::event(
                &self.id("evt"),
                kind,
                chrono::Utc::now().timestamp(),
                object,
            );
            if let Err(why) = (stand_in.deliver)(kind, &event) {
                return self.page(
                    "The webhook did not take the payment",
                    &format!(
                        "<p>{kind}: {}; see the make dev log.</p>",
                        super::pages::escape(&why)
                    ),
                );
            }
        }
        let success = completed["success_url"]
            .as_str()
            .unwrap_or("/")
            .replace("{CHECKOUT_SESSION_ID}", id);
        ResponseTemplate::new(303).insert_header("location", success)
    }

    /// The subscription a paid subscription-mode session starts, as Stripe holds it, and its
    /// first invoice, paid (nothing to pay during a trial).
    fn subscribe(&self, session: &Value) -> (Value, Value) {
        let bought = &session[BOUGHT];
        let price = bought["price"].as_str().unwrap_or_default();
        let now = chrono::Utc::now().timestamp();
        let days = match self.plans.get(price).and_then(|p| p.interval.as_deref()) {
            Some("day") => 1,
            Some("week") => 7,
            Some("year") => 365,
            _ => 30,
        };
        let trial_end = bought["trial_days"].as_i64().map(|d| now + d * 86_400);
        let period_end = trial_end.unwrap_or(now + days * 86_400);
        let sub_id = session["subscription"].as_str().unwrap_or_default();
        let mut sub = object(
            "subscription",
            json!({
                "id": sub_id,
                "customer": session["customer"],
                "status": if trial_end.is_some() { "trialing" } else { "active" },
                "cancel_at_period_end": false,
                "cancel_at": Value::Null,
                "canceled_at": Value::Null,
                "ended_at": Value::Null,
                "trial_end": trial_end,
                "livemode": false,
                "created": now,
                "start_date": now,
                "latest_invoice": session["invoice"],
            }),
        );
        sub["metadata"] = bought["subscription_metadata"].clone();
        if let Some(item) = sub["items"]["data"].get_mut(0) {
            item["id"] = format!("si_{sub_id}").into();
            item["price"]["id"] = price.into();
            item["quantity"] = bought["quantity"].clone();
            item["current_period_start"] = now.into();
            item["current_period_end"] = period_end.into();
        }
        let user = sub["metadata"]["user_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let paid = if trial_end.is_some() {
            0
        } else {
            session["amount_total"].as_i64().unwrap_or(0)
        };
        let mut invoice = subscription_invoice(
            session["invoice"].as_str().unwrap_or_default(),
            sub_id,
            &user,
            price,
            "subscription_create",
            paid,
        );
        invoice["customer"] = session["customer"].clone();
        invoice["currency"] = session["currency"].clone();
        invoice["created"] = now.into();
        (sub, invoice)
    }
}

/// Where a held session keeps what it sold (never shown: [`public`] drops it).
pub(super) const BOUGHT: &str = "line_items_bought";

/// The session as Stripe shows it (without what the server keeps for itself).
pub(super) fn public(session: &Value) -> Value {
    let mut s = session.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove(BOUGHT);
    }
    s
}

/// `GET /v1/checkout/sessions/{id}/line_items`: the one line the session sold.
pub(super) fn line_items(session: &Value) -> Value {
    json!({ "object": "list", "has_more": false,
            "url": format!("/v1/checkout/sessions/{}/line_items", session["id"].as_str().unwrap_or_default()),
            "data": [object("item", json!({
                "price": { "id": session[BOUGHT]["price"] },
                "quantity": session[BOUGHT]["quantity"],
            }))] })
}

/// The form's `{prefix}name]` fields as a map of name → value (`metadata[…]`).
fn bracketed(form: &HashMap<String, String>, prefix: &str) -> Map<String, Value> {
    form.iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(prefix)?.strip_suffix(']')?;
            Some((name.to_owned(), Value::from(v.as_str())))
        })
        .collect()
}

fn no_such_session(id: &str) -> ResponseTemplate {
    error(
        404,
        "resource_missing",
        format!("No such checkout.session: '{id}'"),
    )
}
