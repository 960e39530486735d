//! The core's use-case tests, one binary: each module is a family of billing rules run
//! against the in-memory adapters (the store's contract suite proves them equal to DynamoDB's;
//! the Stripe port's, in `shared/testing/tests/stripe`, the in-memory Stripe equal to what the
//! HTTP adapter meets). No test here starts an HTTP server.

mod account;
mod admin;
mod bad_faith;
mod bootstrap;
mod checkout;
mod commands;
mod crash_points;
mod entitlement_events;
mod features;
mod fulfilment;
mod intake;
mod meter_keys;
mod meters;
mod money_property;
mod operator_view;
mod purchases;
mod reconcile;
mod referral;
mod reliability;
mod renewals_refunds;
mod replay_every_type;
mod stripe_fixtures;
mod stripe_versions;
mod times;
mod usage;
