//! Two-factor authentication's secrets, in tables of their own beside `secrets`' and never in
//! the log: an account's TOTP secret (which must be read back to compute codes, so it is kept
//! as it is, like the server's own keys) with the last step a code was taken at, its one-time
//! recovery codes (only their SHA-256), and the short-lived challenges between a login's
//! password and its code (only their SHA-256).

use chrono::Utc;
use rand::Rng;
use sha2::{Digest, Sha256};
use store::log::Backend;
use uuid::Uuid;

use crate::secrets::{hash_token, new_token, on_pool};
use crate::totp;

const SCHEMA: [&str; 4] = [
    // `confirmed` is 0 between the enrolment and its first code, 1 after; `last_step` is the
    // TOTP step of the last code taken (a code is taken once).
    "CREATE TABLE IF NOT EXISTS two_factor (
        agent_id TEXT PRIMARY KEY,
        secret TEXT NOT NULL,
        confirmed BIGINT NOT NULL,
        last_step BIGINT,
        created_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS recovery_codes (
        code_hash TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS recovery_codes_by_agent ON recovery_codes (agent_id)",
    // A password was right; the code is awaited until `expires_at`, for a few tries.
    "CREATE TABLE IF NOT EXISTS login_challenges (
        challenge_hash TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        failures BIGINT NOT NULL
    )",
];

/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
/// How long a login waits for its code.
pub const CHALLENGE_SECONDS: i64 = 300;
/// Wrong codes a challenge takes before it ends (the rate limits bound them too).
pub const CHALLENGE_FAILURES: i64 = 5;

pub async fn migrate(backend: &Backend) -> Result<(), sqlx::Error> {
    for statement in SCHEMA {
        on_pool!(backend, pool => sqlx::query(statement).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

/// An account's TOTP secret and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub secret: Vec<u8>,
    pub confirmed: bool,
    pub last_step: Option<i64>,
}

/// Keeps a new secret for an enrolment not yet confirmed (replacing one that was begun and
/// never confirmed); `false`, writing nothing, when the account has a confirmed one.
pub async fn begin(backend: &Backend, agent_id: Uuid, secret: &[u8]) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO two_factor (agent_id, secret, confirmed, last_step, created_at)
               VALUES ($1, $2, 0, NULL, $3)
               ON CONFLICT (agent_id) DO UPDATE SET secret = excluded.secret,
               last_step = NULL, created_at = excluded.created_at
               WHERE two_factor.confirmed = 0";
    let written = on_pool!(backend, pool => sqlx::query(sql)
        .bind(agent_id.to_string())
        .bind(totp::base32(secret))
        .bind(Utc::now().timestamp())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(written == 1)
}

pub async fn enrolment(
    backend: &Backend,
    agent_id: Uuid,
) -> Result<Option<Enrolment>, sqlx::Error> {
    let sql = "SELECT secret, confirmed, last_step FROM two_factor WHERE agent_id = $1";
    let row: Option<(String, i64, Option<i64>)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(agent_id.to_string())
        .fetch_optional(pool)
        .await)?;
    let Some((secret, confirmed, last_step)) = row else {
        return Ok(None);
    };
    let secret = totp::from_base32(&secret)
        .ok_or_else(|| sqlx::Error::Decode("two_factor.secret is not base 32".into()))?;
    Ok(Some(Enrolment {
        secret,
        confirmed: confirmed != 0,
        last_step,
    }))
}

/// Whether the account has a confirmed second factor.
pub async fn enabled(backend: &Backend, agent_id: Uuid) -> Result<bool, sqlx::Error> {
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
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE two_factor SET last_step = $1, confirmed = $2
               WHERE agent_id = $3 AND confirmed = $4 AND (last_step IS NULL OR last_step < $1)";
    let (was, becomes) = if confirm { (0, 1) } else { (1, 1) };
    let taken = on_pool!(backend, pool => sqlx::query(sql)
        .bind(step)
        .bind(becomes as i64)
        .bind(agent_id.to_string())
        .bind(was as i64)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(taken == 1)
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
) -> Result<Vec<String>, sqlx::Error> {
    let forget = "DELETE FROM recovery_codes WHERE agent_id = $1";
    on_pool!(backend, pool => sqlx::query(forget)
        .bind(agent_id.to_string())
        .execute(pool)
        .await
        .map(|_| ()))?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let insert = "INSERT INTO recovery_codes (code_hash, agent_id) VALUES ($1, $2)";
    for code in &codes {
        on_pool!(backend, pool => sqlx::query(insert)
            .bind(hash_recovery_code(agent_id, code))
            .bind(agent_id.to_string())
            .execute(pool)
            .await
            .map(|_| ()))?;
    }
    Ok(codes)
}

/// Uses up a recovery code: `true` once for each code handed out.
pub async fn use_recovery_code(
    backend: &Backend,
    agent_id: Uuid,
    code: &str,
) -> Result<bool, sqlx::Error> {
    let sql = "DELETE FROM recovery_codes WHERE code_hash = $1 AND agent_id = $2";
    let used = on_pool!(backend, pool => sqlx::query(sql)
        .bind(hash_recovery_code(agent_id, code))
        .bind(agent_id.to_string())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(used == 1)
}

/// How many recovery codes the account has left.
pub async fn recovery_codes_left(backend: &Backend, agent_id: Uuid) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM recovery_codes WHERE agent_id = $1";
    let (count,): (i64,) = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(agent_id.to_string())
        .fetch_one(pool)
        .await)?;
    Ok(count)
}

/// Turns the second factor off: its secret and recovery codes are forgotten.
pub async fn remove(backend: &Backend, agent_id: Uuid) -> Result<(), sqlx::Error> {
    for sql in [
        "DELETE FROM two_factor WHERE agent_id = $1",
        "DELETE FROM recovery_codes WHERE agent_id = $1",
        "DELETE FROM login_challenges WHERE agent_id = $1",
    ] {
        on_pool!(backend, pool => sqlx::query(sql)
            .bind(agent_id.to_string())
            .execute(pool)
            .await
            .map(|_| ()))?;
    }
    Ok(())
}

/// A login whose password was right awaits its code: the challenge token it answers with.
pub async fn new_challenge(backend: &Backend, agent_id: Uuid) -> Result<String, sqlx::Error> {
    let now = Utc::now().timestamp();
    let prune = "DELETE FROM login_challenges WHERE expires_at < $1";
    on_pool!(backend, pool => sqlx::query(prune).bind(now).execute(pool).await.map(|_| ()))?;
    let token = new_token();
    let sql = "INSERT INTO login_challenges (challenge_hash, agent_id, expires_at, failures)
               VALUES ($1, $2, $3, 0)";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(hash_token(&token))
        .bind(agent_id.to_string())
        .bind(now + CHALLENGE_SECONDS)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(token)
}

/// The account a live challenge is for (not expired, not out of tries).
pub async fn challenge(backend: &Backend, token: &str) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = "SELECT agent_id FROM login_challenges
               WHERE challenge_hash = $1 AND expires_at >= $2 AND failures < $3";
    let row: Option<(String,)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(hash_token(token))
        .bind(Utc::now().timestamp())
        .bind(CHALLENGE_FAILURES)
        .fetch_optional(pool)
        .await)?;
    Ok(row.and_then(|(agent_id,)| agent_id.parse().ok()))
}

/// Counts a wrong code against the challenge.
pub async fn challenge_failed(backend: &Backend, token: &str) -> Result<(), sqlx::Error> {
    let sql = "UPDATE login_challenges SET failures = failures + 1 WHERE challenge_hash = $1";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(hash_token(token))
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Ends a challenge that was answered: `true` for the one caller who ends it, so one
/// challenge opens one session.
pub async fn end_challenge(backend: &Backend, token: &str) -> Result<bool, sqlx::Error> {
    let sql = "DELETE FROM login_challenges WHERE challenge_hash = $1";
    let ended = on_pool!(backend, pool => sqlx::query(sql)
        .bind(hash_token(token))
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(ended == 1)
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
