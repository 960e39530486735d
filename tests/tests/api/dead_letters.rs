//! Dead letters are seen (docs/api.md, "Fulfilment semantics"): against moto's real redrive, a
//! batch of several messages of one FIFO group whose first event fails. The worker hands
//! the rest back unprocessed, SQS counts each of those receives, and after five all of them
//! reach the dead-letter queue: every one of their events lists `failed` with a reason,
//! and replay brings the held-back ones back.

use billing_testing::{checkout_session, event};
use black_box_tests::TestApp;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const T0: i64 = 1_795_000_000;

fn sale(session: &str, plan: &str) -> Value {
    let mut s = checkout_session(session, "dl_user", plan, "paid", 1000);
    s["customer"] = json!("cus_dl_group");
    s
}

async fn failed_events(app: &TestApp, ops: &str) -> Vec<Value> {
    let r = app
        .get(
            "/api/billing/admin/events?state=failed&limit=200",
            Some(ops),
        )
        .await;
    r.body["events"].as_array().cloned().unwrap_or_default()
}

async fn dead_letter_depth(app: &TestApp) -> i64 {
    app.queue_depth("FulfilmentDeadLetterQueue", false).await
}

#[tokio::test]
async fn events_held_back_behind_a_failing_one_end_failed_with_a_reason_and_replay_brings_them_back()
 {
    let app = TestApp::spawn().await;
    let ops = local_stack::auth::token(
        black_box_tests::JWT_SECRET,
        "ops",
        None,
        "openid billing:admin",
        600,
    );
    // One group (the customer): a sale of a plan the catalog does not have, then two good ones.
    let events = [
        event(
            "evt_dl_bad",
            "checkout.session.completed",
            T0,
            sale("cs_test_dl_bad", "no_such_plan"),
        ),
        event(
            "evt_dl_b",
            "checkout.session.completed",
            T0 + 1,
            sale("cs_test_dl_b", "credits_starter"),
        ),
        event(
            "evt_dl_c",
            "checkout.session.completed",
            T0 + 2,
            sale("cs_test_dl_c", "credits_starter"),
        ),
    ];
    // Delivered while the worker is busy elsewhere, they reach it as one batch.
    app.stack.pause_worker(true);
    for e in &events {
        assert_eq!(app.deliver(e).await.body["status"], "queued");
    }
    app.stack.pause_worker(false);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let failed = failed_events(&app, &ops).await;
        let ids: Vec<&str> = failed.iter().filter_map(|e| e["id"].as_str()).collect();
        if ["evt_dl_bad", "evt_dl_b", "evt_dl_c"]
            .iter()
            .all(|i| ids.contains(i))
            && dead_letter_depth(&app).await == 3
        {
            for e in &failed {
                assert!(!e["error"].as_str().unwrap_or_default().is_empty(), "{e}");
            }
            let held = failed.iter().find(|e| e["id"] == "evt_dl_b").unwrap();
            assert!(
                held["error"].as_str().unwrap().contains("evt_dl_bad"),
                "the reason names the event that held it back: {held}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all dead-lettered: {failed:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(app.account("dl_user").await["credits"]["balance"], 0);
    for id in ["evt_dl_b", "evt_dl_c"] {
        let r = app
            .post_json(
                "/api/billing/admin/replay",
                Some(&ops),
                &json!({ "event_id": id }),
            )
            .await;
        assert_eq!(
            (r.status, r.body["state"].as_str()),
            (200, Some("processed")),
            "{}",
            r.body
        );
    }
    assert_eq!(app.account("dl_user").await["credits"]["balance"], 2000);
    let still: Vec<String> = failed_events(&app, &ops)
        .await
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        still,
        ["evt_dl_bad"],
        "only the event that is still broken stays failed"
    );
}
