//! The catalog's unit tests (kept apart so catalog.rs stays within the layout's size rule).

use super::*;

fn default_catalog() -> Catalog {
    Catalog::parse(DEFAULT_CATALOG, |_| None).unwrap()
}

#[test]
fn the_default_catalog_holds_the_seed_offers() {
    let catalog = default_catalog();
    let expect = [
        ("deposit_500", 50000, Grant::Purchase),
        ("hourly_1h", 12500, Grant::Purchase),
        (
            "retainer",
            99900,
            Grant::Tier {
                credits_per_period: 0,
            },
        ),
        ("credits_starter", 1000, Grant::Credits(1000)),
        ("credits_basic", 4500, Grant::Credits(5500)),
        ("credits_pro", 10000, Grant::Credits(13500)),
        ("credits_business", 22500, Grant::Credits(35000)),
        ("credits_enterprise", 70000, Grant::Credits(120000)),
        ("uses_20", 500, Grant::Credits(20)),
    ];
    for (id, amount, grant) in expect {
        let plan = catalog.get(&PlanId::parse(id).unwrap()).unwrap();
        assert_eq!((plan.amount, plan.grant()), (amount, grant), "{id}");
    }
    let annual = catalog.get(&PlanId::parse("pro_annual").unwrap()).unwrap();
    assert_eq!(
        (annual.trial_days, annual.interval.as_deref()),
        (Some(14), Some("year"))
    );
    assert!(
        catalog
            .get(&PlanId::parse("pro_monthly").unwrap())
            .is_some()
    );
}

#[test]
fn price_ids_and_links_come_from_the_environment() {
    let catalog = Catalog::parse(DEFAULT_CATALOG, |name| match name {
        "STRIPE_PRICE_CREDITS_STARTER" => Some("price_123".into()),
        "STRIPE_LINK_DEPOSIT_500" => Some("https://buy.stripe.com/x".into()),
        "STRIPE_PRICE_HOURLY_1H" => Some("  ".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        catalog.by_price("price_123").unwrap().id.as_str(),
        "credits_starter"
    );
    let deposit = catalog.get(&PlanId::parse("deposit_500").unwrap()).unwrap();
    assert_eq!(
        deposit.payment_link.as_deref(),
        Some("https://buy.stripe.com/x")
    );
    let hourly = catalog.get(&PlanId::parse("hourly_1h").unwrap()).unwrap();
    assert_eq!(hourly.price_id, None, "a blank variable configures nothing");
}

#[test]
fn a_catalog_with_a_duplicate_or_inconsistent_plan_is_refused() {
    let dup = r#"{"plans":[{"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd"},
                           {"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd"}]}"#;
    assert!(matches!(
        Catalog::parse(dup, |_| None),
        Err(CatalogError::Duplicate(_))
    ));
    let no_interval =
        r#"{"plans":[{"id":"a","name":"A","mode":"subscription","amount":1,"currency":"usd"}]}"#;
    assert!(matches!(
        Catalog::parse(no_interval, |_| None),
        Err(CatalogError::Inconsistent(..))
    ));
    let typo = r#"{"plans":[{"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd","credit":5}]}"#;
    assert!(matches!(
        Catalog::parse(typo, |_| None),
        Err(CatalogError::Invalid(_))
    ));
}

#[test]
fn a_per_seat_plan_takes_one_to_its_max_quantity_of_seats_and_scales_its_limits() {
    let catalog = default_catalog();
    let team = catalog
        .get(&PlanId::parse("team_monthly").unwrap())
        .unwrap();
    assert!(team.per_seat);
    assert_eq!(team.check_seats(1), Ok(()));
    assert_eq!(team.check_seats(team.max_seats()), Ok(()));
    for bad in [0, -1, team.max_seats() + 1] {
        assert!(
            matches!(team.check_seats(bad), Err(SeatsError::OutOfRange { .. })),
            "{bad}"
        );
    }
    assert_eq!(team.seat_limit(10, 3), 30);
    let pro = catalog.get(&PlanId::parse("pro_monthly").unwrap()).unwrap();
    assert_eq!(pro.check_seats(1), Ok(()));
    assert!(matches!(pro.check_seats(2), Err(SeatsError::NotPerSeat(_))));
    assert_eq!(
        pro.seat_limit(10, 3),
        10,
        "a plan not per seat keeps its limit"
    );
}

#[test]
fn seats_belong_to_subscriptions_and_max_quantity_to_per_seat_plans() {
    for plan in [
        r#"{"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd","per_seat":true}"#,
        r#"{"id":"a","name":"A","mode":"subscription","interval":"month","amount":1,"currency":"usd","max_quantity":5}"#,
        r#"{"id":"a","name":"A","mode":"subscription","interval":"month","amount":1,"currency":"usd","per_seat":true,"max_quantity":0}"#,
    ] {
        let json = format!(r#"{{"plans":[{plan}]}}"#);
        assert!(
            matches!(
                Catalog::parse(&json, |_| None),
                Err(CatalogError::Inconsistent(..))
            ),
            "{plan}"
        );
    }
}

#[test]
fn credit_packs_take_no_promotion_codes_unless_their_entry_says_so() {
    let catalog = default_catalog();
    let allowed = |id: &str| {
        catalog
            .get(&PlanId::parse(id).unwrap())
            .unwrap()
            .promotion_codes_allowed()
    };
    assert!(!allowed("uses_20") && !allowed("credits_starter"));
    assert!(allowed("pro_monthly") && allowed("pro_annual"));
    let unset = r#"{"plans":[{"id":"p","name":"P","mode":"payment","amount":1,"currency":"usd","credits":5},
                             {"id":"s","name":"S","mode":"subscription","amount":1,"currency":"usd","interval":"month"},
                             {"id":"q","name":"Q","mode":"payment","amount":1,"currency":"usd","credits":5,"allow_promotion_codes":true}]}"#;
    let c = Catalog::parse(unset, |_| None).unwrap();
    let of = |id: &str| {
        c.get(&PlanId::parse(id).unwrap())
            .unwrap()
            .promotion_codes_allowed()
    };
    assert_eq!((of("p"), of("s"), of("q")), (false, true, true));
    let not_a_flag = r#"{"plans":[{"id":"p","name":"P","mode":"payment","amount":1,"currency":"usd","allow_promotion_codes":"yes"}]}"#;
    assert!(matches!(
        Catalog::parse(not_a_flag, |_| None),
        Err(CatalogError::Invalid(_))
    ));
}

#[test]
fn the_cheapest_covering_pack_is_suggested() {
    let catalog = default_catalog();
    assert_eq!(catalog.cheapest_covering(1).unwrap().id.as_str(), "uses_20");
    assert_eq!(
        catalog.cheapest_covering(21).unwrap().id.as_str(),
        "credits_starter"
    );
    assert_eq!(
        catalog.cheapest_covering(6000).unwrap().id.as_str(),
        "credits_pro"
    );
    assert!(catalog.cheapest_covering(1_000_000).is_none());
}

#[test]
fn the_default_catalog_shows_each_kind_of_feature_and_the_free_entry() {
    let catalog = default_catalog();
    let kinds: std::collections::BTreeSet<&str> =
        catalog.features().map(|f| f.kind.type_name()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["boolean", "limit", "metered"]
    );
    let free = catalog.grants(None);
    assert_eq!(free[&FeatureId::usage()], FeatureGrant::Included(3));
    let pro = catalog.grants(Some("pro_monthly"));
    assert_eq!(
        pro[&FeatureId::parse("priority_support").unwrap()],
        FeatureGrant::On
    );
    assert_eq!(
        pro[&FeatureId::usage()],
        FeatureGrant::Included(3),
        "kept from free"
    );
}

#[test]
fn a_catalog_with_a_bad_feature_is_refused_saying_why() {
    let plan = r#"{"id":"p","name":"P","mode":"subscription","amount":1,"currency":"usd","interval":"month","features":{"seats_x":3}}"#;
    let unknown = format!(r#"{{"plans":[{plan}]}}"#);
    let why = Catalog::parse(&unknown, |_| None).unwrap_err().to_string();
    assert!(why.contains("plan p grants feature \"seats_x\""), "{why}");
    let no_reset = r#"{"features":{"m":{"type":"metered"}},"plans":[]}"#;
    let why = Catalog::parse(no_reset, |_| None).unwrap_err().to_string();
    assert!(
        why.contains("feature m: a metered feature needs reset"),
        "{why}"
    );
}

const METER: &str =
    r#""m":{"type":"metered","reset":"period","overage":"stripe_meter","event_name":"m_calls"}"#;

fn metered_plan(extra: &str) -> String {
    format!(
        r#"{{"features":{{{METER}}},"plans":[{{"id":"p","name":"P","mode":"subscription","amount":1,"currency":"usd","interval":"month","features":{{"m":100}}{extra}}}]}}"#
    )
}

#[test]
fn a_stripe_meter_feature_is_taken_with_the_metered_price_of_the_plan_that_grants_it() {
    let catalog = Catalog::parse(&metered_plan(r#","metered_price":"0.1""#), |name| {
        (name == "STRIPE_PRICE_P_METERED").then(|| "price_meter".to_owned())
    })
    .unwrap();
    let plan = catalog.get(&PlanId::parse("p").unwrap()).unwrap();
    assert_eq!(plan.metered_feature, FeatureId::parse("m"));
    assert_eq!(plan.metered_price_id.as_deref(), Some("price_meter"));
    assert!(!plan.checkout_ready(), "its own price is not configured");
    assert!(catalog.names("p_metered"), "STRIPE_PRICES may name it");

    let default = default_catalog();
    let api = default.get(&PlanId::parse("api_monthly").unwrap()).unwrap();
    assert_eq!(api.metered_feature, FeatureId::parse("calls"));
    let calls = default.feature("calls").unwrap();
    assert_eq!(
        calls.kind,
        FeatureKind::Metered {
            reset: Reset::Period,
            overage: Overage::StripeMeter {
                event_name: "api_calls".into()
            }
        }
    );
}

#[test]
fn a_stripe_meter_feature_without_an_event_name_does_not_start_saying_why() {
    let no_name =
        metered_plan(r#","metered_price":"0.1""#).replace(r#","event_name":"m_calls""#, "");
    let why = Catalog::parse(&no_name, |_| None).unwrap_err().to_string();
    assert_eq!(
        why,
        "feature m: a stripe_meter overage needs the meter's event_name"
    );
}

#[test]
fn a_plan_granting_a_stripe_meter_feature_without_a_metered_price_does_not_start_saying_why() {
    let why = Catalog::parse(&metered_plan(""), |_| None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        why,
        "plan p: grants m, a stripe_meter feature, but names no metered_price to bill it"
    );
    for (extra, says) in [
        (r#","metered_price":"0""#, "must be a positive decimal"),
        (r#","metered_price":"1.""#, "must be a positive decimal"),
        (r#","metered_price":"-1""#, "must be a positive decimal"),
    ] {
        let why = Catalog::parse(&metered_plan(extra), |_| None)
            .unwrap_err()
            .to_string();
        assert!(why.contains(says), "{extra}: {why}");
    }
    let pack = r#"{"features":{"m":{"type":"metered","reset":"period","overage":"block"}},"plans":[{"id":"q","name":"Q","mode":"subscription","amount":1,"currency":"usd","interval":"month","metered_price":"1"}]}"#;
    let why = Catalog::parse(pack, |_| None).unwrap_err().to_string();
    assert!(why.contains("grants no stripe_meter feature"), "{why}");
}

#[test]
fn a_catalog_without_features_keeps_the_seeds_free_uses() {
    let seedless = r#"{"plans":[{"id":"a","name":"A","mode":"payment","amount":1,"currency":"usd","credits":5}]}"#;
    let catalog = Catalog::parse(seedless, |_| None)
        .unwrap()
        .with_free_uses(7);
    assert_eq!(
        catalog.grants(None)[&FeatureId::usage()],
        FeatureGrant::Included(7)
    );
}
