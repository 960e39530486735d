//! Stripe secrets as deployed, against Secrets Manager in moto: the secret is kept for its
//! TTL, and a webhook secret rotated in Secrets Manager is accepted once the TTL has passed,
//! without a new cold start (the same `Services`, as one warm Lambda process keeps them).

use billing_core::app::Services;
use billing_core::app::config::KeyMode;
use billing_core::domain::ids::EventId;
use billing_core::inbound::http::ApiError;
use billing_core::store::records::event as event_record;
use billing_core::usecases::intake::{self, IntakeError, IntakeOutcome};
use billing_testing::{checkout_session, event, fixture, signature};
use black_box_tests::{TestApp, unique_prefix};
use local_stack::moto::shared_endpoint;
use local_stack::stack::moto_sdk_config;
use serde_json::json;
use std::collections::HashMap;

async fn deliver(
    services: &Services,
    secret: &str,
    id: &str,
) -> Result<IntakeOutcome, IntakeError> {
    let body = event(
        id,
        "plan.created",
        chrono::Utc::now().timestamp(),
        fixture("plan"),
    )
    .to_string();
    let header = signature(secret, chrono::Utc::now().timestamp(), &body);
    intake::receive(services, Some(&header), body.as_bytes()).await
}

/// A function's cold start as deployed: a Stripe secret `{key, webhook}` created in moto's
/// Secrets Manager, read by `Services` with a TTL of `ttl_secs`. Returns the services, the
/// manager (to rotate or remove the secret) and the secret's ARN.
async fn cold_start(
    app: &TestApp,
    webhook: &str,
    ttl_secs: u32,
) -> (Services, aws_sdk_secretsmanager::Client, String) {
    let sdk = moto_sdk_config(&shared_endpoint().unwrap()).await;
    let manager = aws_sdk_secretsmanager::Client::new(&sdk);
    let created = manager
        .create_secret()
        .name(format!("{}-stripe", unique_prefix()))
        .secret_string(stripe_secret(webhook))
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_owned();
    let deployed = &app.stack.services.config;
    let env = HashMap::from([
        ("BILLING_TABLE", deployed.table_name.clone()),
        (
            "FULFILMENT_QUEUE_URL",
            deployed.queue_url.clone().unwrap_or_default(),
        ),
        ("STRIPE_SECRETS_TTL_SECONDS", ttl_secs.to_string()),
    ]);
    let services = Services::with_secret_arn(sdk, &arn, |name| env.get(name).cloned())
        .await
        .expect("the secret is read at cold start");
    (services, manager, arn)
}

fn stripe_secret(webhook: &str) -> String {
    json!({ "STRIPE_SECRET_KEY": "sk_test_rotation", "STRIPE_WEBHOOK_SECRET": webhook }).to_string()
}

async fn rotate(manager: &aws_sdk_secretsmanager::Client, arn: &str, webhook: &str) {
    manager
        .put_secret_value()
        .secret_id(arn)
        .secret_string(stripe_secret(webhook))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn within_the_ttl_the_process_keeps_the_webhook_secret_it_read() {
    // A TTL no run outlasts: what is checked does not depend on how fast the machine is.
    let app = TestApp::spawn().await;
    let (services, manager, arn) = cold_start(&app, "whsec_before_rotation", 3600).await;
    assert!(services.config.stripe_configured());
    rotate(&manager, &arn, "whsec_after_rotation").await;
    assert!(matches!(
        deliver(&services, "whsec_after_rotation", "evt_rot_0").await,
        Err(IntakeError::InvalidSignature(_))
    ));
    assert_eq!(
        deliver(&services, "whsec_before_rotation", "evt_rot_1")
            .await
            .ok(),
        Some(IntakeOutcome::Ignored)
    );
}

#[tokio::test]
async fn a_rotated_webhook_secret_is_accepted_after_the_ttl_without_a_redeploy() {
    let app = TestApp::spawn().await;
    let (services, manager, arn) = cold_start(&app, "whsec_before_rotation", 1).await;
    assert!(
        deliver(&services, "whsec_before_rotation", "evt_rot_2")
            .await
            .is_ok()
    );
    rotate(&manager, &arn, "whsec_after_rotation").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // After the TTL, the rotated one, in the same process.
    assert_eq!(
        deliver(&services, "whsec_after_rotation", "evt_rot_3")
            .await
            .ok(),
        Some(IntakeOutcome::Ignored)
    );
    assert!(matches!(
        deliver(&services, "whsec_before_rotation", "evt_rot_4").await,
        Err(IntakeError::InvalidSignature(_))
    ));
}

#[tokio::test]
async fn an_unreadable_secret_fails_the_cold_start_with_a_message_naming_it() {
    let sdk = moto_sdk_config(&shared_endpoint().unwrap()).await;
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret";
    let err = Services::with_secret_arn(sdk, arn, |_| None)
        .await
        .err()
        .expect("no such secret");
    let message = err.to_string();
    assert!(message.contains("no-such-secret"), "{message}");
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_secrets_last_read() {
    let app = TestApp::spawn().await;
    let (services, manager, arn) = cold_start(&app, "whsec_kept", 1).await;
    // The secret becomes unreadable (deleted, as an outage or a bad policy change would).
    manager
        .delete_secret()
        .secret_id(&arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // The refresh fails; webhooks signed with the secret last read are still accepted.
    assert_eq!(
        deliver(&services, "whsec_kept", "evt_outage_1").await.ok(),
        Some(IntakeOutcome::Ignored)
    );
    assert!(matches!(
        deliver(&services, "whsec_other", "evt_outage_2").await,
        Err(IntakeError::InvalidSignature(_))
    ));
}

/// A paid checkout of `user` as a signed delivery of `mode` (`livemode`), at `id`.
fn sale(id: &str, user: &str, live: bool) -> String {
    let mut e = event(
        id,
        "checkout.session.completed",
        chrono::Utc::now().timestamp(),
        checkout_session(&format!("cs_{id}"), user, "credits_starter", "paid", 1000),
    );
    e["livemode"] = live.into();
    e.to_string()
}

async fn deliver_raw(
    services: &Services,
    secret: &str,
    body: &str,
) -> Result<IntakeOutcome, IntakeError> {
    let header = signature(secret, chrono::Utc::now().timestamp(), body);
    intake::receive(services, Some(&header), body.as_bytes()).await
}

#[tokio::test]
async fn a_key_rotated_from_test_to_live_switches_the_mode_and_a_live_event_sent_before_is_not_lost()
 {
    let app = TestApp::spawn().await;
    let (services, manager, arn) = cold_start(&app, "whsec_mode", 1).await;
    assert_eq!(services.key_mode().await, Some(KeyMode::Test));
    let user = format!("mode_{}", unique_prefix().replace('-', "_"));
    let live_sale = sale(&format!("evt_live_{user}"), &user, true);

    // A live event while the key is a test key: not 2xx (Stripe retries it), nothing recorded.
    let early = deliver_raw(&services, "whsec_mode", &live_sale).await;
    assert!(
        matches!(early, Err(IntakeError::ModeMismatch { event_live: true })),
        "{early:?}"
    );
    let answer = ApiError::from(early.unwrap_err());
    assert_eq!(answer.status, 503, "Stripe retries a 5xx");
    let id = EventId::parse(&format!("evt_live_{user}")).unwrap();
    assert!(
        event_record::load(services.table.as_ref(), &id)
            .await
            .unwrap()
            .is_none(),
        "nothing recorded that would make the retry a duplicate or reconcile skip it"
    );

    // The secret is rotated to a live key (the same webhook secret: the endpoint is the same).
    manager
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(
            json!({ "STRIPE_SECRET_KEY": "sk_live_rotation", "STRIPE_WEBHOOK_SECRET": "whsec_mode" })
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(services.key_mode().await, Some(KeyMode::Live));

    // Stripe's retry of the same event is taken now, and fulfilled.
    assert_eq!(
        deliver_raw(&services, "whsec_mode", &live_sale).await.ok(),
        Some(IntakeOutcome::Queued)
    );
    app.eventually("the live sale is fulfilled", || async {
        app.account(&user).await["credits"]["balance"] == 1000
    })
    .await;
    // And a test event is the one of the other mode now.
    let test_sale = sale(&format!("evt_test_{user}"), &user, false);
    assert!(matches!(
        deliver_raw(&services, "whsec_mode", &test_sale).await,
        Err(IntakeError::ModeMismatch { event_live: false })
    ));
}
