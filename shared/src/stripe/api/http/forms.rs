//! The forms the HTTP adapter sends, one per request, exactly as Stripe receives them
//! (nested keys spelled out). Public so that the operator's tool can show a dry run's
//! requests as they would be sent.

use super::super::types::{
    MeterUsage, NewCheckout, NewPaymentIntent, NewPrice, NewProduct, NewRefund, NewWebhookEndpoint,
    PriceChange, TaxedSale,
};
use super::Form;
use crate::domain::catalog::Mode;

fn with_session_placeholder(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}session_id={{CHECKOUT_SESSION_ID}}")
}

/// A Checkout Session.
pub fn checkout(c: &NewCheckout<'_>) -> Form {
    let plan = c.plan;
    let user = c.user.as_str();
    let quantity = c.quantity;
    let mut f = Form::new();
    f.push(
        "mode",
        if plan.mode == Mode::Subscription {
            "subscription"
        } else {
            "payment"
        },
    )
    .push("line_items[0][price]", c.price_id)
    .push("line_items[0][quantity]", quantity);
    if let Some(metered) = &plan.metered_price_id {
        // The units beyond the allowance of the plan's stripe_meter feature are billed by
        // this price; Stripe takes no quantity for a metered price.
        f.push("line_items[1][price]", metered);
    }
    f.push("success_url", with_session_placeholder(&c.success_url))
        .push("cancel_url", &c.cancel_url)
        .push("client_reference_id", c.user.to_reference())
        .push("metadata[user_id]", user)
        .push("metadata[plan_id]", plan.id.as_str())
        .push("metadata[quantity]", quantity);
    if plan.promotion_codes_allowed() {
        f.push("allow_promotion_codes", "true");
    }
    match plan.mode {
        Mode::Subscription => {
            f.push("subscription_data[metadata][user_id]", user)
                .push("subscription_data[metadata][plan_id]", plan.id.as_str());
            if let Some(days) = c.trial_days {
                f.push("subscription_data[trial_period_days]", days);
            }
        }
        Mode::Payment => {
            // The quantity too: `payment_intent.succeeded` may arrive before the session's
            // completion and is then the one that grants.
            f.push("payment_intent_data[metadata][user_id]", user)
                .push("payment_intent_data[metadata][plan_id]", plan.id.as_str())
                .push("payment_intent_data[metadata][quantity]", quantity);
            if c.customer.is_none() {
                // A customer for every buyer, so the portal and later checkouts can reuse it.
                f.push("customer_creation", "always");
            }
        }
    }
    if c.automatic_tax {
        // Stripe Tax needs the buyer's address; a reused customer's address and name are
        // updated from what they enter, so the next purchase is taxed where they are.
        f.push("automatic_tax[enabled]", "true")
            .push("billing_address_collection", "required")
            .push("tax_id_collection[enabled]", "true");
        if c.customer.is_some() {
            f.push("customer_update[address]", "auto")
                .push("customer_update[name]", "auto");
        }
    }
    match (c.customer, c.email) {
        (Some(customer), _) => {
            f.push("customer", customer);
        }
        (None, Some(email)) => {
            f.push("customer_email", email);
        }
        (None, None) => {}
    }
    f
}

/// A Billing Portal session.
pub fn portal_session(customer: &str, return_url: &str) -> Form {
    let mut f = Form::new();
    f.push("customer", customer).push("return_url", return_url);
    f
}

/// A subscription's item moved to a price and quantity.
pub fn price_change(change: &PriceChange<'_>) -> Form {
    let mut f = Form::new();
    f.push("items[0][id]", change.item)
        .push("items[0][price]", change.price)
        .push("items[0][quantity]", change.quantity);
    f
}

/// A subscription's end at its period end set or cleared.
pub fn cancel_at_period_end(cancel: bool, clear_cancel_at: bool) -> Form {
    let mut f = Form::new();
    f.push("cancel_at_period_end", cancel);
    if clear_cancel_at {
        // An empty value is how Stripe unsets a field.
        f.push("cancel_at", "");
    }
    f
}

/// A preview of the subscription's next invoice after `change`.
pub fn preview(customer: &str, subscription_id: &str, change: &PriceChange<'_>) -> Form {
    let mut f = Form::new();
    f.push("customer", customer)
        .push("subscription", subscription_id)
        .push("subscription_details[items][0][id]", change.item)
        .push("subscription_details[items][0][price]", change.price)
        .push("subscription_details[items][0][quantity]", change.quantity);
    f
}

/// The query of a customer's invoices.
pub fn invoices_query(customer: &str, limit: u8, starting_after: Option<&str>) -> Form {
    let mut f = Form::new();
    f.push("customer", customer).push("limit", limit);
    if let Some(after) = starting_after {
        f.push("starting_after", after);
    }
    f
}

/// A tax calculation.
pub fn tax_calculation(sale: &TaxedSale<'_>) -> Form {
    let mut f = Form::new();
    f.push("currency", sale.currency)
        .push("line_items[0][amount]", sale.amount)
        .push("line_items[0][quantity]", sale.quantity)
        .push("line_items[0][reference]", sale.reference)
        .push("customer_details[address][country]", sale.country)
        .push("customer_details[address][postal_code]", sale.postal_code)
        .push("customer_details[address_source]", "billing");
    f
}

/// A PaymentIntent for a purchase.
pub fn payment_intent(p: &NewPaymentIntent<'_>) -> Form {
    let mut f = Form::new();
    f.push("amount", p.amount)
        .push("currency", p.currency)
        .push("automatic_payment_methods[enabled]", "true")
        .push("metadata[user_id]", p.user.as_str())
        .push("metadata[plan_id]", p.plan.as_str())
        .push("metadata[quantity]", p.quantity);
    if let Some(id) = p.tax_calculation {
        // Stripe records the tax transaction itself when this payment succeeds (API
        // 2025-11-17 and later; the pinned version is newer): nothing of ours can lose it.
        f.push("hooks[inputs][tax][calculation]", id)
            .push("metadata[tax_calculation]", id);
    }
    if let Some(c) = p.customer {
        f.push("customer", c);
    }
    f
}

/// A refund of a purchase.
pub fn refund(r: &NewRefund<'_>) -> Form {
    let mut f = Form::new();
    f.push("payment_intent", r.payment_intent)
        .push("amount", r.amount)
        .push("metadata[purchase_id]", r.purchase)
        .push("metadata[operator]", r.operator.as_str());
    f
}

/// The query of a PaymentIntent's InvoicePayments.
pub fn invoice_payments_query(payment_intent: &str) -> Form {
    let mut f = Form::new();
    f.push("payment[type]", "payment_intent")
        .push("payment[payment_intent]", payment_intent);
    f
}

/// The query of `/v1/events`: a window, types, a page after `starting_after`.
pub fn events_query(q: &super::super::types::EventsQuery<'_>) -> Form {
    let mut f = Form::new();
    f.push("limit", 100)
        .push("created[gte]", q.created_gte)
        .push("created[lte]", q.created_lte);
    for kind in q.types {
        f.push("types[]", kind);
    }
    if let Some(after) = q.starting_after {
        f.push("starting_after", after);
    }
    f
}

/// The query of the active price with a lookup key.
pub fn price_by_lookup_key(lookup_key: &str) -> Form {
    let mut f = Form::new();
    f.push("lookup_keys[]", lookup_key)
        .push("active", "true")
        .push("limit", 1);
    f
}

/// A product.
pub fn product(p: &NewProduct) -> Form {
    let mut f = Form::new();
    f.push("name", &p.name)
        .push("metadata[plan_id]", p.plan.as_str());
    f
}

/// A price.
pub fn price(p: &NewPrice) -> Form {
    let mut f = Form::new();
    f.push("product", &p.product)
        .push("unit_amount", p.amount)
        .push("currency", &p.currency)
        .push("lookup_key", &p.lookup_key)
        .push("metadata[plan_id]", p.plan.as_str());
    if let Some(interval) = &p.interval {
        f.push("recurring[interval]", interval);
    }
    f
}

/// A webhook endpoint.
pub fn webhook_endpoint(e: &NewWebhookEndpoint) -> Form {
    let mut f = Form::new();
    f.push("url", &e.url)
        .push("api_version", &e.api_version)
        .push("description", &e.description);
    for kind in &e.enabled_events {
        f.push("enabled_events[]", kind);
    }
    f
}

/// A list of the first `limit` of something.
pub fn limit(limit: u8) -> Form {
    let mut f = Form::new();
    f.push("limit", limit);
    f
}

/// The query of the active portal configuration.
pub fn active_portal_configuration() -> Form {
    let mut f = Form::new();
    f.push("active", "true").push("limit", 1);
    f
}

/// A Billing Meter event: the units beyond an allowance, counted once per `identifier`.
pub fn meter_event(usage: &MeterUsage<'_>) -> Form {
    let mut f = Form::new();
    f.push("event_name", usage.event_name)
        .push("payload[stripe_customer_id]", usage.customer)
        .push("payload[value]", usage.units)
        .push("identifier", usage.identifier)
        .push("timestamp", usage.at);
    f
}
