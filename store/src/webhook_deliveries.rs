//! The webhook worker's operational state, beside the log: the endpoints as the worker has
//! reached them in the log (so an endpoint receives exactly the events after its registration),
//! the conversations that are not customer conversations (whose messages are never delivered),
//! and one row per delivery still owed: its attempts, its next try, and whether it is parked.
//! A delivered row is deleted. Times are epoch milliseconds.

use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS webhook_endpoints (
        endpoint_id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL,
        url TEXT NOT NULL,
        event_types TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS webhook_private_conversations (
        conversation_id TEXT PRIMARY KEY
    )",
    "CREATE TABLE IF NOT EXISTS webhook_deliveries (
        endpoint_id TEXT NOT NULL,
        position BIGINT NOT NULL,
        organization_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        first_attempt_at BIGINT,
        next_attempt_at BIGINT NOT NULL,
        parked_at BIGINT,
        last_error TEXT,
        PRIMARY KEY (endpoint_id, position)
    )",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_organization
        ON webhook_deliveries (organization_id, parked_at)",
];

/// An endpoint as the worker knows it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub endpoint_id: String,
    pub url: String,
    pub event_types: Vec<String>,
}

pub async fn add_endpoint(
    backend: &Backend,
    endpoint_id: Uuid,
    organization_id: Uuid,
    url: &str,
    event_types: &[String],
) -> Result<(), StoreError> {
    let types = serde_json::to_string(event_types).unwrap_or_else(|_| "[]".into());
    let sql = "INSERT INTO webhook_endpoints (endpoint_id, organization_id, url, event_types)
               VALUES ($1, $2, $3, $4) ON CONFLICT (endpoint_id) DO UPDATE
               SET url = excluded.url, event_types = excluded.event_types";
    let params = params![endpoint_id, organization_id, url, types];
    dialect::execute(backend, sql, params).await?;
    Ok(())
}

/// Whether any organization has an endpoint: without one, nothing is owed to anybody.
pub async fn any_endpoint(backend: &Backend) -> Result<bool, StoreError> {
    let sql = "SELECT 1 FROM webhook_endpoints LIMIT 1";
    let row: Option<(i32,)> = dialect::fetch_optional(backend, sql, &[]).await?;
    Ok(row.is_some())
}

/// Forgets an endpoint and what was still owed to it.
pub async fn remove_endpoint(backend: &Backend, endpoint_id: Uuid) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM webhook_deliveries WHERE endpoint_id = $1",
        "DELETE FROM webhook_endpoints WHERE endpoint_id = $1",
    ] {
        dialect::execute(backend, sql, params![endpoint_id]).await?;
    }
    Ok(())
}

pub async fn endpoints_of(
    backend: &Backend,
    organization_id: &str,
) -> Result<Vec<Endpoint>, StoreError> {
    let sql = "SELECT endpoint_id, url, event_types FROM webhook_endpoints
               WHERE organization_id = $1 ORDER BY endpoint_id";
    let rows: Vec<(String, String, String)> =
        dialect::fetch_all(backend, sql, params![organization_id]).await?;
    Ok(rows
        .into_iter()
        .map(|(endpoint_id, url, types)| Endpoint {
            endpoint_id,
            url,
            event_types: serde_json::from_str(&types).unwrap_or_default(),
        })
        .collect())
}

pub async fn endpoint_url(
    backend: &Backend,
    endpoint_id: &str,
) -> Result<Option<String>, StoreError> {
    let sql = "SELECT url FROM webhook_endpoints WHERE endpoint_id = $1";
    let row: Option<(String,)> =
        dialect::fetch_optional(backend, sql, params![endpoint_id]).await?;
    Ok(row.map(|(url,)| url))
}

pub async fn note_private_conversation(
    backend: &Backend,
    conversation_id: &str,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO webhook_private_conversations (conversation_id) VALUES ($1)
               ON CONFLICT (conversation_id) DO NOTHING";
    dialect::execute(backend, sql, params![conversation_id]).await?;
    Ok(())
}

pub async fn is_private_conversation(
    backend: &Backend,
    conversation_id: &str,
) -> Result<bool, StoreError> {
    let sql = "SELECT COUNT(*) FROM webhook_private_conversations WHERE conversation_id = $1";
    let (count,): (i64,) = dialect::fetch_one(backend, sql, params![conversation_id]).await?;
    Ok(count > 0)
}

/// Owes the event at `position` to an endpoint (once: a repeat after a crash adds nothing).
pub async fn owe(
    backend: &Backend,
    endpoint_id: &str,
    position: i64,
    organization_id: &str,
    event_type: &str,
    now: i64,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO webhook_deliveries
               (endpoint_id, position, organization_id, event_type, next_attempt_at)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (endpoint_id, position) DO NOTHING";
    let params = params![endpoint_id, position, organization_id, event_type, now];
    dialect::execute(backend, sql, params).await?;
    Ok(())
}

/// A delivery owed.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub endpoint_id: String,
    pub position: i64,
    pub organization_id: String,
    pub event_type: String,
    pub attempts: i64,
    pub first_attempt_at: Option<i64>,
    pub next_attempt_at: i64,
    pub parked_at: Option<i64>,
    pub last_error: Option<String>,
}

type Row = (
    String,
    i64,
    String,
    String,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
);

fn from_row(row: Row) -> Delivery {
    let (
        endpoint_id,
        position,
        organization_id,
        event_type,
        attempts,
        first_attempt_at,
        next_attempt_at,
        parked_at,
        last_error,
    ) = row;
    Delivery {
        endpoint_id,
        position,
        organization_id,
        event_type,
        attempts,
        first_attempt_at,
        next_attempt_at,
        parked_at,
        last_error,
    }
}

const COLUMNS: &str = "d.endpoint_id, d.position, d.organization_id, d.event_type, d.attempts, \
                       d.first_attempt_at, d.next_attempt_at, d.parked_at, d.last_error";

/// The first delivery owed to each endpoint: the only one that may be tried (per-endpoint
/// order), unless it is parked, which holds the rest.
pub async fn heads(backend: &Backend) -> Result<Vec<Delivery>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_deliveries d
         JOIN (SELECT endpoint_id, MIN(position) AS first FROM webhook_deliveries
               GROUP BY endpoint_id) h
         ON h.endpoint_id = d.endpoint_id AND h.first = d.position
         ORDER BY d.next_attempt_at"
    );
    let rows: Vec<Row> = dialect::fetch_all(backend, &sql, &[]).await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// The delivery owed to `endpoint_id` for `position`, if it still is.
pub async fn delivery(
    backend: &Backend,
    endpoint_id: &str,
    position: i64,
) -> Result<Option<Delivery>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_deliveries d WHERE d.endpoint_id = $1 AND d.position = $2"
    );
    let row: Option<Row> =
        dialect::fetch_optional(backend, &sql, params![endpoint_id, position]).await?;
    Ok(row.map(from_row))
}

/// Delivered: nothing more is owed for it.
pub async fn delivered(
    backend: &Backend,
    endpoint_id: &str,
    position: i64,
) -> Result<(), StoreError> {
    let sql = "DELETE FROM webhook_deliveries WHERE endpoint_id = $1 AND position = $2";
    dialect::execute(backend, sql, params![endpoint_id, position]).await?;
    Ok(())
}

/// A failed attempt: tried again at `next_attempt_at`, or parked (`parked_at`).
pub async fn failed(
    backend: &Backend,
    endpoint_id: &str,
    position: i64,
    first_attempt_at: i64,
    next_attempt_at: i64,
    parked_at: Option<i64>,
    error: &str,
) -> Result<(), StoreError> {
    let sql = "UPDATE webhook_deliveries SET attempts = attempts + 1, first_attempt_at = $3,
               next_attempt_at = $4, parked_at = $5, last_error = $6
               WHERE endpoint_id = $1 AND position = $2";
    let params = params![
        endpoint_id,
        position,
        first_attempt_at,
        next_attempt_at,
        parked_at,
        error,
    ];
    dialect::execute(backend, sql, params).await?;
    Ok(())
}

/// The organization's parked deliveries, oldest position first.
pub async fn parked(backend: &Backend, organization_id: Uuid) -> Result<Vec<Delivery>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_deliveries d
         WHERE d.organization_id = $1 AND d.parked_at IS NOT NULL
         ORDER BY d.position, d.endpoint_id"
    );
    let rows: Vec<Row> = dialect::fetch_all(backend, &sql, params![organization_id]).await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Unparks a delivery of the organization for a fresh round of attempts from `now`; false when
/// there is no such parked delivery.
pub async fn redeliver(
    backend: &Backend,
    organization_id: Uuid,
    endpoint_id: Uuid,
    position: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let sql = "UPDATE webhook_deliveries SET parked_at = NULL, attempts = 0,
               first_attempt_at = NULL, next_attempt_at = $4
               WHERE organization_id = $1 AND endpoint_id = $2 AND position = $3
               AND parked_at IS NOT NULL";
    let params = params![organization_id, endpoint_id, position, now];
    Ok(dialect::execute(backend, sql, params).await? > 0)
}

/// The positions still owed (or parked) to any endpoint of the organization, oldest first.
pub async fn owed_positions(
    backend: &Backend,
    organization_id: Uuid,
) -> Result<Vec<i64>, StoreError> {
    let sql = "SELECT DISTINCT position FROM webhook_deliveries WHERE organization_id = $1
               ORDER BY position";
    let rows: Vec<(i64,)> = dialect::fetch_all(backend, sql, params![organization_id]).await?;
    Ok(rows.into_iter().map(|(position,)| position).collect())
}

/// Forgets the deliveries of the organization's event at `position`, to every endpoint (its
/// conversation's customer was erased: nothing of it goes out any more).
pub async fn forget_position(
    backend: &Backend,
    organization_id: Uuid,
    position: i64,
) -> Result<(), StoreError> {
    let sql = "DELETE FROM webhook_deliveries WHERE organization_id = $1 AND position = $2";
    dialect::execute(backend, sql, params![organization_id, position]).await?;
    Ok(())
}
