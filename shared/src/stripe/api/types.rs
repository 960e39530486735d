//! What the Stripe port takes and answers, in the project's terms.

use crate::domain::catalog::Plan;
use crate::domain::ids::{PlanId, UserId};
use serde::Deserialize;

/// One Checkout Session to create: the plan sold and its price, the buyer, and where the
/// buyer comes back to. The adapter adds the session id to `success_url`.
#[derive(Debug, Clone)]
pub struct NewCheckout<'a> {
    pub plan: &'a Plan,
    pub price_id: &'a str,
    pub quantity: i64,
    pub user: &'a UserId,
    /// The buyer's email, prefilled when the account has no Stripe customer yet.
    pub email: Option<&'a str>,
    /// The account's Stripe customer, reused for every checkout after its first.
    pub customer: Option<&'a str>,
    pub success_url: String,
    pub cancel_url: String,
    /// Days of trial: `None` for an account that has had a subscription already.
    pub trial_days: Option<u32>,
    /// Stripe Tax on (`AUTOMATIC_TAX`): the buyer's address is collected.
    pub automatic_tax: bool,
}

/// What our checkout needs back from a created session.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedSession {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PortalSession {
    pub url: String,
}

/// A Checkout Session's status as Stripe holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// It can still be paid.
    Open,
    /// Paid (or confirmed): its completion event is on its way.
    Complete,
    /// Expired: nobody can pay it any more.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LineItemPrice {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LineItem {
    #[serde(default)]
    pub price: Option<LineItemPrice>,
    #[serde(default)]
    pub quantity: Option<i64>,
}

/// One page of a list (events, invoices).
#[derive(Debug, Clone, Deserialize)]
pub struct ListPage<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

/// Units a customer used beyond an allowance, for a Stripe Billing Meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterUsage<'a> {
    /// The Stripe customer (`cus_…`) the units are billed to.
    pub customer: &'a str,
    /// The meter's event name, as the catalog names it.
    pub event_name: &'a str,
    pub units: i64,
    /// Derived from the usage key: Stripe counts each identifier once.
    pub identifier: &'a str,
    /// When the units were used (Unix seconds), so a late report lands in that period.
    pub at: i64,
}

/// Which events to list: created within `[created_gte, created_lte]` (Unix seconds), of
/// `types`, after `starting_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsQuery<'a> {
    pub created_gte: i64,
    pub created_lte: i64,
    pub types: &'a [&'a str],
    pub starting_after: Option<&'a str>,
}

/// A subscription item (`si_…`) moved to a price and a quantity (seats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceChange<'a> {
    pub item: &'a str,
    pub price: &'a str,
    pub quantity: i64,
}

/// What Stripe Tax computed for one sale.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaxCalculation {
    /// `taxcalc_…`: what the PaymentIntent names so that Stripe records the tax transaction.
    pub id: String,
    /// The amount with tax (minor units): what the buyer is charged.
    pub amount_total: i64,
    #[serde(default)]
    pub tax_amount_exclusive: i64,
}

/// A sale to be taxed: one line of `amount` for `quantity` of `reference` (a plan id),
/// sold to a buyer at `country` / `postal_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxedSale<'a> {
    pub currency: &'a str,
    pub amount: i64,
    pub quantity: i64,
    pub reference: &'a str,
    pub country: &'a str,
    pub postal_code: &'a str,
}

/// A PaymentIntent for one purchase of `quantity` of `plan` by `user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPaymentIntent<'a> {
    /// What the buyer is charged (with tax, when Stripe Tax computed it).
    pub amount: i64,
    pub currency: &'a str,
    pub user: &'a UserId,
    pub plan: &'a PlanId,
    pub quantity: i64,
    /// Stripe Tax's calculation, which Stripe records as a tax transaction on success.
    pub tax_calculation: Option<&'a str>,
    /// The account's Stripe customer, when it has one.
    pub customer: Option<&'a str>,
}

/// An operator's refund of `amount` of a purchase's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRefund<'a> {
    pub payment_intent: &'a str,
    pub amount: i64,
    pub purchase: &'a str,
    pub operator: &'a UserId,
}

/// The product the catalog bootstrap creates for a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub name: String,
    pub plan: PlanId,
}

/// The price the catalog bootstrap creates for a plan, found again by its lookup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrice {
    pub product: String,
    pub amount: i64,
    pub currency: String,
    pub lookup_key: String,
    pub plan: PlanId,
    /// The billing interval of a subscription's price; `None` for a one-time price.
    pub interval: Option<String>,
}

/// A price as Stripe holds it (what the go-live gates compare with the catalog).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Price {
    pub id: String,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub unit_amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// `one_time` or `recurring`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub recurring: Option<Recurring>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Recurring {
    #[serde(default)]
    pub interval: Option<String>,
}

/// A webhook endpoint as Stripe holds it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    #[serde(default)]
    pub url: String,
    /// `None`: the account's default version.
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub enabled_events: Vec<String>,
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub livemode: Option<bool>,
}

/// The webhook endpoint the bootstrap creates: pinned to an API version and subscribed to
/// exactly `enabled_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEndpoint {
    pub url: String,
    pub api_version: String,
    pub description: String,
    pub enabled_events: Vec<String>,
}
