//! Payments that need the customer, black-box: a renewal that needs 3-D Secure
//! (`invoice.payment_action_required`) and a declined one (`invoice.payment_failed`) show on
//! the account with their kind and the hosted invoice page, in the event shapes of API
//! versions before and after 2025-03-31, until the invoice's `invoice.paid` clears them.

use billing_testing::{event, old_event, subscription_invoice};
use black_box_tests::TestApp;
use serde_json::Value;

const T0: i64 = 1_795_000_000;

fn renewal(user: &str) -> Value {
    let mut inv = subscription_invoice(
        &format!("in_sca_{user}"),
        &format!("sub_sca_{user}"),
        user,
        "price_unconfigured",
        "subscription_cycle",
        0,
    );
    inv["status"] = "open".into();
    inv["hosted_invoice_url"] = format!("https://invoice.stripe.com/i/acct_1/{user}").into();
    inv
}

#[tokio::test]
async fn an_action_required_renewal_shows_where_to_confirm_in_both_api_shapes_until_it_is_paid() {
    let app = TestApp::spawn().await;
    for old in [false, true] {
        let user = if old { "sca_old" } else { "sca_new" };
        let mut inv = renewal(user);
        let shape = |id: &str, kind: &str, at: i64, object: &Value| match old {
            true => old_event(id, kind, at, object),
            false => event(id, kind, at, object.clone()),
        };
        let sent = app
            .deliver(&shape(
                &format!("evt_sca_{user}"),
                "invoice.payment_action_required",
                T0,
                &inv,
            ))
            .await;
        assert_eq!(
            sent.body["status"], "queued",
            "a handled type: {}",
            sent.body
        );
        app.eventually("the problem shows", || async {
            app.account(user).await["payment_problem"]["kind"] == "action_required"
        })
        .await;
        let problem = app.account(user).await["payment_problem"].clone();
        assert_eq!(
            problem["invoice_id"],
            format!("in_sca_{user}"),
            "old: {old}"
        );
        assert_eq!(
            problem["invoice_url"],
            format!("https://invoice.stripe.com/i/acct_1/{user}"),
            "old: {old}"
        );
        // The customer confirms on that page: the invoice is paid, the problem is gone.
        inv["status"] = "paid".into();
        inv["amount_paid"] = 2900.into();
        app.deliver(&shape(
            &format!("evt_sca_paid_{user}"),
            "invoice.paid",
            T0 + 1,
            &inv,
        ))
        .await;
        app.eventually("the problem clears", || async {
            app.account(user).await["payment_problem"].is_null()
        })
        .await;
    }
}

#[tokio::test]
async fn a_declined_renewal_shows_payment_failed_with_the_invoice_page() {
    let app = TestApp::spawn().await;
    let inv = renewal("declined");
    app.deliver(&event("evt_declined", "invoice.payment_failed", T0, inv))
        .await;
    app.eventually("the problem shows", || async {
        app.account("declined").await["payment_problem"]["kind"] == "payment_failed"
    })
    .await;
    let problem = app.account("declined").await["payment_problem"].clone();
    assert_eq!(
        problem["invoice_url"],
        "https://invoice.stripe.com/i/acct_1/declined"
    );
}
