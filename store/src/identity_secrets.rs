//! Queues' identity secrets (the keys sites sign their signed-in users' identities with), made
//! by Jono and kept beside the log, never in it: one per queue, with when it was made.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 1] = ["CREATE TABLE IF NOT EXISTS queue_identity_secrets (
        queue_id TEXT PRIMARY KEY,
        secret TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )"];

/// A queue's identity secret and when it was made (to the second).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

/// Keeps the queue's secret, replacing any before it.
pub async fn set(backend: &Backend, queue_id: Uuid, secret: &Secret) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO queue_identity_secrets (queue_id, secret, created_at) VALUES ($1, $2, $3)
               ON CONFLICT (queue_id) DO UPDATE
               SET secret = excluded.secret, created_at = excluded.created_at";
    let params = params![queue_id, &secret.secret, secret.created_at.timestamp()];
    dialect::execute(backend, sql, params).await?;
    Ok(())
}

pub async fn get(backend: &Backend, queue_id: Uuid) -> Result<Option<Secret>, StoreError> {
    let sql = "SELECT secret, created_at FROM queue_identity_secrets WHERE queue_id = $1";
    let row: Option<(String, i64)> =
        dialect::fetch_optional(backend, sql, params![queue_id]).await?;
    Ok(row.map(|(secret, created_at)| Secret {
        secret,
        created_at: DateTime::from_timestamp(created_at, 0).unwrap_or_default(),
    }))
}

/// Removes the queue's secret; whether there was one.
pub async fn remove(backend: &Backend, queue_id: Uuid) -> Result<bool, StoreError> {
    let sql = "DELETE FROM queue_identity_secrets WHERE queue_id = $1";
    Ok(dialect::execute(backend, sql, params![queue_id]).await? > 0)
}
