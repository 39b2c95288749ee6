//! Two-factor authentication's rules: an account's TOTP secret (kept as it is, in base 32,
//! since codes are computed from it), its one-time recovery codes (how they are made and
//! hashed), and the short-lived challenges between a login's password and its code (how long
//! and for how many tries). The secrets are stored beside the log and never in it
//! ([`store::second_factor`]).

use chrono::Utc;
use rand::Rng;
use sha2::{Digest, Sha256};
use store::error::StoreError;
use store::log::Backend;
use store::second_factor as stored;
use uuid::Uuid;

use crate::secrets::{hash_token, new_token};
use crate::totp;

/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
/// How long a login waits for its code.
pub const CHALLENGE_SECONDS: i64 = 300;
/// Wrong codes a challenge takes before it ends (the rate limits bound them too).
pub const CHALLENGE_FAILURES: i64 = 5;

/// An account's TOTP secret and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub secret: Vec<u8>,
    pub confirmed: bool,
    pub last_step: Option<i64>,
}

/// Keeps a new secret for an enrolment not yet confirmed (replacing one that was begun and
/// never confirmed); `false`, writing nothing, when the account has a confirmed one.
pub async fn begin(backend: &Backend, agent_id: Uuid, secret: &[u8]) -> Result<bool, StoreError> {
    let now = Utc::now().timestamp();
    stored::begin(backend, agent_id, &totp::base32(secret), now).await
}

pub async fn enrolment(backend: &Backend, agent_id: Uuid) -> Result<Option<Enrolment>, StoreError> {
    let Some(kept) = stored::enrolment(backend, agent_id).await? else {
        return Ok(None);
    };
    // Read as the store reads a value it cannot decode: unavailable, as it always was.
    let secret = totp::from_base32(&kept.secret).ok_or_else(|| {
        StoreError::Unavailable(
            "error occurred while decoding: two_factor.secret is not base 32".into(),
        )
    })?;
    Ok(Some(Enrolment {
        secret,
        confirmed: kept.confirmed,
        last_step: kept.last_step,
    }))
}

/// Whether the account has a confirmed second factor.
pub async fn enabled(backend: &Backend, agent_id: Uuid) -> Result<bool, StoreError> {
    Ok(enrolment(backend, agent_id)
        .await?
        .is_some_and(|enrolment| enrolment.confirmed))
}

/// Takes the code of `step` (found by `totp::verify`): `true` for the one caller who takes it,
/// so a code is never taken twice, however many requests race with it. `confirm` also makes
/// an enrolment confirmed.
pub async fn take_step(
    backend: &Backend,
    agent_id: Uuid,
    step: i64,
    confirm: bool,
) -> Result<bool, StoreError> {
    stored::take_step(backend, agent_id, step, confirm).await
}

/// A recovery code as it is typed: `xxxxx-xxxxx`, lower case letters and digits.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let mut code: String = (0..10)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    code.insert(5, '-');
    code
}

/// What is kept of a recovery code: its SHA-256 with its account, whatever its case and dashes.
fn hash_recovery_code(agent_id: Uuid, code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::new()
        .chain_update(b"recovery\0")
        .chain_update(agent_id.as_bytes())
        .chain_update(normal.as_bytes())
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Replaces the account's recovery codes with fresh ones, and hands them out (once).
pub async fn new_recovery_codes(
    backend: &Backend,
    agent_id: Uuid,
) -> Result<Vec<String>, StoreError> {
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes: Vec<String> = codes
        .iter()
        .map(|code| hash_recovery_code(agent_id, code))
        .collect();
    stored::replace_recovery_codes(backend, agent_id, &hashes).await?;
    Ok(codes)
}

/// Uses up a recovery code: `true` once for each code handed out.
pub async fn use_recovery_code(
    backend: &Backend,
    agent_id: Uuid,
    code: &str,
) -> Result<bool, StoreError> {
    stored::use_recovery_code(backend, agent_id, &hash_recovery_code(agent_id, code)).await
}

/// How many recovery codes the account has left.
pub async fn recovery_codes_left(backend: &Backend, agent_id: Uuid) -> Result<i64, StoreError> {
    stored::recovery_codes_left(backend, agent_id).await
}

/// Turns the second factor off: its secret and recovery codes are forgotten.
pub async fn remove(backend: &Backend, agent_id: Uuid) -> Result<(), StoreError> {
    stored::remove(backend, agent_id).await
}

/// A login whose password was right awaits its code: the challenge token it answers with.
pub async fn new_challenge(backend: &Backend, agent_id: Uuid) -> Result<String, StoreError> {
    let now = Utc::now().timestamp();
    let token = new_token();
    let expires_at = now + CHALLENGE_SECONDS;
    stored::insert_challenge(backend, &hash_token(&token), agent_id, now, expires_at).await?;
    Ok(token)
}

/// The account a live challenge is for (not expired, not out of tries).
pub async fn challenge(backend: &Backend, token: &str) -> Result<Option<Uuid>, StoreError> {
    let now = Utc::now().timestamp();
    stored::challenge(backend, &hash_token(token), now, CHALLENGE_FAILURES).await
}

/// Counts a wrong code against the challenge.
pub async fn challenge_failed(backend: &Backend, token: &str) -> Result<(), StoreError> {
    stored::challenge_failed(backend, &hash_token(token)).await
}

/// Ends a challenge that was answered: `true` for the one caller who ends it, so one
/// challenge opens one session.
pub async fn end_challenge(backend: &Backend, token: &str) -> Result<bool, StoreError> {
    stored::end_challenge(backend, &hash_token(token)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn backend() -> (tempfile::TempDir, store::log::EventStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        crate::secrets::migrate(store.backend()).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn an_enrolment_is_confirmed_once_and_a_step_is_taken_once() {
        let (_dir, store) = backend().await;
        let backend = store.backend();
        let agent = Uuid::new_v4();
        assert!(begin(backend, agent, b"first secret").await.unwrap());
        assert!(begin(backend, agent, b"second secret").await.unwrap());
        let pending = enrolment(backend, agent).await.unwrap().unwrap();
        assert_eq!(pending.secret, b"second secret");
        assert!(!pending.confirmed);
        assert!(!enabled(backend, agent).await.unwrap());
        // A confirmation takes a step of an unconfirmed enrolment only.
        assert!(!take_step(backend, agent, 10, false).await.unwrap());
        assert!(take_step(backend, agent, 10, true).await.unwrap());
        assert!(enabled(backend, agent).await.unwrap());
        assert!(!begin(backend, agent, b"third").await.unwrap(), "replaced");
        assert!(
            !take_step(backend, agent, 10, false).await.unwrap(),
            "twice"
        );
        assert!(take_step(backend, agent, 11, false).await.unwrap());
        remove(backend, agent).await.unwrap();
        assert_eq!(enrolment(backend, agent).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_recovery_code_works_once_for_its_own_account_only() {
        let (_dir, store) = backend().await;
        let backend = store.backend();
        let (agent, other) = (Uuid::new_v4(), Uuid::new_v4());
        let codes = new_recovery_codes(backend, agent).await.unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(recovery_codes_left(backend, agent).await.unwrap(), 10);
        assert!(!use_recovery_code(backend, other, &codes[0]).await.unwrap());
        let typed = codes[0].to_uppercase().replace('-', " ");
        assert!(use_recovery_code(backend, agent, &typed).await.unwrap());
        assert!(!use_recovery_code(backend, agent, &codes[0]).await.unwrap());
        assert_eq!(recovery_codes_left(backend, agent).await.unwrap(), 9);
        // New codes replace the old ones.
        new_recovery_codes(backend, agent).await.unwrap();
        assert!(!use_recovery_code(backend, agent, &codes[1]).await.unwrap());
    }

    #[tokio::test]
    async fn a_challenge_ends_once_and_after_its_failures() {
        let (_dir, store) = backend().await;
        let backend = store.backend();
        let agent = Uuid::new_v4();
        let token = new_challenge(backend, agent).await.unwrap();
        assert_eq!(challenge(backend, &token).await.unwrap(), Some(agent));
        for _ in 0..CHALLENGE_FAILURES {
            challenge_failed(backend, &token).await.unwrap();
        }
        assert_eq!(challenge(backend, &token).await.unwrap(), None);
        let token = new_challenge(backend, agent).await.unwrap();
        assert!(end_challenge(backend, &token).await.unwrap());
        assert!(!end_challenge(backend, &token).await.unwrap());
        assert_eq!(challenge(backend, &token).await.unwrap(), None);
    }
}
