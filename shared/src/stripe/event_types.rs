//! The Stripe event types this project acts on ([`EventType`]). Intake records every other
//! type as `ignored`; the worker dispatches over the enum with no wildcard arm
//! (`usecases::fulfil`), so a type added here does not compile until it is handled there.
//! The handled list ([`HANDLED`]: the webhook endpoint's `enabled_events`, the gates, the
//! reconcile's query) is derived from the enum, never kept by hand.

/// Declares [`EventType`] from one list of variants and Stripe's names, so that the enum,
/// [`EventType::ALL`] and [`EventType::as_str`] cannot disagree.
macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// A Stripe event type the worker acts on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $($(#[$doc])* $variant,)+
        }

        impl EventType {
            /// Every type, in the order the handled list names them.
            pub const ALL: &'static [EventType] = &[$(Self::$variant,)+];

            /// Stripe's name for the type.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }
    };
}

event_types! {
    CheckoutCompleted => "checkout.session.completed",
    CheckoutAsyncSucceeded => "checkout.session.async_payment_succeeded",
    CheckoutAsyncFailed => "checkout.session.async_payment_failed",
    CheckoutExpired => "checkout.session.expired",
    SubscriptionCreated => "customer.subscription.created",
    SubscriptionUpdated => "customer.subscription.updated",
    SubscriptionDeleted => "customer.subscription.deleted",
    SubscriptionPaused => "customer.subscription.paused",
    SubscriptionResumed => "customer.subscription.resumed",
    InvoicePaid => "invoice.paid",
    InvoicePaymentFailed => "invoice.payment_failed",
    /// A payment that needs the customer (3-D Secure): the hosted invoice page confirms it.
    InvoiceActionRequired => "invoice.payment_action_required",
    ChargeRefunded => "charge.refunded",
    DisputeCreated => "charge.dispute.created",
    DisputeClosed => "charge.dispute.closed",
    DisputeFundsReinstated => "charge.dispute.funds_reinstated",
    DisputeFundsWithdrawn => "charge.dispute.funds_withdrawn",
    PaymentIntentSucceeded => "payment_intent.succeeded",
    PaymentIntentFailed => "payment_intent.payment_failed",
    EntitlementSummaryUpdated => "entitlements.active_entitlement_summary.updated",
}

impl EventType {
    /// The type Stripe names `name`, if the project acts on it; any other name (a type we
    /// do not act on, one a newer API version added) is `None` and intake ignores it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stripe's names of every type the worker acts on, derived from [`EventType::ALL`].
pub const HANDLED: &[&str] = &{
    let mut names = [""; EventType::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = EventType::ALL[i].as_str();
        i += 1;
    }
    names
};

/// Whether the worker acts on events named `kind`.
pub fn handles(kind: &str) -> bool {
    EventType::parse(kind).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_handled_name_parses_to_the_type_that_prints_it() {
        for name in HANDLED {
            let parsed = EventType::parse(name).expect("a handled name parses");
            assert_eq!(parsed.as_str(), *name);
        }
    }

    #[test]
    fn every_type_is_in_the_handled_list_once() {
        let names: BTreeSet<&str> = HANDLED.iter().copied().collect();
        assert_eq!(names.len(), HANDLED.len(), "no name twice");
        for &kind in EventType::ALL {
            assert!(names.contains(kind.as_str()), "{kind} is handled");
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(HANDLED.len(), EventType::ALL.len());
    }

    #[test]
    fn a_type_the_project_does_not_act_on_is_not_handled() {
        for name in [
            "customer.created",
            "charge.succeeded",
            "",
            "INVOICE.PAID",
            "invoice.paid ",
        ] {
            assert_eq!(EventType::parse(name), None, "{name:?}");
            assert!(!handles(name));
        }
    }
}
