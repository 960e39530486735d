//! `billing.meter_report`: units of a `stripe_meter` feature tracked beyond the allowance,
//! owed to Stripe since the track committed (`store::records::meter_report`). The worker
//! reports them to the feature's Billing Meter and records the report `processed`; a
//! failure records Stripe's error on it and the message returns, until the dead-letter
//! queue (the admin list shows it `failed`, and replay sends it again).
//!
//! A report already `processed` is not sent again (a redelivery, a replay); one whose
//! answer was lost is sent again with the same `identifier` and `Idempotency-Key`, which
//! Stripe counts once.

use super::{Ctx, FulfilError, Planned};
use crate::store::records::event::{self as record, state};
use crate::store::records::meter_report::MeterReport;
use crate::stripe::api::{MeterUsage, StripeError};

pub(super) async fn report(ctx: &Ctx<'_>, report: &MeterReport) -> Result<Planned, FulfilError> {
    let table = ctx.services.table.as_ref();
    if record::load(table, ctx.id)
        .await?
        .is_some_and(|r| r.status == state::PROCESSED)
    {
        return Ok(Planned::already_applied());
    }
    let stripe = ctx.services.stripe.as_ref().ok_or_else(|| {
        FulfilError::Stripe(StripeError::Network(
            "no Stripe secret key is configured to report meter usage".into(),
        ))
    })?;
    stripe
        .report_meter_usage(&MeterUsage {
            customer: &report.customer,
            event_name: &report.event_name,
            units: report.units,
            identifier: &report.identifier,
            at: report.at,
        })
        .await?;
    Ok(ctx.plan(Vec::new()))
}
