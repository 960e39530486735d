//! Payment Link references only this stack can make (`docs/api.md`, "Rules that hold
//! against a customer acting in bad faith"): the `client_reference_id` the checkout route
//! puts in a Payment Link's URL names the caller's account and carries an HMAC-SHA256 of
//! it under the stack's reference secret, so a buyer who edits the URL names no account.
//!
//! Shape: [`SIGNED_PREFIX`], 24 characters of tag (the first 18 bytes of the HMAC, in
//! unpadded base64url), then the user id in unpadded base64url ([`UserId::to_reference`]'s
//! encoding): at most 3 + 24 + 171 = 198 characters of `[A-Za-z0-9_-]`, within what Stripe
//! keeps of a `client_reference_id` (200). The tag is fixed-length, so no separator is needed.
//!
//! Several secrets may verify (rotation, as with the webhook secret: the new one is added after
//! the old one; the last one signs, every one verifies), compared
//! in constant time (`Mac::verify_truncated_left`).

use crate::domain::ids::UserId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Marks a signed reference (version 1).
pub const SIGNED_PREFIX: &str = "s1_";
/// Bytes of the HMAC kept: 144 bits, 24 base64url characters.
const TAG_BYTES: usize = 18;
const TAG_CHARS: usize = 24;
/// What the HMAC covers besides the id: a tag for another purpose never verifies here.
const CONTEXT: &[u8] = b"billing client_reference_id v1\n";

fn mac(secret: &SecretString, user: &UserId) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    m.update(CONTEXT);
    m.update(user.as_str().as_bytes());
    m
}

/// The reference the checkout route hands out for `user`, signed with the last secret;
/// `None` when the stack has no reference secret (then Payment Links are unavailable).
pub fn sign(user: &UserId, secrets: &[SecretString]) -> Option<String> {
    let secret = secrets.last()?;
    let tag = mac(secret, user).finalize().into_bytes();
    Some(format!(
        "{SIGNED_PREFIX}{}{}",
        URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]),
        URL_SAFE_NO_PAD.encode(user.as_str().as_bytes())
    ))
}

/// The account a reference names, when one of `secrets` signed it; `None` for anything
/// else: a forged or altered tag, an unsigned reference (plain ids and the `u64_` encoding
/// handed out before references were signed), or no secret at all.
pub fn verify(reference: &str, secrets: &[SecretString]) -> Option<UserId> {
    let rest = reference.strip_prefix(SIGNED_PREFIX)?;
    if rest.len() <= TAG_CHARS || !rest.is_char_boundary(TAG_CHARS) {
        return None;
    }
    let (tag, encoded) = rest.split_at(TAG_CHARS);
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let user = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    let user = UserId::parse(&user).ok()?;
    secrets
        .iter()
        .any(|s| mac(s, &user).verify_truncated_left(&tag).is_ok())
        .then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[&str]) -> Vec<SecretString> {
        values.iter().map(|v| SecretString::from(*v)).collect()
    }

    #[test]
    fn a_reference_the_stack_signed_names_its_account_and_fits_stripes_alphabet() {
        let keys = secrets(&["ref_secret_one"]);
        let longest = UserId::parse(&"a|".repeat(64)).unwrap();
        for user in [UserId::parse("auth0|abc").unwrap(), longest] {
            let r = sign(&user, &keys).unwrap();
            assert!(r.len() <= 200, "{}", r.len());
            assert!(
                r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            );
            assert_eq!(verify(&r, &keys), Some(user));
        }
    }

    #[test]
    fn a_forged_altered_or_unsigned_reference_names_no_account() {
        let keys = secrets(&["ref_secret_one"]);
        let victim = UserId::parse("auth0|victim").unwrap();
        let other = UserId::parse("auth0|other").unwrap();
        let signed = sign(&other, &keys).unwrap();
        // The attacker's own tag on the victim's id.
        let swapped = format!(
            "{}{}",
            &signed[..SIGNED_PREFIX.len() + TAG_CHARS],
            URL_SAFE_NO_PAD.encode(victim.as_str())
        );
        let foreign = sign(&victim, &secrets(&["another_stack"])).unwrap();
        for r in [
            swapped.as_str(),
            foreign.as_str(),
            &victim.to_reference(),
            "auth0|victim",
            "s1_",
            "s1_short",
        ] {
            assert_eq!(verify(r, &keys), None, "{r}");
        }
        assert_eq!(verify(&signed, &[]), None, "no secret verifies nothing");
    }

    #[test]
    fn during_a_rotation_the_new_secret_signs_and_both_verify() {
        let user = UserId::parse("u1").unwrap();
        let old = sign(&user, &secrets(&["old"])).unwrap();
        let rotated = secrets(&["old", "new"]);
        assert_eq!(verify(&old, &rotated), Some(user.clone()));
        let new = sign(&user, &rotated).unwrap();
        assert_eq!(verify(&new, &secrets(&["new"])), Some(user));
    }
}
