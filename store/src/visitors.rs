//! The keyed hash of the address each customer joined from, beside the log and never in it,
//! kept as long as the customer's token so that an agent can block that visitor.

use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 1] = ["CREATE TABLE IF NOT EXISTS customer_visitors (
        conversation_id TEXT PRIMARY KEY,
        visitor_key TEXT NOT NULL
    )"];

/// Remembers the visitor a conversation came from; the first one remembered stays.
pub async fn remember(
    backend: &Backend,
    conversation_id: Uuid,
    visitor_key: &str,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO customer_visitors (conversation_id, visitor_key) VALUES ($1, $2)
               ON CONFLICT (conversation_id) DO NOTHING";
    dialect::execute(backend, sql, params![conversation_id, visitor_key]).await?;
    Ok(())
}

/// The visitor key a conversation came from, when it was remembered.
pub async fn visitor_of(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<Option<String>, StoreError> {
    let sql = "SELECT visitor_key FROM customer_visitors WHERE conversation_id = $1";
    let found: Option<(String,)> =
        dialect::fetch_optional(backend, sql, params![conversation_id]).await?;
    Ok(found.map(|(key,)| key))
}

/// Forgets the visitor of a conversation.
pub async fn forget(backend: &Backend, conversation_id: Uuid) -> Result<(), StoreError> {
    let sql = "DELETE FROM customer_visitors WHERE conversation_id = $1";
    dialect::execute(backend, sql, params![conversation_id]).await?;
    Ok(())
}
