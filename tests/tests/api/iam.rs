//! IAM as deployed: every function's AWS calls in the local stack are held to its own
//! statements in template.yaml (infra/local/src/iam.rs, iam_proxy.rs). A copy of the
//! template with one needed statement removed makes the flow that needs it fail here with
//! an access denial, as it would in AWS; the template itself lets the same flow through.

use billing_testing::{checkout_session, event, fake_stripe};
use black_box_tests::TestApp;
use local_stack::provision::TEMPLATE;
use serde_json::json;

/// template.yaml with the statement `sid` taken out of `function`'s policy.
fn without_statement(function: &str, sid: &str) -> String {
    let start = TEMPLATE
        .find(&format!("\n  {function}:\n"))
        .unwrap_or_else(|| panic!("template.yaml has no {function}"));
    let marker = format!("- Sid: {sid}\n");
    let at = start
        + TEMPLATE[start..]
            .find(&marker)
            .unwrap_or_else(|| panic!("{function} has no statement {sid}"));
    let line_start = TEMPLATE[..at].rfind('\n').unwrap() + 1;
    let indent = at - line_start;
    // The statement runs until the next line indented as much as its dash, or less.
    let mut end = at + marker.len();
    for line in TEMPLATE[end..].split_inclusive('\n') {
        let depth = line.len() - line.trim_start().len();
        if !line.trim().is_empty() && !line.trim_start().starts_with('#') && depth <= indent {
            break;
        }
        end += line.len();
    }
    let copy = format!("{}{}", &TEMPLATE[..line_start], &TEMPLATE[end..]);
    assert!(!copy[start..].contains(&marker), "{sid} was removed");
    copy
}

async fn subscription_stack(template: Option<String>) -> (TestApp, wiremock::MockServer) {
    let stripe = fake_stripe("cs_test_iam_sub").await;
    let app = TestApp::spawn_from(
        &[
            ("STRIPE_SECRET_KEY", "sk_test_iam"),
            ("STRIPE_API_BASE", &stripe.uri()),
            ("STRIPE_PRICE_PRO_MONTHLY", "price_iam_monthly"),
        ],
        template,
    )
    .await;
    (app, stripe)
}

async fn subscribe(app: &TestApp, user: &str) -> (u16, serde_json::Value) {
    let r = app
        .http
        .post(app.url("/api/billing/checkout"))
        .bearer_auth(app.token(user))
        .header("idempotency-key", format!("iam-{user}"))
        .json(&json!({ "plan_id": "pro_monthly" }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_subscription_checkout_passes_under_the_templates_own_policy() {
    let (app, _stripe) = subscription_stack(None).await;
    let (status, body) = subscribe(&app, "iam_ok").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session_id"], "cs_test_iam_sub");
    assert!(
        app.stack.iam.denials().is_empty(),
        "{:?}",
        app.stack.iam.denials()
    );
}

/// The defect this enforcement was built to show: without the statement that lets the
/// checkout function write USER#<id>/OPEN_SUB_CHECKOUT (main's policy before issue 21), the
/// subscription checkout's transaction is refused for that one item, and the caller gets 503.
#[tokio::test]
async fn without_its_open_checkout_statement_a_subscription_checkout_is_denied_as_aws_denies_it() {
    let template = without_statement("CheckoutFunction", "MarkOpenSubscriptionCheckout");
    let (app, _stripe) = subscription_stack(Some(template)).await;
    let (status, body) = subscribe(&app, "iam_denied").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
    let denials = app.stack.iam.denials();
    for d in &denials {
        println!("{d}");
    }
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert_eq!(denials[0].function, "CheckoutFunction");
    assert_eq!(denials[0].action, "dynamodb:UpdateItem");
    assert_eq!(
        denials[0].leading_keys.as_deref(),
        Some(&["USER#iam_denied".to_owned()][..])
    );
}

#[tokio::test]
async fn without_its_queue_statement_the_webhook_answers_503_and_stripe_retries() {
    let app = TestApp::spawn_from(
        &[],
        Some(without_statement("WebhookFunction", "EnqueueFulfilment")),
    )
    .await;
    let delivery = event(
        "evt_iam_no_queue",
        "checkout.session.completed",
        chrono::Utc::now().timestamp(),
        checkout_session("cs_test_iam_q", "iam_q", "credits_starter", "paid", 1000),
    );
    let reply = app.deliver(&delivery).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    let denials = app.stack.iam.denials();
    assert!(
        denials
            .iter()
            .any(|d| d.function == "WebhookFunction" && d.action == "sqs:SendMessage"),
        "{denials:?}"
    );
}

#[tokio::test]
async fn without_its_account_statement_the_worker_cannot_fulfil_and_the_denial_names_the_account_key()
 {
    let app = TestApp::spawn_from(
        &[],
        Some(without_statement("WorkerFunction", "FulfilAccounts")),
    )
    .await;
    let delivery = event(
        "evt_iam_no_worker",
        "checkout.session.completed",
        chrono::Utc::now().timestamp(),
        checkout_session("cs_test_iam_w", "iam_w", "credits_starter", "paid", 1000),
    );
    assert_eq!(app.deliver(&delivery).await.status, 200);
    app.eventually("the worker is denied", || async {
        app.stack
            .iam
            .denials()
            .iter()
            .any(|d| d.function == "WorkerFunction" && d.action.starts_with("dynamodb:"))
    })
    .await;
    assert_eq!(app.account("iam_w").await["credits"]["balance"], 0);
}

/// A purchase for `user` delivered through the webhook (queue, worker, stream).
async fn buy(app: &TestApp, user: &str) {
    let delivery = event(
        &format!("evt_iam_{user}"),
        "checkout.session.completed",
        chrono::Utc::now().timestamp(),
        checkout_session(
            &format!("cs_test_{user}"),
            user,
            "credits_starter",
            "paid",
            1000,
        ),
    );
    assert_eq!(app.deliver(&delivery).await.status, 200);
}

#[tokio::test]
async fn without_its_publish_statement_the_publisher_is_denied_put_events_on_the_bus() {
    let app = TestApp::spawn_from(
        &[],
        Some(without_statement(
            "PublisherFunction",
            "PublishEntitlementEvents",
        )),
    )
    .await;
    buy(&app, "iam_pub").await;
    app.eventually("the publisher is denied", || async {
        app.stack.iam.denials().iter().any(|d| {
            d.function == "PublisherFunction"
                && d.action == "events:PutEvents"
                && d.resource.contains(":event-bus/")
        })
    })
    .await;
}

#[tokio::test]
async fn without_its_stream_statement_the_publisher_cannot_read_the_tables_stream() {
    let app = TestApp::spawn_from(
        &[],
        Some(without_statement("PublisherFunction", "ReadTableStream")),
    )
    .await;
    app.eventually("the stream read is denied", || async {
        app.stack.iam.denials().iter().any(|d| {
            d.function == "PublisherFunction"
                && d.action.starts_with("dynamodb:")
                && d.resource.contains("/stream/")
        })
    })
    .await;
}
