//! Serde types for Stripe invoices, their lines and payments, in the shapes before and
//! after API version 2025-03-31 (see [`super::objects`] for the conventions).

use super::objects::{Expandable, List, Metadata, Price, meta_value};
use serde::Deserialize;

/// Where an invoice comes from (API 2025-03-31 and later): for a subscription's invoice,
/// the subscription and a snapshot of its metadata.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InvoiceParent {
    #[serde(default)]
    pub subscription_details: Option<SubscriptionDetails>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SubscriptionDetails {
    #[serde(default)]
    pub subscription: Option<Expandable>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// An invoice line's price: `pricing.price_details.price` now, `price` before 2025-03-31.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LinePricing {
    #[serde(default)]
    pub price_details: Option<PriceDetails>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PriceDetails {
    #[serde(default)]
    pub price: Option<Expandable>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceLine {
    /// What the line bills, as Stripe words it ("3 × Team (at $12.00 / month)").
    #[serde(default)]
    pub description: Option<String>,
    /// Minor units of the invoice's currency.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub pricing: Option<LinePricing>,
    #[serde(default)]
    pub price: Option<Price>,
    /// Before 2025-03-31: whether the line is a proration.
    #[serde(default)]
    pub proration: Option<bool>,
    /// Since 2025-03-31: where the line comes from, with its proration flag.
    #[serde(default)]
    pub parent: Option<LineParent>,
}

/// A line's origin (API 2025-03-31 and later): a subscription item or an invoice item.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LineParent {
    #[serde(default)]
    pub subscription_item_details: Option<LineOrigin>,
    #[serde(default)]
    pub invoice_item_details: Option<LineOrigin>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LineOrigin {
    #[serde(default)]
    pub proration: bool,
}

impl InvoiceLine {
    /// A proration (the unused time of the old price, the remaining time of the new one
    /// after a switch), in either shape.
    pub fn is_proration(&self) -> bool {
        let parent = self.parent.as_ref();
        self.proration.unwrap_or(false)
            || parent
                .and_then(|p| p.subscription_item_details.as_ref())
                .is_some_and(|d| d.proration)
            || parent
                .and_then(|p| p.invoice_item_details.as_ref())
                .is_some_and(|d| d.proration)
    }
    pub fn price_id(&self) -> Option<&str> {
        self.pricing
            .as_ref()
            .and_then(|p| p.price_details.as_ref())
            .and_then(|d| d.price.as_ref())
            .map(Expandable::id)
            .or_else(|| self.price.as_ref().map(|p| p.id.as_str()))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    pub id: String,
    #[serde(default)]
    pub customer: Option<Expandable>,
    #[serde(default)]
    pub parent: Option<InvoiceParent>,
    /// Before API 2025-03-31 the subscription and its metadata snapshot sat on the invoice.
    #[serde(default)]
    pub subscription: Option<Expandable>,
    #[serde(default)]
    pub subscription_details: Option<SubscriptionDetails>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub lines: Option<List<InvoiceLine>>,
    #[serde(default)]
    pub amount_paid: Option<i64>,
    #[serde(default)]
    pub amount_due: Option<i64>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    #[serde(default)]
    pub status: Option<String>,
    /// Set once the invoice is finalized.
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub invoice_pdf: Option<String>,
    /// When Stripe will next try to collect it (a preview: when it would be charged).
    #[serde(default)]
    pub next_payment_attempt: Option<i64>,
    /// What the invoice charges; above zero while `amount_paid` is zero when the customer's
    /// balance (a downgrade's credit) paid it.
    #[serde(default)]
    pub total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// Stripe's page where the customer pays the invoice, or confirms a payment that needs
    /// them (3-D Secure); null until the invoice is finalized.
    #[serde(default)]
    pub hosted_invoice_url: Option<String>,
    /// `subscription_create` for a subscription's first invoice, `subscription_cycle` after.
    #[serde(default)]
    pub billing_reason: Option<String>,
    /// Before API 2025-03-31 the invoice named the PaymentIntent that paid it.
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    /// Since 2025-03-31 the payments are InvoicePayment objects (present when included).
    #[serde(default)]
    pub payments: Option<List<InvoicePayment>>,
}

/// An invoice preview (`POST /v1/invoices/create_preview`): an invoice that does not
/// exist, so it may carry no id.
#[derive(Debug, Clone, Deserialize)]
pub struct InvoicePreview {
    #[serde(default)]
    pub amount_due: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub lines: Option<List<InvoiceLine>>,
    #[serde(default)]
    pub next_payment_attempt: Option<i64>,
    #[serde(default)]
    pub created: Option<i64>,
}

/// One payment of an invoice (API 2025-03-31 and later).
#[derive(Debug, Clone, Deserialize)]
pub struct InvoicePayment {
    #[serde(default)]
    pub invoice: Option<Expandable>,
    #[serde(default)]
    pub payment: Option<InvoicePaymentRef>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoicePaymentRef {
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
}

impl Invoice {
    /// The PaymentIntents that paid this invoice, in either API shape.
    pub fn payment_intent_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .payments
            .iter()
            .flat_map(|l| l.data.iter())
            .filter(|p| p.status.as_deref().is_none_or(|s| s == "paid"))
            .filter_map(|p| p.payment.as_ref()?.payment_intent.as_ref())
            .map(Expandable::id)
            .collect();
        if let Some(pi) = &self.payment_intent {
            ids.push(pi.id());
        }
        ids
    }

    /// The subscription's details: under `parent` since 2025-03-31, top-level before.
    fn details(&self) -> Option<&SubscriptionDetails> {
        self.parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .or(self.subscription_details.as_ref())
    }
    /// The subscription this invoice bills, if it bills one.
    pub fn subscription_id(&self) -> Option<&str> {
        self.details()
            .and_then(|d| d.subscription.as_ref())
            .or(self.subscription.as_ref())
            .map(Expandable::id)
    }
    /// A metadata value: the subscription's snapshot first, then the invoice's own.
    pub fn meta(&self, key: &str) -> Option<&str> {
        meta_value(self.details().and_then(|d| d.metadata.as_ref()), key)
            .or(meta_value(self.metadata.as_ref(), key))
    }
    /// Starts or renews a period with money paid: not a proration, not a $0 trial invoice.
    /// Money from the customer's balance counts (a period paid from a downgrade's credit).
    pub fn pays_a_period(&self) -> bool {
        let paid = self.amount_paid.unwrap_or(0).max(self.total.unwrap_or(0));
        matches!(
            self.billing_reason.as_deref(),
            Some("subscription_create" | "subscription_cycle")
        ) && paid > 0
    }
    /// The prices the invoice bills, those of the period first: lines that are not
    /// prorations, then prorations (after a switch, a renewal's first line may be the old
    /// price's unused time; the period's price must decide the plan).
    pub fn price_ids(&self) -> impl Iterator<Item = &str> {
        let lines = || self.lines.iter().flat_map(|l| l.data.iter());
        lines()
            .filter(|l| !l.is_proration())
            .chain(lines().filter(|l| l.is_proration()))
            .filter_map(InvoiceLine::price_id)
    }
}
