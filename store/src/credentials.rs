//! Accounts' passwords (their argon2id hashes, PHC strings with their own salt and parameters)
//! and the claims of accounts being created, beside the log and never in it.

use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 2] = [
    // An account's argon2id hash (a PHC string with its own salt and parameters).
    "CREATE TABLE IF NOT EXISTS credentials (
        agent_id TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL
    )",
    // Who is creating an account (`claim_account`): the first INSERT of an id wins on both
    // backends, so one email has one account however many sign-ups and acceptances race.
    "CREATE TABLE IF NOT EXISTS account_claims (
        agent_id TEXT PRIMARY KEY,
        claimed_at BIGINT NOT NULL
    )",
];

/// Sets the account's password hash, replacing any.
pub async fn set_password_hash(
    backend: &Backend,
    agent_id: Uuid,
    hash: &str,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO credentials (agent_id, password_hash) VALUES ($1, $2)
               ON CONFLICT (agent_id) DO UPDATE SET password_hash = excluded.password_hash";
    dialect::execute(backend, sql, params![agent_id, hash]).await?;
    Ok(())
}

/// Keeps the password hash of an account that has none; `false`, writing nothing, when it has
/// one already.
pub async fn insert_password_hash(
    backend: &Backend,
    agent_id: Uuid,
    hash: &str,
) -> Result<bool, StoreError> {
    let sql = "INSERT INTO credentials (agent_id, password_hash) VALUES ($1, $2)
               ON CONFLICT (agent_id) DO NOTHING";
    Ok(dialect::execute(backend, sql, params![agent_id, hash]).await? == 1)
}

pub async fn password_hash(
    backend: &Backend,
    agent_id: Uuid,
) -> Result<Option<String>, StoreError> {
    let sql = "SELECT password_hash FROM credentials WHERE agent_id = $1";
    let row: Option<(String,)> = dialect::fetch_optional(backend, sql, params![agent_id]).await?;
    Ok(row.map(|(hash,)| hash))
}

/// Claims `agent_id` at `now` for the account being created: `true` for the one caller who
/// gets it. A claim made before `abandoned_before` whose account has no password was cut short
/// (a crash between the claim and the password) and can be taken again; any other is refused.
pub async fn claim_account(
    backend: &Backend,
    agent_id: Uuid,
    now: i64,
    abandoned_before: i64,
) -> Result<bool, StoreError> {
    let insert = "INSERT INTO account_claims (agent_id, claimed_at) VALUES ($1, $2)
                  ON CONFLICT (agent_id) DO NOTHING";
    if dialect::execute(backend, insert, params![agent_id, now]).await? == 1 {
        return Ok(true);
    }
    let retake = "UPDATE account_claims SET claimed_at = $1
                  WHERE agent_id = $2 AND claimed_at < $3
                  AND NOT EXISTS (SELECT 1 FROM credentials WHERE credentials.agent_id = $2)";
    Ok(dialect::execute(backend, retake, params![now, agent_id, abandoned_before]).await? == 1)
}

/// Gives a claim back when its account has no password yet.
pub async fn release_claim(backend: &Backend, agent_id: Uuid) -> Result<(), StoreError> {
    let sql = "DELETE FROM account_claims WHERE agent_id = $1
               AND NOT EXISTS (SELECT 1 FROM credentials WHERE credentials.agent_id = $1)";
    dialect::execute(backend, sql, params![agent_id]).await?;
    Ok(())
}
