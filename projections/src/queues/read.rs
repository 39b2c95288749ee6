//! What the HTTP layer asks of the queues read model's tables (queues and their waiting lines): each function
//! answers one question of API.md from the `rm_` tables alone (never the log), as plain
//! serializable structs. Authorization is the caller's: these functions say what is, not who
//! may see it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::log::Backend;
use uuid::Uuid;

use crate::database::{fetch_all, fetch_optional};
use crate::params;
use crate::reading::{id, json, opt_time, time, Result};

/// A queue as `GET /v1/orgs/{org}/queues` and `GET /v1/queues/{queue}` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queue {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub open: bool,
    pub waiting: i64,
    /// Seconds the longest-waiting customer has waited, at the time of the query.
    pub oldest_wait_seconds: Option<i64>,
    pub handlers: Vec<Uuid>,
    /// The whole of the settings (`QueueSettings` as JSON).
    pub settings: serde_json::Value,
}

const QUEUE_SELECT: &str = "SELECT q.queue_id, q.organization_id, q.name, q.open, q.settings,
    (SELECT COUNT(*) FROM rm_queue_waiting w WHERE w.queue_id = q.queue_id),
    (SELECT MIN(w.since) FROM rm_queue_waiting w WHERE w.queue_id = q.queue_id)
    FROM rm_queues q";

type QueueRow = (String, String, String, i64, String, i64, Option<i64>);

async fn queue_from(backend: &Backend, row: QueueRow, now: DateTime<Utc>) -> Result<Queue> {
    let (queue_id, org, name, open, settings, waiting, oldest) = row;
    let handlers: Vec<(String,)> = fetch_all(
        backend,
        "SELECT agent_id FROM rm_queue_handlers WHERE queue_id = $1 ORDER BY agent_id",
        params![queue_id.as_str()],
    )
    .await?;
    Ok(Queue {
        id: id(&queue_id)?,
        organization_id: id(&org)?,
        name,
        open: open != 0,
        waiting,
        oldest_wait_seconds: opt_time(oldest)?.map(|since| (now - since).num_seconds().max(0)),
        handlers: handlers
            .iter()
            .map(|(agent,)| id(agent))
            .collect::<Result<_>>()?,
        settings: json(&settings)?,
    })
}

/// The organization's queues, oldest first.
pub async fn queues_of(backend: &Backend, organization_id: Uuid) -> Result<Vec<Queue>> {
    let rows: Vec<QueueRow> = fetch_all(
        backend,
        &format!("{QUEUE_SELECT} WHERE q.organization_id = $1 ORDER BY q.created_position"),
        params![organization_id],
    )
    .await?;
    let now = Utc::now();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(queue_from(backend, row, now).await?);
    }
    Ok(out)
}

pub async fn queue(backend: &Backend, queue_id: Uuid) -> Result<Option<Queue>> {
    let row: Option<QueueRow> = fetch_optional(
        backend,
        &format!("{QUEUE_SELECT} WHERE q.queue_id = $1"),
        params![queue_id],
    )
    .await?;
    match row {
        Some(row) => Ok(Some(queue_from(backend, row, Utc::now()).await?)),
        None => Ok(None),
    }
}

/// One customer in a queue's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub conversation_id: Uuid,
    /// 1 = next to be picked.
    pub queue_position: i64,
    pub since: DateTime<Utc>,
}

/// Customers waiting in every queue's line together, and since when the longest has waited
/// (`GET /metrics`: per queue would make queue ids labels).
pub async fn waiting_overall(backend: &Backend) -> Result<(i64, Option<DateTime<Utc>>)> {
    let row: Option<(i64, Option<i64>)> = fetch_optional(
        backend,
        "SELECT COUNT(*), MIN(since) FROM rm_queue_waiting",
        params![],
    )
    .await?;
    let (waiting, oldest) = row.unwrap_or((0, None));
    Ok((waiting, opt_time(oldest)?))
}

/// A queue's line, next first.
pub async fn waiting_line(backend: &Backend, queue_id: Uuid) -> Result<Vec<Waiting>> {
    let rows: Vec<(String, i64)> = fetch_all(
        backend,
        "SELECT conversation_id, since FROM rm_queue_waiting WHERE queue_id = $1 ORDER BY rank",
        params![queue_id],
    )
    .await?;
    rows.into_iter()
        .zip(1..)
        .map(|((conversation, since), place)| {
            Ok(Waiting {
                conversation_id: id(&conversation)?,
                queue_position: place,
                since: time(since)?,
            })
        })
        .collect()
}
