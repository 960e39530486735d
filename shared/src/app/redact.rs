//! Keeps secrets out of what we store and log: anything shaped like a Stripe secret key,
//! restricted key or webhook secret is replaced, and stored payloads are capped in size.

use regex::Regex;
use std::sync::OnceLock;

pub const REDACTED: &str = "[REDACTED]";
/// The most of an event payload kept in its record (a DynamoDB item holds 400 KB). A larger
/// event is kept without its payload; a replay then fetches it from Stripe.
pub const MAX_STORED_PAYLOAD: usize = 64 * 1024;

fn pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"\b(?:sk_live|sk_test|rk_live|rk_test|rk|whsec)_[A-Za-z0-9]+")
            .expect("the pattern is valid")
    })
}

/// `text` with every secret-shaped token replaced by `[REDACTED]`.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    pattern().replace_all(text, REDACTED)
}

/// The payload as it may be stored: redacted, or `None` when it is over the cap.
pub fn storable_payload(raw: &str) -> Option<String> {
    (raw.len() <= MAX_STORED_PAYLOAD).then(|| redact(raw).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_shaped_tokens_are_redacted_and_the_rest_kept() {
        let text = r#"{"a":"sk_live_51Habc","b":"sk_test_xyz9","c":"rk_live_q1","d":"whsec_abc123","e":"rk_9z","id":"cs_test_keep","f":"task_keep"}"#;
        let out = redact(text);
        for secret in [
            "sk_live_51Habc",
            "sk_test_xyz9",
            "rk_live_q1",
            "whsec_abc123",
            "rk_9z",
        ] {
            assert!(!out.contains(secret), "{secret} survived: {out}");
        }
        assert!(
            out.contains("cs_test_keep") && out.contains("task_keep"),
            "{out}"
        );
        assert_eq!(out.matches(REDACTED).count(), 5);
    }

    #[test]
    fn a_payload_over_the_cap_is_not_stored() {
        assert_eq!(storable_payload(&"x".repeat(MAX_STORED_PAYLOAD + 1)), None);
        assert_eq!(
            storable_payload("{\"k\":\"whsec_1\"}").as_deref(),
            Some("{\"k\":\"[REDACTED]\"}")
        );
    }
}
