//! Features: what plans grant, checks, tracks with allowances that reset lazily, overage,
//! concurrency and keys; and accounts written before features existed.

use billing_core::app::Services;
use billing_core::domain::clock::ManualClock;
use billing_core::domain::entitlement::SubscriptionStatus;
use billing_core::domain::ids::{PlanId, SubscriptionId, UserId};
use billing_core::store::records::subscription::{SubscriptionState, apply_if_newer};
use billing_core::store::records::{self, profile};
use billing_core::store::{Item, Key, Op, Value};
use billing_core::usecases::account::account;
use billing_core::usecases::features::{self, FeatureError, TrackRequest, Tracked};
use billing_core::usecases::usage::{self, UsageRequest};
use billing_testing::memory_services;
use chrono::{TimeZone, Utc};
use std::sync::Arc;

fn user(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

/// 2026-12-05T00:00:00Z.
const T0: i64 = 1_796_428_800;
const DAY: i64 = 86_400;

fn services_at(t: i64) -> (Services, ManualClock) {
    let clock = ManualClock::at(Utc.timestamp_opt(t, 0).unwrap());
    let s = Services {
        clock: Arc::new(clock.clone()),
        ..memory_services(&[("FREE_USES", "3")])
    };
    (s, clock)
}

async fn subscribe(s: &Services, u: &str, plan: &str, period_end: i64, version: &str) {
    subscribe_seats(s, u, plan, period_end, version, 1).await;
}

async fn subscribe_seats(
    s: &Services,
    u: &str,
    plan: &str,
    period_end: i64,
    version: &str,
    seats: i64,
) {
    let plan = PlanId::parse(plan).unwrap();
    let state = SubscriptionState {
        status: SubscriptionStatus::Active,
        version: version.into(),
        plan: Some(&plan),
        cancel_at_period_end: false,
        current_period_end: Some(period_end),
        cancel_at: None,
        trial_end: None,
        quantity: seats,
    };
    let sub = SubscriptionId::parse("sub_1").unwrap();
    s.table
        .apply(apply_if_newer(&user(u), &sub, state, Utc::now()))
        .await
        .unwrap();
}

async fn give_credits(s: &Services, u: &str, n: i64) {
    let key = profile::key(&user(u));
    s.table
        .update(&key, vec![Op::add("credits", n)], None)
        .await
        .unwrap();
}

async fn track(
    s: &Services,
    u: &str,
    f: &str,
    units: i64,
    key: &str,
) -> Result<Tracked, FeatureError> {
    let req = TrackRequest {
        units,
        idempotency_key: key.into(),
    };
    features::track(s, &user(u), f, req).await
}

#[tokio::test]
async fn a_free_account_has_the_free_entrys_features_and_a_plan_adds_its_own() {
    let (s, _) = services_at(T0);
    let free = features::entitlements(&s, &user("fay")).await.unwrap();
    let f = &free.features;
    assert!(!f["priority_support"].enabled);
    assert_eq!(f["projects"].limit, Some(1));
    assert_eq!(
        (f["ai_messages"].included, f["ai_messages"].remaining),
        (Some(20), Some(20))
    );
    assert_eq!(
        f["usage"].included,
        Some(3),
        "FREE_USES is the free entry's usage"
    );
    assert_eq!(f["usage"].resets_at, None, "free uses never reset");
    assert_eq!(
        f["exports"].resets_at.as_deref(),
        Some("2027-01-01T00:00:00Z")
    );

    subscribe(&s, "fay", "pro_monthly", T0 + 20 * DAY, "v1").await;
    let pro = features::entitlements(&s, &user("fay"))
        .await
        .unwrap()
        .features;
    assert!(pro["priority_support"].enabled);
    assert_eq!(pro["projects"].limit, Some(10));
    assert_eq!(pro["ai_messages"].included, Some(1000));
    assert_eq!(
        pro["ai_messages"].resets_at.as_deref(),
        Some("2026-12-25T00:00:00Z"),
        "a period feature resets when Stripe's period ends"
    );
    assert_eq!(
        pro["usage"].included,
        Some(3),
        "a plan keeps what it does not name"
    );
}

#[tokio::test]
async fn a_check_answers_each_kind_and_names_the_upgrade_that_allows_it() {
    let (s, _) = services_at(T0);
    let u = user("gil");
    let support = features::check(&s, &u, "priority_support", 1)
        .await
        .unwrap();
    assert!(!support.allowed);
    assert_eq!(
        support.upgrade.unwrap().plan_id,
        "pro_monthly",
        "the cheapest plan with it"
    );
    let projects = features::check(&s, &u, "projects", 2).await.unwrap();
    assert!(!projects.allowed);
    assert!(
        features::check(&s, &u, "projects", 1)
            .await
            .unwrap()
            .allowed
    );
    let messages = features::check(&s, &u, "ai_messages", 21).await.unwrap();
    assert!(!messages.allowed);
    assert_eq!(messages.upgrade.unwrap().plan_id, "pro_monthly");
    assert!(matches!(
        features::check(&s, &u, "teleport", 1).await,
        Err(FeatureError::UnknownFeature(_))
    ));
    // A check consumes nothing.
    assert_eq!(
        features::entitlements(&s, &u).await.unwrap().features["ai_messages"].used,
        Some(0)
    );
}

#[tokio::test]
async fn a_blocked_allowance_allows_exactly_what_is_included_then_402_with_an_upgrade() {
    let (s, _) = services_at(T0);
    let first = track(&s, "hal", "ai_messages", 15, "a").await.unwrap();
    assert_eq!(first.feature.remaining, Some(5));
    let over = track(&s, "hal", "ai_messages", 6, "b").await.unwrap_err();
    let FeatureError::PaymentRequired { hints, .. } = over else {
        panic!("{over:?}")
    };
    let (upgrade, purchase) = (hints.upgrade, hints.purchase);
    assert_eq!(upgrade.unwrap().plan_id, "pro_monthly");
    assert_eq!(purchase, None, "credits do not buy a blocked feature");
    assert_eq!(
        track(&s, "hal", "ai_messages", 5, "c")
            .await
            .unwrap()
            .feature
            .remaining,
        Some(0)
    );
    assert!(matches!(
        track(&s, "hal", "projects", 1, "d").await,
        Err(FeatureError::NotMetered(_))
    ));
}

#[tokio::test]
async fn units_beyond_a_credits_allowance_spend_credits_at_the_features_cost() {
    let (s, _) = services_at(T0);
    give_credits(&s, "ivy", 25).await;
    // exports: 2 included a month for free accounts, then 10 credits an export.
    let t = track(&s, "ivy", "exports", 4, "k").await.unwrap();
    assert_eq!((t.feature.remaining, t.credits.balance), (Some(0), 5));
    let short = track(&s, "ivy", "exports", 1, "k2").await.unwrap_err();
    let FeatureError::PaymentRequired { hints, .. } = short else {
        panic!("{short:?}")
    };
    let purchase = hints.purchase;
    assert_eq!(
        purchase.unwrap().plan_id,
        "uses_20",
        "a pack covering 5 more credits"
    );
    assert_eq!(account(&s, &user("ivy")).await.unwrap().credits.balance, 5);
}

#[tokio::test]
async fn a_month_allowance_starts_again_in_the_next_month_without_a_scheduler() {
    let (s, clock) = services_at(T0);
    track(&s, "jo", "exports", 2, "dec").await.unwrap();
    assert!(track(&s, "jo", "exports", 1, "dec2").await.is_err());
    clock.advance_secs(27 * DAY); // 2027-01-01
    let jan = track(&s, "jo", "exports", 1, "jan").await.unwrap();
    assert_eq!(
        (jan.feature.used, jan.feature.resets_at.as_deref()),
        (Some(1), Some("2027-02-01T00:00:00Z"))
    );
}

#[tokio::test]
async fn a_period_allowance_resets_when_stripes_period_moves_and_survives_a_plan_switch() {
    let (s, _) = services_at(T0);
    subscribe(&s, "kim", "pro_monthly", T0 + 10 * DAY, "v1").await;
    track(&s, "kim", "ai_messages", 990, "a").await.unwrap();
    // Switched to the per-seat team plan mid-period: its allowance (the free entry's 20) at
    // once, the units still used.
    subscribe(&s, "kim", "team_monthly", T0 + 10 * DAY, "v2").await;
    let e = features::entitlements(&s, &user("kim")).await.unwrap();
    let m = &e.features["ai_messages"];
    assert_eq!(
        (m.included, m.used, m.remaining),
        (Some(20), Some(990), Some(0))
    );
    assert!(track(&s, "kim", "ai_messages", 1, "on-team").await.is_err());
    // Back to pro: 10 left of 1,000, so 11 is refused.
    subscribe(&s, "kim", "pro_monthly", T0 + 10 * DAY, "v3").await;
    assert!(track(&s, "kim", "ai_messages", 11, "b").await.is_err());
    // Stripe renews the subscription: a new period, a fresh allowance.
    subscribe(&s, "kim", "pro_monthly", T0 + 40 * DAY, "v4").await;
    let renewed = track(&s, "kim", "ai_messages", 11, "c").await.unwrap();
    assert_eq!(
        (renewed.feature.used, renewed.feature.remaining),
        (Some(11), Some(989))
    );
}

#[tokio::test]
async fn concurrent_tracks_never_overdraw_and_the_same_key_tracks_once() {
    let (s, _) = services_at(T0);
    let s = Arc::new(s);
    let calls = (0..40).map(|i| {
        let s = s.clone();
        tokio::spawn(
            async move { track(&s, "lee", "ai_messages", 1, &format!("k{}", i % 30)).await },
        )
    });
    let mut ok = 0;
    for call in calls.collect::<Vec<_>>() {
        ok += usize::from(call.await.unwrap().is_ok());
    }
    // 30 distinct keys against 20 included: 20 tracked, and the ten repeated keys answer
    // their first answer (allowed or not).
    let e = features::entitlements(&s, &user("lee")).await.unwrap();
    assert_eq!(e.features["ai_messages"].used, Some(20));
    assert!((20..=30).contains(&ok), "{ok}");
    let again = track(&s, "lee", "ai_messages", 1, "k0").await;
    let first = track(&s, "lee", "ai_messages", 1, "k0").await;
    assert_eq!(format!("{again:?}"), format!("{first:?}"));
    assert_eq!(
        features::entitlements(&s, &user("lee"))
            .await
            .unwrap()
            .features["ai_messages"]
            .used,
        Some(20)
    );
}

/// A profile and a usage record as the release before features wrote them.
async fn write_as_before_features(s: &Services, u: &str) {
    let item: Item = [
        ("pk", Value::S(format!("USER#{u}"))),
        ("sk", Value::S("PROFILE".into())),
        ("credits", Value::N(17)),
        ("free_uses_used", Value::N(2)),
        ("created_at", Value::S("2026-11-01T00:00:00Z".into())),
        ("updated_at", Value::S("2026-11-02T00:00:00Z".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let key = profile::key(&user(u));
    s.table.put(&key, item, None).await.unwrap();
    let usage: Item = [
        ("pk", Value::S(format!("USER#{u}"))),
        ("sk", Value::S("USAGE#old-call".into())),
        ("units", Value::N(2)),
        ("free_uses_remaining", Value::N(1)),
        ("balance", Value::N(17)),
        ("at", Value::S("2026-11-02T00:00:00Z".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let usage_key = Key::new(format!("USER#{u}"), "USAGE#old-call");
    assert_eq!(usage_key, records::usage::key(&user(u), "old-call"));
    s.table.put(&usage_key, usage, None).await.unwrap();
}

#[tokio::test]
async fn an_account_written_before_features_reads_and_meters_the_same() {
    let (s, _) = services_at(T0);
    write_as_before_features(&s, "max").await;
    let a = account(&s, &user("max")).await.unwrap();
    assert_eq!((a.credits.free_uses_remaining, a.credits.balance), (1, 17));
    let usage_feature = &features::entitlements(&s, &user("max"))
        .await
        .unwrap()
        .features["usage"];
    assert_eq!(
        (usage_feature.used, usage_feature.remaining),
        (Some(2), Some(1))
    );
    // The old key answers what it answered then, on both routes, and consumes nothing.
    let old = UsageRequest {
        units: 2,
        idempotency_key: "old-call".into(),
    };
    let replay = usage::consume(&s, &user("max"), old).await.unwrap();
    assert_eq!((replay.free_uses_remaining, replay.balance), (1, 17));
    let via_feature = track(&s, "max", "usage", 2, "old-call").await.unwrap();
    assert_eq!(via_feature.credits.balance, 17);
    // A new call: the last free use, then a credit, exactly as before.
    let next = UsageRequest {
        units: 2,
        idempotency_key: "new-call".into(),
    };
    let now = usage::consume(&s, &user("max"), next).await.unwrap();
    assert_eq!((now.free_uses_remaining, now.balance), (0, 16));
    let check = usage::check(&s, &user("max"), 16).await.unwrap();
    assert!(check.allowed);
    assert!(!usage::check(&s, &user("max"), 17).await.unwrap().allowed);
}

fn ops() -> billing_core::inbound::http::Identity {
    billing_testing::operator("ops_1")
}

fn feature_grant(
    u: &str,
    feature: &str,
    units: Option<i64>,
) -> billing_core::usecases::admin::GrantRequest {
    billing_core::usecases::admin::GrantRequest {
        user: billing_core::domain::ids::UserId::parse(u).unwrap(),
        days: None,
        credits: None,
        reason: "support ticket 9".into(),
        idempotency_key: None,
        feature: Some(feature.into()),
        units,
    }
}

#[tokio::test]
async fn an_operator_turns_a_boolean_feature_on_and_grants_units_of_a_metered_one_for_this_period()
{
    use billing_core::usecases::admin::grant;
    let (s, clock) = services_at(T0);
    track(&s, "ned", "ai_messages", 20, "all").await.unwrap();
    let g = grant(&s, &ops(), feature_grant("ned", "ai_messages", Some(5)))
        .await
        .unwrap();
    assert_eq!(
        (g.feature.as_deref(), g.units),
        (Some("ai_messages"), Some(5))
    );
    grant(&s, &ops(), feature_grant("ned", "priority_support", None))
        .await
        .unwrap();
    let f = features::entitlements(&s, &user("ned"))
        .await
        .unwrap()
        .features;
    assert!(f["priority_support"].enabled);
    assert_eq!(f["ai_messages"].remaining, Some(5));
    track(&s, "ned", "ai_messages", 5, "granted").await.unwrap();
    // The granted units were for that period; the next month starts from the allowance.
    clock.advance_secs(27 * DAY);
    let next = features::entitlements(&s, &user("ned"))
        .await
        .unwrap()
        .features;
    assert_eq!(next["ai_messages"].remaining, Some(20));
    // A limit is the plan's, and units of a boolean or of nothing are refused.
    for bad in [
        feature_grant("ned", "projects", Some(5)),
        feature_grant("ned", "priority_support", Some(1)),
        feature_grant("ned", "teleport", None),
        feature_grant("ned", "ai_messages", Some(0)),
    ] {
        assert!(grant(&s, &ops(), bad).await.is_err());
    }
}

#[tokio::test]
async fn a_boolean_feature_follows_stripes_latest_entitlement_summary_in_any_delivery_order() {
    use billing_core::usecases::fulfil;
    use billing_testing::{checkout_session, event, stripe_entitlement_summary};
    let (s, _) = services_at(T0);
    // A pack bought through Checkout links the customer cus_oda to oda.
    let buy = event(
        "evt_oda_buy",
        "checkout.session.completed",
        T0,
        checkout_session("cs_test_oda", "oda", "uses_20", "paid", 500),
    );
    fulfil::process(&s, &buy.to_string()).await.unwrap();
    let summary = |id: &str, at: i64, keys: &[&str]| {
        event(
            id,
            "entitlements.active_entitlement_summary.updated",
            at,
            stripe_entitlement_summary("cus_oda", keys),
        )
        .to_string()
    };
    let on = || async {
        features::entitlements(&s, &user("oda"))
            .await
            .unwrap()
            .features["priority_support"]
            .enabled
    };
    assert!(!on().await);
    fulfil::process(&s, &summary("evt_sum_2", T0 + 20, &[]))
        .await
        .unwrap();
    // The earlier summary, delivered late, changes nothing.
    fulfil::process(&s, &summary("evt_sum_1", T0 + 10, &["priority_support"]))
        .await
        .unwrap();
    assert!(!on().await);
    fulfil::process(&s, &summary("evt_sum_3", T0 + 30, &["priority_support"]))
        .await
        .unwrap();
    assert!(on().await, "on while Stripe's summary lists it");
    let check = features::check(&s, &user("oda"), "priority_support", 1)
        .await
        .unwrap();
    assert!(check.allowed);
}

#[tokio::test]
async fn a_per_seat_limit_is_the_plans_figure_times_the_seats() {
    let (s, _) = services_at(T0);
    subscribe_seats(&s, "pat", "team_monthly", T0 + 10 * DAY, "v1", 4).await;
    let f = features::entitlements(&s, &user("pat"))
        .await
        .unwrap()
        .features;
    assert_eq!(
        (f["workspaces"].limit, f["projects"].limit),
        (Some(20), Some(1)),
        "5 workspaces a seat; projects as free accounts have them"
    );
    assert!(
        features::check(&s, &user("pat"), "workspaces", 20)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !features::check(&s, &user("pat"), "workspaces", 21)
            .await
            .unwrap()
            .allowed
    );
}
