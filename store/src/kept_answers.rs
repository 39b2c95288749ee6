//! Answers kept under idempotency keys, for the commands that the log alone cannot answer
//! again (the response itself is kept, sealed by the gateway), and which conversation each is
//! about, so that an erasure forgets it with the conversation.

use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 3] = [
    // Idempotency keys of commands that the log alone cannot answer (the response is kept).
    "CREATE TABLE IF NOT EXISTS idempotent_responses (
        key TEXT PRIMARY KEY,
        request_hash TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
    // Which conversation a kept answer is about (the customer's own requests, and agents'
    // under `/v1/conversations/{c}/`), so that an erasure forgets it with the conversation.
    "CREATE TABLE IF NOT EXISTS idempotent_response_subjects (
        key TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS idempotent_response_subjects_by_conversation
        ON idempotent_response_subjects (conversation_id)",
];

/// Creates the tables, and forgets the answers kept before they were sealed: they hold secrets
/// in plain text (an invitation's token), under keys scoped to a token that no caller's key
/// matches any more, so there is nothing to keep. (`sealed:` and `sealed2:` are both sealed;
/// only answers kept before sealing are not.)
pub(crate) async fn migrate(backend: &Backend) -> Result<(), StoreError> {
    dialect::create(backend, &SCHEMA).await?;
    let unsealed = "DELETE FROM idempotent_responses WHERE body NOT LIKE 'sealed%'";
    dialect::execute(backend, unsealed, &[]).await?;
    Ok(())
}

/// A response kept under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    pub request_hash: String,
    pub status: u16,
    /// As it was given to [`keep`].
    pub body: String,
}

/// The answer kept under `key` at or after `kept_since` (epoch seconds), if any.
pub async fn find(
    backend: &Backend,
    key: &str,
    kept_since: i64,
) -> Result<Option<KeptAnswer>, StoreError> {
    let sql = "SELECT request_hash, status, body FROM idempotent_responses
               WHERE key = $1 AND created_at >= $2";
    let row: Option<(String, i32, String)> =
        dialect::fetch_optional(backend, sql, params![key, kept_since]).await?;
    Ok(row.map(|(request_hash, status, body)| KeptAnswer {
        request_hash,
        status: u16::try_from(status).unwrap_or(500),
        body,
    }))
}

/// Keeps an answer under `key` at `now`; the one kept before wins unless it was kept before
/// `expired_before`.
pub async fn keep(
    backend: &Backend,
    key: &str,
    request_hash: &str,
    status: u16,
    body: &str,
    now: i64,
    expired_before: i64,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO idempotent_responses (key, request_hash, status, body, created_at)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET
               request_hash = excluded.request_hash, status = excluded.status,
               body = excluded.body, created_at = excluded.created_at
               WHERE idempotent_responses.created_at < $6";
    let status = i32::from(status);
    dialect::execute(
        backend,
        sql,
        params![key, request_hash, status, body, now, expired_before],
    )
    .await?;
    Ok(())
}

/// Notes that the answer kept under `key` is about `conversation_id` (for its erasure).
pub async fn keep_subject(
    backend: &Backend,
    key: &str,
    conversation_id: Uuid,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO idempotent_response_subjects (key, conversation_id) VALUES ($1, $2)
               ON CONFLICT (key) DO UPDATE SET conversation_id = excluded.conversation_id";
    dialect::execute(backend, sql, params![key, conversation_id]).await?;
    Ok(())
}

/// Forgets every kept answer noted as about `conversation_id`; how many.
pub async fn forget_of(backend: &Backend, conversation_id: Uuid) -> Result<u64, StoreError> {
    let forget = "DELETE FROM idempotent_responses WHERE key IN
                  (SELECT key FROM idempotent_response_subjects WHERE conversation_id = $1)";
    let forgotten = dialect::execute(backend, forget, params![conversation_id]).await?;
    let notes = "DELETE FROM idempotent_response_subjects WHERE conversation_id = $1";
    dialect::execute(backend, notes, params![conversation_id]).await?;
    Ok(forgotten)
}

/// Forgets the answers kept before `expired_before`; how many.
pub async fn prune(backend: &Backend, expired_before: i64) -> Result<u64, StoreError> {
    let sql = "DELETE FROM idempotent_responses WHERE created_at < $1";
    let pruned = dialect::execute(backend, sql, params![expired_before]).await?;
    let notes = "DELETE FROM idempotent_response_subjects
                 WHERE key NOT IN (SELECT key FROM idempotent_responses)";
    dialect::execute(backend, notes, &[]).await?;
    Ok(pruned)
}
