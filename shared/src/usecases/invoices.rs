//! The caller's invoices (`docs/api.md`, "GET /api/billing/invoices"): read from Stripe for
//! the account's own customer only, newest first, a page at a time, with Stripe's hosted
//! page and PDF links. The request names no customer: the account's is the only one asked.

use crate::app::Services;
use crate::domain::clock::rfc3339;
use crate::domain::identity::Identity;
use crate::domain::ids::InvoiceId;
use crate::store::StoreError;
use crate::store::records::profile;
use crate::stripe::Invoice;
use crate::stripe::api::StripeError;
use serde::Serialize;

pub const DEFAULT_PAGE: u8 = 10;
pub const MAX_PAGE: u8 = 100;

/// The page the caller asks for, parsed where the request enters (`inbound::commands`).
#[derive(Debug, Clone)]
pub struct InvoicesPage {
    /// 1 to [`MAX_PAGE`].
    pub limit: u8,
    /// The last invoice of the page before.
    pub starting_after: Option<InvoiceId>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoicesView {
    pub invoices: Vec<InvoiceView>,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoiceView {
    pub id: String,
    pub number: Option<String>,
    pub status: Option<String>,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: Option<String>,
    /// RFC 3339.
    pub created: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InvoicesError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("online billing is not available")]
    Unavailable,
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A page size the caller may ask for: 1 to [`MAX_PAGE`].
pub fn page_size(raw: Option<&str>) -> Result<u8, InvoicesError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_PAGE);
    };
    raw.parse::<u8>()
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| InvoicesError::InvalidRequest(format!("limit must be 1 to {MAX_PAGE}")))
}

pub fn invoice_view(invoice: &Invoice) -> InvoiceView {
    InvoiceView {
        id: invoice.id.clone(),
        number: invoice.number.clone(),
        status: invoice.status.clone(),
        amount_due: invoice.amount_due.unwrap_or(0),
        amount_paid: invoice.amount_paid.unwrap_or(0),
        currency: invoice.currency.clone(),
        created: invoice
            .created
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(rfc3339),
        hosted_invoice_url: invoice.hosted_invoice_url.clone(),
        invoice_pdf: invoice.invoice_pdf.clone(),
    }
}

/// `GET /api/billing/invoices`.
pub async fn invoices(
    services: &Services,
    caller: &Identity,
    page: InvoicesPage,
) -> Result<InvoicesView, InvoicesError> {
    let found = profile::load(services.table.as_ref(), &caller.user).await?;
    let Some(customer) = found.and_then(|p| p.customer_id) else {
        return Ok(InvoicesView {
            invoices: Vec::new(),
            has_more: false,
        });
    };
    let stripe = services.stripe.as_ref().ok_or(InvoicesError::Unavailable)?;
    let after = page.starting_after.as_ref().map(InvoiceId::as_str);
    let found = stripe.list_invoices(&customer, page.limit, after).await?;
    Ok(InvoicesView {
        invoices: found.data.iter().map(invoice_view).collect(),
        has_more: found.has_more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_one_to_a_hundred_invoices() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_size(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", ""] {
            assert!(page_size(Some(bad)).is_err(), "{bad}");
        }
    }
}
