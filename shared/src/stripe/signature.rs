//! Stripe webhook signatures: `Stripe-Signature: t=…,v1=…[,v1=…]` over `"{t}.{body}"`.
//!
//! Accepts when any `v1` entry matches HMAC-SHA256 of any configured secret (rotation), the
//! comparison is constant time (`Mac::verify_slice`), and the timestamp is within the
//! tolerance on either side of now.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Stripe's own default tolerance, and the contract's.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is malformed")]
    BadHeader,
    #[error("the Stripe-Signature timestamp is outside the tolerance")]
    BadTimestamp,
    #[error("no signature matches the payload")]
    BadSignature,
}

/// The parts of a `Stripe-Signature` header we read; other schemes (`v0`) are skipped.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub v1: Vec<Vec<u8>>,
}

impl SignatureHeader {
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let mut timestamp = None;
        let mut v1 = Vec::new();
        for part in header.split(',') {
            let Some((key, value)) = part.trim().split_once('=') else {
                continue;
            };
            match key {
                "t" => {
                    timestamp = Some(
                        value
                            .parse::<i64>()
                            .map_err(|_| SignatureError::BadHeader)?,
                    )
                }
                // A v1 entry that is not hex cannot match; skip it rather than refuse the rest.
                "v1" => {
                    if let Ok(bytes) = hex::decode(value) {
                        v1.push(bytes);
                    }
                }
                _ => {}
            }
        }
        match timestamp {
            Some(timestamp) if !v1.is_empty() => Ok(Self { timestamp, v1 }),
            _ => Err(SignatureError::BadHeader),
        }
    }
}

fn mac_for(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Verifies `header` over `body` with any of `secrets`, at time `now` (Unix seconds).
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[SecretString],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let parsed = SignatureHeader::parse(header)?;
    let matched = secrets.iter().any(|secret| {
        parsed.v1.iter().any(|candidate| {
            mac_for(secret.expose_secret(), parsed.timestamp, body)
                .verify_slice(candidate)
                .is_ok()
        })
    });
    if !matched {
        return Err(SignatureError::BadSignature);
    }
    if (now - parsed.timestamp).abs() > tolerance_secs {
        return Err(SignatureError::BadTimestamp);
    }
    Ok(())
}

/// Signs `body` as Stripe does; used by the local send helper and by tests.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac_for(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn secrets(list: &[&str]) -> Vec<SecretString> {
        list.iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect()
    }

    #[test]
    fn a_payload_signed_with_the_secret_verifies() {
        let header = sign("whsec_a", NOW, b"{}");
        assert_eq!(
            verify(&header, b"{}", &secrets(&["whsec_a"]), NOW, TOLERANCE_SECS),
            Ok(())
        );
    }

    #[test]
    fn any_of_several_v1_entries_and_any_rotated_secret_may_match() {
        let good = sign("whsec_new", NOW, b"body");
        let good_v1 = good.split("v1=").nth(1).unwrap();
        let header = format!("t={NOW},v1={},v0=abc,v1={good_v1}", "00".repeat(32));
        let keys = secrets(&["whsec_old", "whsec_new"]);
        assert_eq!(verify(&header, b"body", &keys, NOW, TOLERANCE_SECS), Ok(()));
    }

    #[test]
    fn a_tampered_body_or_wrong_secret_fails() {
        let header = sign("whsec_a", NOW, b"{\"amount\":1}");
        assert_eq!(
            verify(
                &header,
                b"{\"amount\":2}",
                &secrets(&["whsec_a"]),
                NOW,
                TOLERANCE_SECS
            ),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify(
                &header,
                b"{\"amount\":1}",
                &secrets(&["whsec_b"]),
                NOW,
                TOLERANCE_SECS
            ),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_timestamp_fails_because_it_is_signed() {
        let header =
            sign("whsec_a", NOW, b"x").replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        assert_eq!(
            verify(&header, b"x", &secrets(&["whsec_a"]), NOW, TOLERANCE_SECS),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn timestamps_beyond_the_tolerance_fail_on_both_sides() {
        let keys = secrets(&["whsec_a"]);
        for skew in [-301, 301] {
            let header = sign("whsec_a", NOW + skew, b"x");
            assert_eq!(
                verify(&header, b"x", &keys, NOW, TOLERANCE_SECS),
                Err(SignatureError::BadTimestamp)
            );
        }
        for skew in [-300, 300] {
            let header = sign("whsec_a", NOW + skew, b"x");
            assert_eq!(verify(&header, b"x", &keys, NOW, TOLERANCE_SECS), Ok(()));
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let keys = secrets(&["whsec_a"]);
        for header in ["", "t=abc,v1=00", "v1=00", "t=1", "garbage", "t=1,v1=zz"] {
            assert_eq!(
                verify(header, b"x", &keys, NOW, TOLERANCE_SECS),
                Err(SignatureError::BadHeader),
                "{header}"
            );
        }
    }

    #[test]
    fn no_configured_secret_verifies_nothing() {
        let header = sign("whsec_a", NOW, b"x");
        assert_eq!(
            verify(&header, b"x", &[], NOW, TOLERANCE_SECS),
            Err(SignatureError::BadSignature)
        );
    }
}
