//! Signatures against Stripe's official SDKs as independent peers: the Node SDK signs and
//! we verify (directly and through the stack); we sign and the Python SDK verifies.
//! Tampering with the body, the timestamp or the secret fails on both sides.

use billing_core::stripe::signature::{self, SignatureError, TOLERANCE_SECS};
use billing_testing::{TEST_WEBHOOK_SECRET, checkout_session, event};
use black_box_tests::TestApp;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn secrets(list: &[&str]) -> Vec<billing_core::app::config::SecretString> {
    list.iter()
        .map(|s| billing_core::app::config::SecretString::from(s.to_string()))
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(mut cmd: Command, stdin: &str) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the peer runs (infra/bootstrap.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stderr.is_empty() || out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

/// The Node SDK's `webhooks.generateTestHeaderString`.
fn node_sign(secret: &str, timestamp: i64, payload: &str) -> String {
    let peers = root().join("infra/peers");
    assert!(
        peers.join("node_modules/stripe").exists(),
        "run infra/bootstrap.sh to install the Node peer"
    );
    let mut cmd = Command::new("node");
    cmd.arg(peers.join("sign.mjs"))
        .arg(secret)
        .arg(timestamp.to_string());
    let (ok, header) = run(cmd, payload);
    assert!(ok, "node signing failed");
    header
}

/// The Python SDK's `Webhook.construct_event`.
fn python_accepts(secret: &str, header: &str, payload: &str) -> bool {
    let mut cmd = Command::new(root().join(".venv/bin/python"));
    cmd.arg(root().join("infra/peers/verify.py"))
        .arg(secret)
        .arg(header);
    run(cmd, payload).0
}

fn payload(id: &str) -> String {
    event(
        id,
        "checkout.session.completed",
        1_795_000_000,
        checkout_session("cs_test_peer", "peer", "uses_20", "paid", 500),
    )
    .to_string()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[test]
fn a_signature_made_by_the_node_sdk_verifies() {
    let body = payload("evt_peer_1");
    let header = node_sign("whsec_peer", now(), &body);
    assert_eq!(
        signature::verify(
            &header,
            body.as_bytes(),
            &secrets(&["whsec_peer"]),
            now(),
            TOLERANCE_SECS
        ),
        Ok(())
    );
}

#[test]
fn a_node_signature_fails_for_a_tampered_body_timestamp_or_secret() {
    let body = payload("evt_peer_2");
    let t = now();
    let header = node_sign("whsec_peer", t, &body);
    let keys = secrets(&["whsec_peer"]);
    let tampered_body = body.replace("\"amount_total\":500", "\"amount_total\":5");
    assert_ne!(tampered_body, body);
    assert_eq!(
        signature::verify(&header, tampered_body.as_bytes(), &keys, t, TOLERANCE_SECS),
        Err(SignatureError::BadSignature)
    );
    let moved = header.replace(&format!("t={t}"), &format!("t={}", t - 1));
    assert_eq!(
        signature::verify(&moved, body.as_bytes(), &keys, t, TOLERANCE_SECS),
        Err(SignatureError::BadSignature)
    );
    assert_eq!(
        signature::verify(
            &header,
            body.as_bytes(),
            &secrets(&["whsec_other"]),
            t,
            TOLERANCE_SECS
        ),
        Err(SignatureError::BadSignature)
    );
    let old = node_sign("whsec_peer", t - 400, &body);
    assert_eq!(
        signature::verify(&old, body.as_bytes(), &keys, t, TOLERANCE_SECS),
        Err(SignatureError::BadTimestamp)
    );
}

#[test]
fn our_signature_verifies_in_the_python_sdk_and_tampering_fails_there() {
    let body = payload("evt_peer_3");
    let header = signature::sign("whsec_peer", now(), body.as_bytes());
    assert!(python_accepts("whsec_peer", &header, &body));
    assert!(!python_accepts(
        "whsec_peer",
        &header,
        &body.replace("peer", "p33r")
    ));
    assert!(!python_accepts("whsec_other", &header, &body));
    let stale = signature::sign("whsec_peer", now() - 400, body.as_bytes());
    assert!(!python_accepts("whsec_peer", &stale, &body));
}

#[tokio::test]
async fn the_stack_accepts_an_event_signed_by_the_node_sdk_with_a_rotated_secret() {
    let app = TestApp::spawn_with(&[(
        "STRIPE_WEBHOOK_SECRET",
        &format!("whsec_old_one,{TEST_WEBHOOK_SECRET}"),
    )])
    .await;
    let body = payload("evt_peer_4");
    let header = node_sign(TEST_WEBHOOK_SECRET, now(), &body);
    let r = app.post_webhook(&body, Some(&header)).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("queued")));
    let old_secret = node_sign("whsec_old_one", now(), &payload("evt_peer_5"));
    assert_eq!(
        app.post_webhook(&payload("evt_peer_5"), Some(&old_secret))
            .await
            .body["status"],
        "queued"
    );
}
