//! The in-memory Stripe's answers to the port's methods: each records the call, fails it if
//! the test asked, then acts on the account's objects as Stripe would.

use super::{MemoryStripe, Method, State, decode, invalid, not_found, page};
use crate::object;
use async_trait::async_trait;
use billing_core::domain::catalog::Mode;
use billing_core::stripe::api::{
    CreatedSession, EventsQuery, LineItem, LineItemPrice, ListPage, MeterUsage, NewCheckout,
    NewPaymentIntent, NewPrice, NewProduct, NewRefund, NewWebhookEndpoint, PortalSession, Price,
    PriceChange, SessionStatus, StripeApi, StripeError, TaxCalculation, TaxedSale, WebhookEndpoint,
};
use billing_core::stripe::invoice::{Invoice, InvoicePreview};
use billing_core::stripe::objects::{PaymentIntent, Refund, Subscription};
use serde_json::{Value, json};

fn subscription_change(
    s: &mut State,
    id: &str,
    change: impl FnOnce(&mut Value) -> Result<(), StripeError>,
) -> Result<Value, StripeError> {
    let sub = s
        .subscriptions
        .get_mut(id)
        .ok_or_else(|| not_found("subscription", id))?;
    let mut changed = sub.clone();
    change(&mut changed)?;
    *sub = changed.clone();
    Ok(changed)
}

#[async_trait]
impl StripeApi for MemoryStripe {
    async fn create_checkout(
        &self,
        c: &NewCheckout<'_>,
        key: &str,
    ) -> Result<CreatedSession, StripeError> {
        let args = json!({
            "plan": c.plan.id.as_str(), "price": c.price_id, "quantity": c.quantity,
            "user": c.user.as_str(), "email": c.email, "customer": c.customer,
            "success_url": c.success_url, "cancel_url": c.cancel_url,
            "trial_days": c.trial_days, "automatic_tax": c.automatic_tax,
        });
        self.receive(Method::CreateCheckout, args, Some(key))?;
        if c.quantity < 1 {
            return Err(invalid(
                Some("parameter_invalid_integer"),
                "line_items[0][quantity]: must be at least 1".into(),
            ));
        }
        let session = self.once(Method::CreateCheckout, key, |s| {
            let id = s.id("cs_test");
            let mode = match c.plan.mode {
                Mode::Subscription => "subscription",
                Mode::Payment => "payment",
            };
            let mut session = object(
                "checkout.session",
                json!({
                    "id": id, "status": "open", "payment_status": "unpaid", "mode": mode,
                    "url": format!("https://checkout.stripe.com/c/pay/{id}"),
                    "client_reference_id": c.user.to_reference(),
                    // As the form does: the email prefills only a checkout with no customer.
                    "customer": c.customer,
                    "customer_email": if c.customer.is_none() { c.email } else { None },
                    "success_url": c.success_url, "cancel_url": c.cancel_url,
                }),
            );
            session["metadata"] = json!({ "user_id": c.user.as_str(),
                "plan_id": c.plan.id.as_str(), "quantity": c.quantity.to_string() });
            let mut items = vec![(c.price_id.to_owned(), c.quantity)];
            if let Some(metered) = &c.plan.metered_price_id {
                items.push((metered.clone(), 1));
            }
            s.line_items.insert(id.clone(), items);
            s.sessions.insert(id, session.clone());
            Ok(session)
        })?;
        decode(&session)
    }

    async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        key: &str,
    ) -> Result<PortalSession, StripeError> {
        let args = json!({ "customer": customer, "return_url": return_url });
        self.receive(Method::CreatePortalSession, args, Some(key))?;
        let session = self.once(Method::CreatePortalSession, key, |s| {
            let id = s.id("bps");
            Ok(object(
                "billing_portal.session",
                json!({ "id": id, "customer": customer, "return_url": return_url,
                        "url": format!("https://billing.stripe.com/p/session/{id}") }),
            ))
        })?;
        decode(&session)
    }

    async fn expire_checkout(&self, session_id: &str) -> Result<(), StripeError> {
        let args = json!({ "session": session_id });
        self.receive(Method::ExpireCheckout, args, None)?;
        // One logical expiry per session (the HTTP adapter's idempotency key names the
        // session): expiring again what this client expired gets the first answer.
        self.once(
            Method::ExpireCheckout,
            &format!("expire-{session_id}"),
            |s| {
                let session = s
                    .sessions
                    .get_mut(session_id)
                    .ok_or_else(|| not_found("checkout.session", session_id))?;
                if session["status"] != "open" {
                    return Err(invalid(
                        None,
                        format!(
                            "Only Checkout Sessions with a status in [\"open\"] can be expired: '{session_id}' is {}",
                            session["status"]
                        ),
                    ));
                }
                session["status"] = "expired".into();
                session["url"] = Value::Null;
                Ok(session.clone())
            },
        )?;
        Ok(())
    }

    async fn checkout_status(&self, session_id: &str) -> Result<SessionStatus, StripeError> {
        self.receive(
            Method::CheckoutStatus,
            json!({ "session": session_id }),
            None,
        )?;
        let s = self.state();
        let session = s
            .sessions
            .get(session_id)
            .ok_or_else(|| not_found("checkout.session", session_id))?;
        decode(&session["status"])
    }

    async fn checkout_line_items(&self, session_id: &str) -> Result<Vec<LineItem>, StripeError> {
        let args = json!({ "session": session_id });
        self.receive(Method::CheckoutLineItems, args, None)?;
        let s = self.state();
        if !s.sessions.contains_key(session_id) {
            return Err(not_found("checkout.session", session_id));
        }
        let items = s.line_items.get(session_id).cloned().unwrap_or_default();
        Ok(items
            .into_iter()
            .map(|(price, quantity)| LineItem {
                price: Some(LineItemPrice { id: price }),
                quantity: Some(quantity),
            })
            .collect())
    }

    async fn retrieve_subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        let args = json!({ "subscription": id });
        self.receive(Method::RetrieveSubscription, args, None)?;
        let s = self.state();
        let sub = s
            .subscriptions
            .get(id)
            .ok_or_else(|| not_found("subscription", id))?;
        decode(sub)
    }

    async fn change_subscription_price(
        &self,
        id: &str,
        change: &PriceChange<'_>,
        key: &str,
    ) -> Result<Subscription, StripeError> {
        let args = json!({ "subscription": id, "item": change.item, "price": change.price,
                           "quantity": change.quantity });
        self.receive(Method::ChangeSubscriptionPrice, args, Some(key))?;
        let sub = self.once(Method::ChangeSubscriptionPrice, key, |s| {
            subscription_change(s, id, |sub| {
                let item = &mut sub["items"]["data"][0];
                if item["id"] != change.item {
                    return Err(invalid(
                        Some("resource_missing"),
                        format!("No such subscription item: '{}'", change.item),
                    ));
                }
                item["price"]["id"] = change.price.into();
                item["quantity"] = change.quantity.into();
                Ok(())
            })
        })?;
        decode(&sub)
    }

    async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        clear_cancel_at: bool,
        key: &str,
    ) -> Result<Subscription, StripeError> {
        let args =
            json!({ "subscription": id, "cancel": cancel, "clear_cancel_at": clear_cancel_at });
        self.receive(Method::SetCancelAtPeriodEnd, args, Some(key))?;
        let sub = self.once(Method::SetCancelAtPeriodEnd, key, |s| {
            subscription_change(s, id, |sub| {
                sub["cancel_at_period_end"] = cancel.into();
                sub["cancel_at"] = match cancel {
                    true => sub["items"]["data"][0]["current_period_end"].clone(),
                    false => Value::Null,
                };
                if clear_cancel_at {
                    sub["cancel_at"] = Value::Null;
                }
                Ok(())
            })
        })?;
        decode(&sub)
    }

    async fn preview_subscription_change(
        &self,
        customer: &str,
        subscription_id: &str,
        change: &PriceChange<'_>,
    ) -> Result<InvoicePreview, StripeError> {
        let args = json!({ "customer": customer, "subscription": subscription_id,
                           "item": change.item, "price": change.price, "quantity": change.quantity });
        self.receive(Method::PreviewSubscriptionChange, args, None)?;
        let s = self.state();
        // Named by a parameter, not the path: Stripe answers 400 `resource_missing`.
        let sub = s.subscriptions.get(subscription_id).ok_or_else(|| {
            invalid(
                Some("resource_missing"),
                format!("No such subscription: '{subscription_id}'"),
            )
        })?;
        if sub["customer"] != customer {
            return Err(invalid(
                None,
                format!("The subscription '{subscription_id}' does not belong to '{customer}'"),
            ));
        }
        decode(&crate::subscription_change_preview(
            customer,
            sub,
            &s.prices,
            change.price,
            change.quantity,
        ))
    }

    async fn list_invoices(
        &self,
        customer: &str,
        limit: u8,
        starting_after: Option<&str>,
    ) -> Result<ListPage<Invoice>, StripeError> {
        let args =
            json!({ "customer": customer, "limit": limit, "starting_after": starting_after });
        self.receive(Method::ListInvoices, args, None)?;
        let theirs: Vec<Value> = self
            .state()
            .invoices
            .iter()
            .filter(|i| i["customer"] == customer)
            .cloned()
            .collect();
        let listed = page(theirs, starting_after, usize::from(limit.clamp(1, 100)));
        Ok(ListPage {
            data: listed.data.iter().map(decode).collect::<Result<_, _>>()?,
            has_more: listed.has_more,
        })
    }

    async fn calculate_tax(
        &self,
        sale: &TaxedSale<'_>,
        key: &str,
    ) -> Result<TaxCalculation, StripeError> {
        let args = json!({ "currency": sale.currency, "amount": sale.amount, "quantity": sale.quantity,
                           "reference": sale.reference, "country": sale.country,
                           "postal_code": sale.postal_code });
        self.receive(Method::CalculateTax, args, Some(key))?;
        let calc = self.once(Method::CalculateTax, key, |s| {
            // Stripe Tax's line amount is the line's total, not a unit price.
            let tax = sale.amount * s.tax_bps / 10_000;
            let id = s.id("taxcalc");
            Ok(object(
                "tax.calculation",
                json!({ "id": id, "currency": sale.currency, "amount_total": sale.amount + tax,
                        "tax_amount_exclusive": tax, "tax_amount_inclusive": 0 }),
            ))
        })?;
        decode(&calc)
    }

    async fn create_payment_intent(
        &self,
        p: &NewPaymentIntent<'_>,
        key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let args = json!({ "amount": p.amount, "currency": p.currency, "user": p.user.as_str(),
                           "plan": p.plan.as_str(), "quantity": p.quantity,
                           "tax_calculation": p.tax_calculation, "customer": p.customer });
        self.receive(Method::CreatePaymentIntent, args, Some(key))?;
        if p.amount < 1 {
            return Err(invalid(
                Some("amount_too_small"),
                "Amount must be at least 1 cent".into(),
            ));
        }
        let pi = self.once(Method::CreatePaymentIntent, key, |s| {
            let id = s.id("pi");
            let mut pi = object(
                "payment_intent",
                json!({ "id": id, "amount": p.amount, "amount_received": 0,
                        "currency": p.currency, "customer": p.customer,
                        "client_secret": format!("{id}_secret_mem"),
                        "status": "requires_payment_method", "last_payment_error": Value::Null }),
            );
            let mut metadata = json!({ "user_id": p.user.as_str(), "plan_id": p.plan.as_str(),
                                       "quantity": p.quantity.to_string() });
            if let Some(calc) = p.tax_calculation {
                metadata["tax_calculation"] = calc.into();
            }
            pi["metadata"] = metadata;
            s.payment_intents.insert(id, pi.clone());
            Ok(pi)
        })?;
        decode(&pi)
    }

    async fn refund_purchase(&self, r: &NewRefund<'_>, key: &str) -> Result<Refund, StripeError> {
        let args = json!({ "payment_intent": r.payment_intent, "amount": r.amount,
                           "purchase": r.purchase, "operator": r.operator.as_str() });
        self.receive(Method::RefundPurchase, args, Some(key))?;
        let refund = self.once(Method::RefundPurchase, key, |s| {
            // A parameter naming a missing object is a 400 `resource_missing` (a path's is a 404).
            let pi = s.payment_intents.get(r.payment_intent).ok_or_else(|| {
                invalid(
                    Some("resource_missing"),
                    format!("No such payment_intent: '{}'", r.payment_intent),
                )
            })?;
            let received = pi["amount_received"].as_i64().unwrap_or(0);
            let refunded: i64 = s
                .refunds
                .iter()
                .filter(|f| f["payment_intent"] == r.payment_intent)
                .filter_map(|f| f["amount"].as_i64())
                .sum();
            if received == 0 {
                return Err(invalid(
                    None,
                    format!(
                        "This PaymentIntent ({}) does not have a successful charge to refund.",
                        r.payment_intent
                    ),
                ));
            }
            if r.amount < 1 || r.amount > received - refunded {
                return Err(invalid(
                    None,
                    format!(
                        "Refund amount ({}) is greater than unrefunded amount on charge ({})",
                        r.amount,
                        received - refunded
                    ),
                ));
            }
            let id = s.id("re");
            let mut refund = object(
                "refund",
                json!({ "id": id, "amount": r.amount, "payment_intent": r.payment_intent,
                        "status": "succeeded" }),
            );
            refund["metadata"] =
                json!({ "purchase_id": r.purchase, "operator": r.operator.as_str() });
            s.refunds.push(refund.clone());
            Ok(refund)
        })?;
        decode(&refund)
    }

    async fn invoice_of_payment(
        &self,
        payment_intent: &str,
    ) -> Result<Option<String>, StripeError> {
        let args = json!({ "payment_intent": payment_intent });
        self.receive(Method::InvoiceOfPayment, args, None)?;
        Ok(self.state().invoice_of_payment.get(payment_intent).cloned())
    }

    async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        let args = json!({ "payment_intent": id });
        self.receive(Method::RetrievePaymentIntent, args, None)?;
        let s = self.state();
        let pi = s
            .payment_intents
            .get(id)
            .ok_or_else(|| not_found("payment_intent", id))?;
        decode(pi)
    }

    async fn report_meter_usage(&self, usage: &MeterUsage<'_>) -> Result<(), StripeError> {
        let args = json!({ "customer": usage.customer, "event_name": usage.event_name,
                           "units": usage.units, "identifier": usage.identifier, "at": usage.at });
        self.receive(Method::ReportMeterUsage, args, Some(usage.identifier))?;
        // The identifier is the idempotency key too (as the HTTP adapter sends it): a report
        // sent again is answered, and counted, once.
        self.once(Method::ReportMeterUsage, usage.identifier, |s| {
            let event = object(
                "billing.meter_event",
                json!({ "event_name": usage.event_name, "identifier": usage.identifier,
                        "timestamp": usage.at,
                        "payload": { "stripe_customer_id": usage.customer,
                                     "value": usage.units.to_string() } }),
            );
            s.meter_events.push(event.clone());
            Ok(event)
        })?;
        Ok(())
    }

    async fn retrieve_event(&self, event_id: &str) -> Result<Value, StripeError> {
        let args = json!({ "event": event_id });
        self.receive(Method::RetrieveEvent, args, None)?;
        let s = self.state();
        s.events
            .iter()
            .find(|e| e["id"] == event_id)
            .cloned()
            .ok_or_else(|| not_found("event", event_id))
    }

    async fn list_events(&self, q: &EventsQuery<'_>) -> Result<ListPage<Value>, StripeError> {
        let args = json!({ "created_gte": q.created_gte, "created_lte": q.created_lte,
                           "types": q.types, "starting_after": q.starting_after });
        self.receive(Method::ListEvents, args, None)?;
        let listed: Vec<Value> = self
            .state()
            .events
            .iter()
            .filter(|e| {
                let created = e["created"].as_i64().unwrap_or(0);
                created >= q.created_gte && created <= q.created_lte
            })
            .filter(|e| q.types.is_empty() || q.types.iter().any(|t| e["type"] == *t))
            .cloned()
            .collect();
        Ok(page(listed, q.starting_after, 100))
    }

    async fn find_price_by_lookup_key(
        &self,
        lookup_key: &str,
    ) -> Result<Option<String>, StripeError> {
        let args = json!({ "lookup_key": lookup_key });
        self.receive(Method::FindPriceByLookupKey, args, None)?;
        Ok(self
            .state()
            .prices
            .iter()
            .find(|p| p["lookup_key"] == lookup_key && p["active"] == true)
            .and_then(|p| p["id"].as_str())
            .map(str::to_owned))
    }

    async fn create_product(&self, product: &NewProduct, key: &str) -> Result<String, StripeError> {
        let args = json!({ "name": product.name, "plan": product.plan.as_str() });
        self.receive(Method::CreateProduct, args, Some(key))?;
        let created = self.once(Method::CreateProduct, key, |s| {
            let id = s.id("prod");
            let mut p = object("product", json!({ "id": id, "name": product.name }));
            p["metadata"] = json!({ "plan_id": product.plan.as_str() });
            s.products.push(p.clone());
            Ok(p)
        })?;
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    async fn create_price(&self, price: &NewPrice, key: &str) -> Result<String, StripeError> {
        let args = json!({ "product": price.product, "amount": price.amount,
                           "currency": price.currency, "lookup_key": price.lookup_key,
                           "plan": price.plan.as_str(), "interval": price.interval });
        self.receive(Method::CreatePrice, args, Some(key))?;
        let created = self.once(Method::CreatePrice, key, |s| {
            // Stripe keeps a lookup key on one price: another needs `transfer_lookup_key`,
            // which the bootstrap never sends.
            if s.prices.iter().any(|p| p["lookup_key"] == price.lookup_key) {
                return Err(invalid(
                    None,
                    format!(
                        "A price (`lookup_key`: '{}') already uses that lookup key.",
                        price.lookup_key
                    ),
                ));
            }
            let id = s.id("price");
            let recurring = price
                .interval
                .as_ref()
                .map(|i| json!({ "interval": i, "interval_count": 1, "usage_type": "licensed" }));
            let kind = if recurring.is_some() {
                "recurring"
            } else {
                "one_time"
            };
            let mut p = object(
                "price",
                json!({ "id": id, "product": price.product, "unit_amount": price.amount,
                        "currency": price.currency, "lookup_key": price.lookup_key,
                        "active": true, "type": kind }),
            );
            p["recurring"] = recurring.unwrap_or(Value::Null);
            p["metadata"] = json!({ "plan_id": price.plan.as_str() });
            s.prices.push(p.clone());
            Ok(p)
        })?;
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    async fn retrieve_price(&self, price_id: &str) -> Result<Price, StripeError> {
        let args = json!({ "price": price_id });
        self.receive(Method::RetrievePrice, args, None)?;
        let s = self.state();
        let price = s
            .prices
            .iter()
            .find(|p| p["id"] == price_id)
            .ok_or_else(|| not_found("price", price_id))?;
        decode(price)
    }

    async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StripeError> {
        self.receive(Method::ListWebhookEndpoints, Value::Null, None)?;
        let s = self.state();
        s.webhook_endpoints.iter().take(100).map(decode).collect()
    }

    async fn create_webhook_endpoint(
        &self,
        e: &NewWebhookEndpoint,
        key: &str,
    ) -> Result<String, StripeError> {
        let args = json!({ "url": e.url, "api_version": e.api_version,
                           "description": e.description, "enabled_events": e.enabled_events });
        self.receive(Method::CreateWebhookEndpoint, args, Some(key))?;
        let created = self.once(Method::CreateWebhookEndpoint, key, |s| {
            let id = s.id("we");
            let endpoint = object(
                "webhook_endpoint",
                json!({ "id": id, "url": e.url, "api_version": e.api_version,
                        "description": e.description, "enabled_events": e.enabled_events,
                        "status": "enabled", "livemode": false }),
            );
            s.webhook_endpoints.push(endpoint.clone());
            Ok(endpoint)
        })?;
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    async fn active_portal_configuration(&self) -> Result<Option<String>, StripeError> {
        self.receive(Method::ActivePortalConfiguration, Value::Null, None)?;
        Ok(self
            .state()
            .portal_configurations
            .iter()
            .find(|c| c["active"] == true)
            .and_then(|c| c["id"].as_str())
            .map(str::to_owned))
    }
}
