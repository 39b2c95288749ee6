//! Returning customers: a site vouches for its signed-in user by signing the user's id, name and
//! an expiry with HMAC-SHA256 under its queue's identity secret (the way Intercom's and
//! Ninchat's identity verification work). The secret is made by Jono, shown to the queue's
//! operators and kept in a table beside the log, never in it ([`store::identity_secrets`]). A join whose identity checks
//! out records a [`VerifiedCustomer`](domain::metadata::VerifiedCustomer) in its event; any other
//! identity is ignored, and the join's answer says why.
//!
//! The signed text, exactly (README, "Returning customers"):
//! `jono-identity-v1` LF user id LF name LF expiry, the expiry in decimal Unix seconds, the name
//! empty when there is none; the signature is the lowercase hex of HMAC-SHA256 keyed with the
//! secret's text (its UTF-8 bytes, as shown to operators). The user id and the name may hold no
//! control character, so no two identities sign the same text.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::metadata::ExternalUserId;
use domain::values::DisplayName;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use store::error::StoreError;
use store::identity_secrets as stored;
use store::log::Backend;
use uuid::Uuid;

pub use store::identity_secrets::Secret;

/// What the signed text begins with: the format's version.
pub const VERSION: &str = "jono-identity-v1";

/// A new secret for the queue (256 random bits, base64url), replacing any before it: identities
/// signed under the old one are no longer verified.
pub async fn rotate(backend: &Backend, queue_id: Uuid) -> Result<Secret, StoreError> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = format!("jis_{}", URL_SAFE_NO_PAD.encode(bytes));
    let now = Utc::now();
    let created_at = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    let secret = Secret { secret, created_at };
    stored::set(backend, queue_id, &secret).await?;
    Ok(secret)
}

pub async fn secret(backend: &Backend, queue_id: Uuid) -> Result<Option<Secret>, StoreError> {
    stored::get(backend, queue_id).await
}

/// Removes the queue's secret (identities are no longer verified); whether there was one.
pub async fn remove(backend: &Backend, queue_id: Uuid) -> Result<bool, StoreError> {
    stored::remove(backend, queue_id).await
}

/// The identity a site passes with a join, as it signed it.
#[derive(Debug, Clone, Deserialize)]
pub struct Claim {
    pub user_id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Unix seconds after which the identity is refused.
    pub expires: i64,
    #[serde(default)]
    pub signature: Option<String>,
}

/// What became of a join's identity: `verified`, or why it was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Verified,
    /// No signature came with it.
    Unsigned,
    /// Signed, but its `expires` has passed.
    Expired,
    /// The signature is not the queue's secret's for this text.
    BadSignature,
    /// Its user id or name cannot be taken (empty, too long, control characters).
    Invalid,
    /// The queue has no identity secret: nothing can be verified.
    NotEnabled,
}

/// The text a site signs (see the module's notes).
pub fn signed_text(user_id: &str, name: &str, expires: i64) -> String {
    format!("{VERSION}\n{user_id}\n{name}\n{expires}")
}

/// The signature of `text` under `secret`: lowercase hex of HMAC-SHA256.
pub fn sign(secret: &str, text: &str) -> String {
    let mut mac = hmac(secret);
    mac.update(text.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hmac(secret: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length")
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// Checks `claim` against the queue's `secret` at `now` (Unix seconds): the user's id and name
/// when it is verified, else why not. The signature is compared in constant time, and before
/// the expiry, so that an unsigned guess learns nothing of it.
pub fn verify(
    secret: Option<&str>,
    claim: &Claim,
    now: i64,
) -> Result<(ExternalUserId, Option<DisplayName>), Check> {
    let name = claim.name.as_deref().unwrap_or("");
    let Some(signature) = claim.signature.as_deref().filter(|s| !s.is_empty()) else {
        return Err(Check::Unsigned);
    };
    let user_id = ExternalUserId::parse(claim.user_id.clone()).map_err(|_| Check::Invalid)?;
    if name.chars().any(char::is_control) || name.chars().count() > DisplayName::MAX_CHARS {
        return Err(Check::Invalid);
    }
    let Some(secret) = secret else {
        return Err(Check::NotEnabled);
    };
    let signature = unhex(&signature.to_ascii_lowercase()).ok_or(Check::BadSignature)?;
    let mut mac = hmac(secret);
    mac.update(signed_text(user_id.as_str(), name, claim.expires).as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| Check::BadSignature)?;
    if claim.expires <= now {
        return Err(Check::Expired);
    }
    Ok((user_id, DisplayName::parse(name).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "jis_test-secret";

    fn claim(user_id: &str, name: &str, expires: i64, signature: Option<String>) -> Claim {
        Claim {
            user_id: user_id.into(),
            name: Some(name.into()),
            expires,
            signature,
        }
    }

    fn signed(user_id: &str, name: &str, expires: i64) -> Claim {
        let signature = sign(SECRET, &signed_text(user_id, name, expires));
        claim(user_id, name, expires, Some(signature))
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_documented_text() {
        // RFC 4231's test case 2 is HMAC-SHA256("Jefe", "what do ya want for nothing?").
        assert_eq!(
            sign("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            signed_text("42", "Ann", 1_700_000_000),
            "jono-identity-v1\n42\nAnn\n1700000000"
        );
    }

    #[test]
    fn a_signed_identity_before_its_expiry_is_verified() {
        let (user_id, name) = verify(Some(SECRET), &signed("42", "Ann Lee", 2_000), 1_000).unwrap();
        assert_eq!(user_id.as_str(), "42");
        assert_eq!(name.map(|n| n.as_str().to_owned()), Some("Ann Lee".into()));
        // Upper-case hex is the same signature.
        let mut upper = signed("42", "Ann Lee", 2_000);
        upper.signature = upper.signature.map(|s| s.to_uppercase());
        assert!(verify(Some(SECRET), &upper, 1_000).is_ok());
    }

    #[test]
    fn anything_else_is_ignored_and_says_why() {
        let check = |claim: &Claim| verify(Some(SECRET), claim, 1_000).unwrap_err();
        assert_eq!(check(&claim("42", "Ann", 2_000, None)), Check::Unsigned);
        assert_eq!(check(&signed("42", "Ann", 1_000)), Check::Expired);
        let mut other_name = signed("42", "Ann", 2_000);
        other_name.name = Some("Bob".into());
        assert_eq!(check(&other_name), Check::BadSignature);
        let mut later = signed("42", "Ann", 2_000);
        later.expires = 3_000;
        assert_eq!(check(&later), Check::BadSignature);
        let mut other_secret = signed("42", "Ann", 2_000);
        other_secret.signature = Some(sign("another", &signed_text("42", "Ann", 2_000)));
        assert_eq!(check(&other_secret), Check::BadSignature);
        assert_eq!(
            check(&claim("42", "Ann", 2_000, Some("zz".into()))),
            Check::BadSignature
        );
        assert_eq!(check(&signed("4\n2", "Ann", 2_000)), Check::Invalid);
        assert_eq!(check(&signed("42", "A\nnn", 2_000)), Check::Invalid);
        assert_eq!(check(&signed("", "Ann", 2_000)), Check::Invalid);
        assert_eq!(
            verify(None, &signed("42", "Ann", 2_000), 1_000).unwrap_err(),
            Check::NotEnabled
        );
    }
}
