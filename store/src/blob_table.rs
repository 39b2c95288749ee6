//! Attachments' bytes when they live in the database (with Postgres; the embedded store keeps
//! them as files, see the gateway's `blobs`): one row per attachment, by its id.

use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 1] = [
    // The bytes of attachments when they live in the database (Postgres; `blobs`).
    "CREATE TABLE IF NOT EXISTS attachment_blobs (
        attachment_id TEXT PRIMARY KEY,
        bytes BYTEA NOT NULL
    )",
];

pub async fn put(backend: &Backend, attachment_id: Uuid, bytes: &[u8]) -> Result<(), StoreError> {
    let sql = "INSERT INTO attachment_blobs (attachment_id, bytes) VALUES ($1, $2)";
    dialect::execute(backend, sql, params![attachment_id, bytes]).await?;
    Ok(())
}

/// The bytes of an attachment, if they are here.
pub async fn get(backend: &Backend, attachment_id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
    let sql = "SELECT bytes FROM attachment_blobs WHERE attachment_id = $1";
    let row: Option<(Vec<u8>,)> =
        dialect::fetch_optional(backend, sql, params![attachment_id]).await?;
    Ok(row.map(|(bytes,)| bytes))
}

/// Forgets an attachment's bytes; gone already is fine.
pub async fn delete(backend: &Backend, attachment_id: Uuid) -> Result<(), StoreError> {
    let sql = "DELETE FROM attachment_blobs WHERE attachment_id = $1";
    dialect::execute(backend, sql, params![attachment_id]).await?;
    Ok(())
}
