//! The metrics port: what the billing rules count, in the project's terms. The use cases
//! say what happened ([`Metric`]); an adapter decides how it is published: CloudWatch's
//! Embedded Metric Format on stdout in a Lambda ([`emf`]), a list in memory for tests
//! ([`memory`]).

pub mod emf;
pub mod memory;

/// One thing worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Webhook intake accepted a verified event (new, duplicate or ignored).
    EventReceived,
    /// ... and it was a redelivery of one already taken.
    EventDuplicate,
    /// ... and it is of a type the project does not act on.
    EventIgnored,
    /// A verified event of the other mode than the key's, answered 503 so Stripe retries it.
    EventModeMismatch,
    /// The worker could not apply an event (it goes back to the queue).
    EventFailed,
    /// The worker applied an event this long after Stripe created it.
    FulfilmentLatency { millis: i64 },
    /// A metered call was refused for want of payment.
    UsageDenied,
}

/// Where metrics go. Recording never fails and never blocks a billing rule.
pub trait Metrics: Send + Sync {
    fn record(&self, metric: Metric);
}
