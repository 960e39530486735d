//! The Stripe event types this project acts on, by Stripe's names. Intake records every
//! other type as `ignored`; the worker dispatches these by family (`usecases::fulfil`).

pub const CHECKOUT_COMPLETED: &str = "checkout.session.completed";
pub const ASYNC_SUCCEEDED: &str = "checkout.session.async_payment_succeeded";
pub const ASYNC_FAILED: &str = "checkout.session.async_payment_failed";
pub const CHECKOUT_EXPIRED: &str = "checkout.session.expired";
pub const SUB_CREATED: &str = "customer.subscription.created";
pub const SUB_UPDATED: &str = "customer.subscription.updated";
pub const SUB_DELETED: &str = "customer.subscription.deleted";
pub const SUB_PAUSED: &str = "customer.subscription.paused";
pub const SUB_RESUMED: &str = "customer.subscription.resumed";
pub const INVOICE_PAID: &str = "invoice.paid";
pub const INVOICE_FAILED: &str = "invoice.payment_failed";
/// A payment that needs the customer (3-D Secure): the hosted invoice page confirms it.
pub const INVOICE_ACTION_REQUIRED: &str = "invoice.payment_action_required";
pub const CHARGE_REFUNDED: &str = "charge.refunded";
pub const DISPUTE_CREATED: &str = "charge.dispute.created";
pub const DISPUTE_CLOSED: &str = "charge.dispute.closed";
pub const DISPUTE_REINSTATED: &str = "charge.dispute.funds_reinstated";
pub const DISPUTE_WITHDRAWN: &str = "charge.dispute.funds_withdrawn";
pub const PI_SUCCEEDED: &str = "payment_intent.succeeded";
pub const PI_FAILED: &str = "payment_intent.payment_failed";

/// Every type the worker acts on.
pub const HANDLED: &[&str] = &[
    CHECKOUT_COMPLETED,
    ASYNC_SUCCEEDED,
    ASYNC_FAILED,
    CHECKOUT_EXPIRED,
    SUB_CREATED,
    SUB_UPDATED,
    SUB_DELETED,
    SUB_PAUSED,
    SUB_RESUMED,
    INVOICE_PAID,
    INVOICE_FAILED,
    INVOICE_ACTION_REQUIRED,
    CHARGE_REFUNDED,
    DISPUTE_CREATED,
    DISPUTE_CLOSED,
    DISPUTE_REINSTATED,
    DISPUTE_WITHDRAWN,
    PI_SUCCEEDED,
    PI_FAILED,
];

pub fn handles(kind: &str) -> bool {
    HANDLED.contains(&kind)
}
