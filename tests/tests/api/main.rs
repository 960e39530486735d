//! Black-box tests of the HTTP API, one binary: each module drives a real local stack
//! (moto and every function behind the HTTP front) like a client would.

mod admin;
mod bad_faith;
mod bad_faith_round_two;
mod cancel_resume;
mod catalog;
mod checkout;
mod dead_letters;
mod entitlement_events;
mod entitlements;
mod feature_lifecycle;
mod features;
mod gates;
mod hardening;
mod iam;
mod invoices_preview;
mod meters;
mod operator_view;
mod payment_problems;
mod purchases;
mod sdk_peers;
mod seats;
mod secrets;
mod service;
mod spine;
mod stripe_as_it_is;
mod switch;
mod tax;
mod timeouts;
mod two_tabs;
mod usage;
