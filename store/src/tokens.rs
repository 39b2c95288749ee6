//! Bearer tokens, kept beside the log and never in it: agents' sessions (with the device and
//! address each was opened from) and customers' tokens. Only a token's hash is stored (the
//! gateway hashes it), so a copy of the database opens nothing.

use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 4] = [
    // An agent's session; it lasts 30 days from its last use.
    "CREATE TABLE IF NOT EXISTS agent_tokens (
        token_hash TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS agent_tokens_by_agent ON agent_tokens (agent_id)",
    // Where a session was opened: the browser's User-Agent and the client address, shown to
    // its agent in its list of sessions. A session opened before this table has no row.
    // `ends_at`: a session that ends then however it is used (one opened through an
    // organization's identity provider, so that a person removed there is out by then).
    "CREATE TABLE IF NOT EXISTS agent_token_devices (
        token_hash TEXT PRIMARY KEY,
        user_agent TEXT,
        address TEXT,
        ends_at BIGINT
    )",
    // A customer's token opens its own conversation only.
    "CREATE TABLE IF NOT EXISTS customer_tokens (
        token_hash TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
];

/// Where a session is opened from, as its agent sees it in its list of sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub user_agent: Option<String>,
    pub address: Option<String>,
}

/// An agent's session as it is kept (times in epoch seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentToken {
    pub agent_id: Uuid,
    pub last_used_at: i64,
    /// When the session ends however it is used, if it does.
    pub ends_at: Option<i64>,
}

/// One of an agent's sessions, as its list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub token_hash: String,
    pub device: Device,
    pub created_at: i64,
    pub last_used_at: i64,
    pub ends_at: Option<i64>,
}

/// Keeps a new session of `agent_id` under its token's hash, opened at `now` from `device`.
pub async fn insert_agent_token(
    backend: &Backend,
    token_hash: &str,
    agent_id: Uuid,
    device: &Device,
    ends_at: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO agent_tokens (token_hash, agent_id, created_at, last_used_at)
               VALUES ($1, $2, $3, $4)";
    dialect::execute(backend, sql, params![token_hash, agent_id, now, now]).await?;
    let sql = "INSERT INTO agent_token_devices (token_hash, user_agent, address, ends_at)
               VALUES ($1, $2, $3, $4)";
    let (user_agent, address) = (device.user_agent.as_deref(), device.address.as_deref());
    dialect::execute(
        backend,
        sql,
        params![token_hash, user_agent, address, ends_at],
    )
    .await?;
    Ok(())
}

/// The agent's sessions used since `used_since` and not ended by `now`, the latest used first.
pub async fn sessions_of(
    backend: &Backend,
    agent_id: Uuid,
    used_since: i64,
    now: i64,
) -> Result<Vec<StoredSession>, StoreError> {
    let sql = "SELECT t.token_hash, t.created_at, t.last_used_at, d.user_agent, d.address,
               d.ends_at
               FROM agent_tokens t LEFT JOIN agent_token_devices d ON d.token_hash = t.token_hash
               WHERE t.agent_id = $1 AND t.last_used_at >= $2
               AND (d.ends_at IS NULL OR d.ends_at > $3)
               ORDER BY t.last_used_at DESC, t.created_at DESC";
    type Row = (
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let rows: Vec<Row> =
        dialect::fetch_all(backend, sql, params![agent_id, used_since, now]).await?;
    Ok(rows
        .into_iter()
        .map(
            |(token_hash, created_at, last_used_at, user_agent, address, ends_at)| StoredSession {
                token_hash,
                device: Device {
                    user_agent,
                    address,
                },
                created_at,
                last_used_at,
                ends_at,
            },
        )
        .collect())
}

/// The agent's session kept under `token_hash`, if there is one (whether or not it is live: the
/// caller decides).
pub async fn agent_token(
    backend: &Backend,
    token_hash: &str,
) -> Result<Option<AgentToken>, StoreError> {
    let sql = "SELECT t.agent_id, t.last_used_at, d.ends_at FROM agent_tokens t
               LEFT JOIN agent_token_devices d ON d.token_hash = t.token_hash
               WHERE t.token_hash = $1";
    let row: Option<(String, i64, Option<i64>)> =
        dialect::fetch_optional(backend, sql, params![token_hash]).await?;
    Ok(row.and_then(|(agent_id, last_used_at, ends_at)| {
        Some(AgentToken {
            agent_id: agent_id.parse().ok()?,
            last_used_at,
            ends_at,
        })
    }))
}

/// Notes that the session was used at `now`.
pub async fn touch_agent_token(
    backend: &Backend,
    token_hash: &str,
    now: i64,
) -> Result<(), StoreError> {
    let touch = "UPDATE agent_tokens SET last_used_at = $1 WHERE token_hash = $2";
    dialect::execute(backend, touch, params![now, token_hash]).await?;
    Ok(())
}

/// Ends one session (logout).
pub async fn revoke_agent_token(backend: &Backend, token_hash: &str) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM agent_tokens WHERE token_hash = $1",
        "DELETE FROM agent_token_devices WHERE token_hash = $1",
    ] {
        dialect::execute(backend, sql, params![token_hash]).await?;
    }
    Ok(())
}

/// Ends every session of an agent but `keep`.
pub async fn revoke_agent_tokens(
    backend: &Backend,
    agent_id: Uuid,
    keep: Option<&str>,
) -> Result<(), StoreError> {
    let sql = "DELETE FROM agent_tokens WHERE agent_id = $1 AND token_hash <> $2
               RETURNING token_hash";
    let revoked: Vec<(String,)> =
        dialect::fetch_all(backend, sql, params![agent_id, keep.unwrap_or("")]).await?;
    let devices = "DELETE FROM agent_token_devices WHERE token_hash = $1";
    for (hash,) in revoked {
        dialect::execute(backend, devices, params![hash]).await?;
    }
    Ok(())
}

/// Keeps a customer's token for its conversation, made at `now`.
pub async fn insert_customer_token(
    backend: &Backend,
    token_hash: &str,
    conversation_id: Uuid,
    now: i64,
) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO customer_tokens (token_hash, conversation_id, created_at) VALUES ($1, $2, $3)";
    dialect::execute(backend, sql, params![token_hash, conversation_id, now]).await?;
    Ok(())
}

/// The conversation a customer's token (by its hash) opens, if it is one.
pub async fn customer_token(
    backend: &Backend,
    token_hash: &str,
) -> Result<Option<Uuid>, StoreError> {
    let sql = "SELECT conversation_id FROM customer_tokens WHERE token_hash = $1";
    let row: Option<(String,)> = dialect::fetch_optional(backend, sql, params![token_hash]).await?;
    Ok(row.and_then(|(id,)| id.parse().ok()))
}

/// Ends every token of a customer's conversation; the hashes of those ended.
pub async fn revoke_customer_tokens(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<Vec<String>, StoreError> {
    let sql = "DELETE FROM customer_tokens WHERE conversation_id = $1 RETURNING token_hash";
    let revoked: Vec<(String,)> =
        dialect::fetch_all(backend, sql, params![conversation_id]).await?;
    Ok(revoked.into_iter().map(|(hash,)| hash).collect())
}
