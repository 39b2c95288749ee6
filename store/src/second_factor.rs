//! Two-factor authentication's secrets, beside the log and never in it: an account's TOTP
//! secret (which must be read back to compute codes, so it is kept as it is, in base 32) with
//! the last step a code was taken at, its one-time recovery codes (only their hashes), and the
//! short-lived challenges between a login's password and its code (only their hashes).

use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 4] = [
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

/// An account's TOTP secret, as it is kept, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnrolment {
    /// Base 32.
    pub secret: String,
    pub confirmed: bool,
    pub last_step: Option<i64>,
}

/// Keeps a new secret (base 32) for an enrolment not yet confirmed, begun at `now`, replacing
/// one that was begun and never confirmed; `false`, writing nothing, when the account has a
/// confirmed one.
pub async fn begin(
    backend: &Backend,
    agent_id: Uuid,
    secret: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = "INSERT INTO two_factor (agent_id, secret, confirmed, last_step, created_at)
               VALUES ($1, $2, 0, NULL, $3)
               ON CONFLICT (agent_id) DO UPDATE SET secret = excluded.secret,
               last_step = NULL, created_at = excluded.created_at
               WHERE two_factor.confirmed = 0";
    Ok(dialect::execute(backend, sql, params![agent_id, secret, now]).await? == 1)
}

pub async fn enrolment(
    backend: &Backend,
    agent_id: Uuid,
) -> Result<Option<StoredEnrolment>, StoreError> {
    let sql = "SELECT secret, confirmed, last_step FROM two_factor WHERE agent_id = $1";
    let row: Option<(String, i64, Option<i64>)> =
        dialect::fetch_optional(backend, sql, params![agent_id]).await?;
    Ok(row.map(|(secret, confirmed, last_step)| StoredEnrolment {
        secret,
        confirmed: confirmed != 0,
        last_step,
    }))
}

/// Takes the code of `step`: `true` for the one caller who takes it, so a code is never taken
/// twice, however many requests race with it. With `confirm` it takes a step of an enrolment
/// not yet confirmed, and confirms it; without, of a confirmed one.
pub async fn take_step(
    backend: &Backend,
    agent_id: Uuid,
    step: i64,
    confirm: bool,
) -> Result<bool, StoreError> {
    let sql = "UPDATE two_factor SET last_step = $1, confirmed = $2
               WHERE agent_id = $3 AND confirmed = $4 AND (last_step IS NULL OR last_step < $1)";
    let (was, becomes): (i64, i64) = if confirm { (0, 1) } else { (1, 1) };
    Ok(dialect::execute(backend, sql, params![step, becomes, agent_id, was]).await? == 1)
}

/// Replaces the account's recovery codes with these (their hashes).
pub async fn replace_recovery_codes(
    backend: &Backend,
    agent_id: Uuid,
    code_hashes: &[String],
) -> Result<(), StoreError> {
    let forget = "DELETE FROM recovery_codes WHERE agent_id = $1";
    dialect::execute(backend, forget, params![agent_id]).await?;
    let insert = "INSERT INTO recovery_codes (code_hash, agent_id) VALUES ($1, $2)";
    for hash in code_hashes {
        dialect::execute(backend, insert, params![hash, agent_id]).await?;
    }
    Ok(())
}

/// Uses up a recovery code (by its hash): `true` once for each code kept.
pub async fn use_recovery_code(
    backend: &Backend,
    agent_id: Uuid,
    code_hash: &str,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM recovery_codes WHERE code_hash = $1 AND agent_id = $2";
    Ok(dialect::execute(backend, sql, params![code_hash, agent_id]).await? == 1)
}

/// How many recovery codes the account has left.
pub async fn recovery_codes_left(backend: &Backend, agent_id: Uuid) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM recovery_codes WHERE agent_id = $1";
    let (count,): (i64,) = dialect::fetch_one(backend, sql, params![agent_id]).await?;
    Ok(count)
}

/// Forgets the account's secret, recovery codes and challenges.
pub async fn remove(backend: &Backend, agent_id: Uuid) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM two_factor WHERE agent_id = $1",
        "DELETE FROM recovery_codes WHERE agent_id = $1",
        "DELETE FROM login_challenges WHERE agent_id = $1",
    ] {
        dialect::execute(backend, sql, params![agent_id]).await?;
    }
    Ok(())
}

/// Keeps a login's challenge (by its hash) until `expires_at`, forgetting those expired by
/// `now`.
pub async fn insert_challenge(
    backend: &Backend,
    challenge_hash: &str,
    agent_id: Uuid,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let prune = "DELETE FROM login_challenges WHERE expires_at < $1";
    dialect::execute(backend, prune, params![now]).await?;
    let sql = "INSERT INTO login_challenges (challenge_hash, agent_id, expires_at, failures)
               VALUES ($1, $2, $3, 0)";
    dialect::execute(backend, sql, params![challenge_hash, agent_id, expires_at]).await?;
    Ok(())
}

/// The account a challenge is for, if it has not expired by `now` and has failed fewer than
/// `max_failures` times.
pub async fn challenge(
    backend: &Backend,
    challenge_hash: &str,
    now: i64,
    max_failures: i64,
) -> Result<Option<Uuid>, StoreError> {
    let sql = "SELECT agent_id FROM login_challenges
               WHERE challenge_hash = $1 AND expires_at >= $2 AND failures < $3";
    let row: Option<(String,)> =
        dialect::fetch_optional(backend, sql, params![challenge_hash, now, max_failures]).await?;
    Ok(row.and_then(|(agent_id,)| agent_id.parse().ok()))
}

/// Counts a wrong code against the challenge.
pub async fn challenge_failed(backend: &Backend, challenge_hash: &str) -> Result<(), StoreError> {
    let sql = "UPDATE login_challenges SET failures = failures + 1 WHERE challenge_hash = $1";
    dialect::execute(backend, sql, params![challenge_hash]).await?;
    Ok(())
}

/// Ends a challenge: `true` for the one caller who ends it.
pub async fn end_challenge(backend: &Backend, challenge_hash: &str) -> Result<bool, StoreError> {
    let sql = "DELETE FROM login_challenges WHERE challenge_hash = $1";
    Ok(dialect::execute(backend, sql, params![challenge_hash]).await? == 1)
}
