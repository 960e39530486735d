//! Fulfilment: what the queue worker does with one Stripe event (`docs/api.md`,
//! "Fulfilment semantics"). One module per event family: [`checkout`], [`subscription`],
//! [`invoice`], [`refund`], [`payment_intent`], [`stripe_features`], and the Stripe meter
//! reports the stack owes ([`meter`]); this one dispatches and runs the plan.
//!
//! Each event becomes one plan of writes executed as one transaction: all of its effects
//! and the event record's `processed` state land together, or nothing does. Each plan's
//! first write is its *guard*, the condition that makes it apply at most once (the
//! checkout's `fulfilled_at` is missing; the subscription's stored version is older). When
//! the guard fails, the event has already been applied, or is older than what was applied:
//! nothing changes and the event is recorded as processed.

mod checkout;
mod invoice;
mod meter;
mod payment_intent;
mod refund;
mod stripe_features;
mod subscription;

pub use subscription::subscription_version;

use crate::app::Services;
use crate::domain::catalog::Plan;
use crate::domain::ids::{CustomerId, EventId, PlanId, UserId};
use crate::metrics::Metric;
use crate::store::records::{customer, entitlements, event as record, meter_report};
use crate::store::{StoreError, Write};
use crate::stripe::Event;
use crate::stripe::event_types::EventType;
use chrono::{DateTime, Utc};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The event's effects landed now.
    Applied,
    /// The guard held it back: applied before, or older than what was applied.
    AlreadyApplied,
}

#[derive(Debug, thiserror::Error)]
pub enum FulfilError {
    #[error("the message is not a Stripe event: {0}")]
    InvalidEvent(String),
    #[error("the event type {0} is not handled")]
    Unhandled(String),
    #[error(
        "the event names no user we know (metadata.user_id, client_reference_id or a known customer)"
    )]
    NoUser,
    #[error("the event names no plan of the catalog (named: {0})")]
    UnknownPlan(String),
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    #[error("Stripe could not be asked: {0}")]
    Stripe(#[from] crate::stripe::api::StripeError),
    #[error("no purchase of ours is linked to this charge's payment intent")]
    NoPurchase,
    #[error("payment {0} is ours but not fulfilled yet; the event is retried after it")]
    NotYetFulfilled(String),
}

impl FulfilError {
    fn invalid(e: impl std::fmt::Display) -> Self {
        Self::InvalidEvent(e.to_string())
    }
}

/// The writes of one event, its guard first, the event record last.
struct Planned {
    writes: Vec<Write>,
    /// The planner found the event applied before (or older than what was applied).
    already: bool,
    /// The guard pins what was read rather than marking the event once: when it fails,
    /// something changed meanwhile and the event is planned again.
    guard_pins: bool,
}

impl Planned {
    fn already_applied() -> Self {
        Self {
            writes: Vec::new(),
            already: true,
            guard_pins: false,
        }
    }

    fn guard_is_a_pin(mut self) -> Self {
        self.guard_pins = true;
        self
    }
}

/// Where one event's plan is made: the ports, the event and the time it is applied.
struct Ctx<'a> {
    services: &'a Services,
    id: &'a EventId,
    event: &'a Event,
    now: DateTime<Utc>,
}

impl Ctx<'_> {
    /// A plan of `effects`, completed by the event record's `processed` state.
    fn plan(&self, mut effects: Vec<Write>) -> Planned {
        effects.push(record::processed(self.id, &self.event.kind, self.now));
        Planned {
            writes: effects,
            already: false,
            guard_pins: false,
        }
    }

    /// A plan that grants nothing and records the event `unclaimed`: a payment that names no
    /// account, or that must not be granted, listed for an operator to settle (`why`).
    fn unclaimed(&self, why: &str) -> Planned {
        Planned {
            writes: vec![record::unclaimed(self.id, &self.event.kind, self.now, why)],
            already: false,
            guard_pins: false,
        }
    }

    /// The user our metadata names, else the one the customer is linked to.
    async fn user_of(
        &self,
        named: Option<&str>,
        customer: Option<&CustomerId>,
    ) -> Result<UserId, FulfilError> {
        if let Some(user) = named.and_then(|u| UserId::parse(u).ok()) {
            return Ok(user);
        }
        let customer = customer.ok_or(FulfilError::NoUser)?;
        customer::user_of(self.services.table.as_ref(), customer)
            .await?
            .ok_or(FulfilError::NoUser)
    }

    /// The plan our metadata names, else the one whose configured price was bought.
    fn plan_of<'p>(
        &self,
        named: Option<&str>,
        mut prices: impl Iterator<Item = &'p str>,
    ) -> Option<&Plan> {
        let catalog = &self.services.config.catalog;
        named
            .and_then(|p| PlanId::parse(p).ok())
            .and_then(|p| catalog.get(&p))
            .or_else(|| prices.find_map(|price| catalog.by_price(price)))
    }
}

impl Ctx<'_> {
    /// A subscription's plan: the plan of its current price (a plan switched in the Billing
    /// Portal changes it). Our metadata's `plan_id` counts only for a plan that has no
    /// configured price to check it by (the local demo, a Payment Link plan): a price that
    /// is not the catalog's, on a plan that has one, is a price we do not sell, and gives
    /// no plan (the tier still follows the status; no plan credits).
    fn plan_of_prices<'p>(
        &self,
        prices: impl Iterator<Item = &'p str>,
        named: Option<&str>,
    ) -> Option<&Plan> {
        let catalog = &self.services.config.catalog;
        let mut prices = prices;
        prices.find_map(|price| catalog.by_price(price)).or_else(|| {
            let plan = self.plan_of(named, std::iter::empty())?;
            if plan.price_id.is_some() {
                tracing::warn!(plan = %plan.id, "the subscription's price is not in the catalog; no plan applied");
                return None;
            }
            Some(plan)
        })
    }
}

/// The most Stripe calls one event's plan makes one after another: a refund or dispute of a
/// payment with no ledger yet asks for its invoice payment, then its PaymentIntent
/// (`refund::unlinked`); a subscription event fetches the subscription, a Payment Link sale
/// its line items (one each).
pub const MAX_STRIPE_CALLS_PER_EVENT: u32 = 2;

/// What the store's reads and the transaction of one event may take at worst (the SDK's
/// own timeouts and retries included), on top of its Stripe calls.
pub const STORE_ALLOWANCE: Duration = Duration::from_secs(2);

/// The longest one event can take with Stripe answering as slowly as `policy` allows:
/// the worker starts no event with less time than this left before its deadline.
pub fn worst_case_event(policy: &crate::stripe::api::RetryPolicy) -> Duration {
    policy.worst_case() * MAX_STRIPE_CALLS_PER_EVENT + STORE_ALLOWANCE
}

/// A message on its last receive is recorded `failed` before the worker works on it: if
/// the invocation is then stopped (a timeout, a crash), its message goes to the dead-letter
/// queue and the record already says so, never `queued`; if the event applies, its
/// transaction records it `processed` over this.
pub async fn last_receive(services: &Services, raw: &str, receive_count: u32) {
    if receive_count < crate::queue::MAX_RECEIVES {
        return;
    }
    let Ok(event) = serde_json::from_str::<Event>(raw) else {
        return;
    };
    let Ok(id) = EventId::parse(&event.id) else {
        return;
    };
    let reason = format!(
        "receive {receive_count} of {}, the last: the worker was stopped (timed out) before the \
         event was applied, and its message went to the dead-letter queue (replay it)",
        crate::queue::MAX_RECEIVES
    );
    let now = services.clock.now();
    if let Err(e) = services
        .table
        .apply(record::failed(&id, &event.kind, now, &reason))
        .await
        && !matches!(e, StoreError::ConditionFailed)
    {
        tracing::warn!(event_id = %id, error = %e, "could not pre-record the last receive");
    }
}

/// A message handed back unprocessed because the batch ran out of time, on its last
/// receive: it goes to the dead-letter queue, and its record says so.
pub async fn out_of_time(services: &Services, raw: &str, receive_count: u32) {
    if receive_count < crate::queue::MAX_RECEIVES {
        return;
    }
    let Ok(event) = serde_json::from_str::<Event>(raw) else {
        return;
    };
    let Ok(id) = EventId::parse(&event.id) else {
        return;
    };
    let reason = format!(
        "not started on its last receive ({receive_count}): the batch's time budget ran out \
         (Stripe slow); its message went to the dead-letter queue (replay it)"
    );
    let now = services.clock.now();
    if let Err(e) = services
        .table
        .apply(record::failed(&id, &event.kind, now, &reason))
        .await
        && !matches!(e, StoreError::ConditionFailed)
    {
        tracing::warn!(event_id = %id, error = %e, "could not record the event out of time");
    }
}

/// Processes one event given as its raw JSON (a queue message or a stored payload).
pub async fn process(services: &Services, raw: &str) -> Result<Outcome, FulfilError> {
    let event: Event = serde_json::from_str(raw).map_err(FulfilError::invalid)?;
    let id = EventId::parse(&event.id).map_err(FulfilError::invalid)?;
    let span = record::span(&event);
    let result = tracing::Instrument::instrument(apply(services, &id, &event), span.clone()).await;
    let _entered = span.enter();
    match &result {
        Ok(outcome) => {
            if *outcome == Outcome::Applied {
                let latency_ms = (services.clock.now().timestamp() - event.created).max(0) * 1000;
                services
                    .metrics
                    .record(Metric::FulfilmentLatency { millis: latency_ms });
            }
            tracing::info!(?outcome, "event fulfilled");
        }
        Err(err) => {
            services.metrics.record(Metric::EventFailed);
            mark_failed(services, &id, &event.kind, err).await;
        }
    }
    result
}

async fn apply(services: &Services, id: &EventId, event: &Event) -> Result<Outcome, FulfilError> {
    // A conflict means another transaction touched the same items at the same instant:
    // plan again from fresh reads, a few times, before handing the message back to SQS.
    let mut attempt = 0;
    loop {
        let ctx = Ctx {
            services,
            id,
            event,
            now: services.clock.now(),
        };
        let plan = plan(&ctx).await?;
        if plan.already {
            let done = record::processed(id, &event.kind, ctx.now);
            services.table.apply(done).await?;
            return Ok(Outcome::AlreadyApplied);
        }
        let pins = plan.guard_pins;
        // Every entitlement change carries its outbox write (the entitlement events).
        let writes = entitlements::stamped(plan.writes, id.as_str(), ctx.now);
        match services.table.transact(writes).await {
            Ok(()) => return Ok(Outcome::Applied),
            Err(StoreError::TransactionConditionFailed(failed)) if failed.contains(&0) && !pins => {
                let done = record::processed(id, &event.kind, ctx.now);
                services.table.apply(done).await?;
                return Ok(Outcome::AlreadyApplied);
            }
            Err(StoreError::Conflict) | Err(StoreError::TransactionConditionFailed(_))
                if attempt < 3 =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A message handed back unprocessed because an earlier event of its FIFO group failed
/// in the same batch. SQS counts that receive too, so after [`MAX_RECEIVES`] it moves the
/// message to the dead-letter queue although its event never failed itself: on that last
/// receive the event is recorded `failed`, naming the event that held it back, so the
/// admin list shows it and replay brings it back (docs/api.md: no record stays `queued` once
/// its message has left the queue). Earlier receives change nothing: the message returns.
///
/// The worker marks what it holds back (rather than a consumer on the dead-letter queue)
/// because it is the one place that knows why, sees the receive count, and already has
/// the table; a timed-out batch, which the worker never sees end, is left to the alarm on
/// the dead-letter queue's depth.
///
/// [`MAX_RECEIVES`]: crate::queue::MAX_RECEIVES
pub async fn held_back(services: &Services, raw: &str, receive_count: u32, behind: &str) {
    if receive_count < crate::queue::MAX_RECEIVES {
        return;
    }
    let Ok(event) = serde_json::from_str::<Event>(raw) else {
        return;
    };
    let Ok(id) = EventId::parse(&event.id) else {
        return;
    };
    let reason = format!(
        "held back behind failing event {behind} of its group for {receive_count} receives; \
         its message went to the dead-letter queue (replay it once that event is fixed)"
    );
    let now = services.clock.now();
    let write = record::failed(&id, &event.kind, now, &reason);
    if let Err(e) = services.table.apply(write).await
        && !matches!(e, StoreError::ConditionFailed)
    {
        tracing::warn!(event_id = %id, error = %e, "could not record the held-back event");
    }
    tracing::error!(event_id = %id, behind, "event held back into the dead-letter queue");
}

/// The event id of a message body, for naming it; the message id when it is not an event.
pub fn event_id_of(raw: &str, message_id: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<Id>(raw)
        .map(|e| e.id)
        .unwrap_or_else(|_| message_id.to_owned())
}

async fn mark_failed(services: &Services, id: &EventId, kind: &str, err: &FulfilError) {
    let now = services.clock.now();
    let write = record::failed(id, kind, now, &err.to_string());
    if let Err(e) = services.table.apply(write).await
        && !matches!(e, StoreError::ConditionFailed)
    {
        tracing::warn!(event_id = %id, error = %e, "could not record the failure");
    }
    tracing::error!(event_id = %id, event_type = kind, error = %err, "fulfilment failed");
}

/// The event's plan, by family: every type the project acts on has its arm (no wildcard,
/// so a new [`EventType`] does not compile until it is handled here); the meter reports the
/// stack owes are its own kind, not Stripe's.
async fn plan(ctx: &Ctx<'_>) -> Result<Planned, FulfilError> {
    let event = ctx.event;
    if event.kind == meter_report::KIND {
        return meter::report(ctx, &event.object().map_err(FulfilError::invalid)?).await;
    }
    let kind =
        EventType::parse(&event.kind).ok_or_else(|| FulfilError::Unhandled(event.kind.clone()))?;
    match kind {
        EventType::CheckoutCompleted | EventType::CheckoutAsyncSucceeded => {
            checkout::completed(ctx, kind, event.object().map_err(FulfilError::invalid)?).await
        }
        EventType::CheckoutAsyncFailed | EventType::CheckoutExpired => {
            checkout::ended(ctx, kind, &event.object().map_err(FulfilError::invalid)?)
        }
        EventType::SubscriptionCreated
        | EventType::SubscriptionUpdated
        | EventType::SubscriptionDeleted
        | EventType::SubscriptionPaused
        | EventType::SubscriptionResumed => {
            subscription::changed(ctx, kind, &event.object().map_err(FulfilError::invalid)?).await
        }
        EventType::InvoicePaid
        | EventType::InvoicePaymentFailed
        | EventType::InvoiceActionRequired => {
            invoice::changed(ctx, kind, &event.object().map_err(FulfilError::invalid)?).await
        }
        EventType::ChargeRefunded => {
            refund::refunded(ctx, &event.object().map_err(FulfilError::invalid)?).await
        }
        EventType::DisputeCreated
        | EventType::DisputeClosed
        | EventType::DisputeFundsReinstated
        | EventType::DisputeFundsWithdrawn => {
            refund::disputed(ctx, kind, &event.object().map_err(FulfilError::invalid)?).await
        }
        EventType::PaymentIntentSucceeded => {
            payment_intent::succeeded(ctx, &event.object().map_err(FulfilError::invalid)?).await
        }
        EventType::PaymentIntentFailed => {
            payment_intent::failed(ctx, &event.object().map_err(FulfilError::invalid)?).await
        }
        EventType::EntitlementSummaryUpdated => {
            stripe_features::summary_updated(ctx, &event.object().map_err(FulfilError::invalid)?)
                .await
        }
    }
}
