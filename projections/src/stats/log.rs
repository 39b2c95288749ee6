//! Statistics read from the store: the whole log in commit order through the fold, or one
//! queue's stream for the queue at an instant.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::conversation::Conversation;
use domain::organization::Organization;
use domain::queue::{Queue, QueueEvent};
use domain::Event;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use store::{Backend, EventStore, StoreError, StoredEvent};
use uuid::Uuid;

use super::figures::{compute, compute_buckets, micros, Bucket, By, QueueStats, MAX_BUCKETS};
use super::fold::{Samples, StatsFold, EVENT_TYPES};
use super::samples::{samples_from_rows, StatsRowError};
use super::Scope;

/// How many events one read of the log takes.
const BATCH: usize = 10_000;
/// How many positions one filtered SQLite statement spans.
const SPAN: i64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event at position {position} is unreadable: {reason}")]
    Corrupt { position: i64, reason: String },
    #[error("there is no queue {0} in the log")]
    UnknownQueue(Uuid),
    #[error("there is no organization {0} in the log")]
    UnknownOrganization(Uuid),
    #[error("queue {queue_id} did not exist yet at {at}")]
    NotYetCreated { queue_id: Uuid, at: DateTime<Utc> },
    #[error("the window is empty: from ({from}) must be before to ({to})")]
    EmptyWindow {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error("too many buckets (more than {MAX_BUCKETS}): narrow the window or use --by day")]
    TooManyBuckets,
}

/// `jono stats`' JSON: `{from, to, total, buckets}`; `buckets` is empty without `--by`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    pub total: QueueStats,
    pub buckets: Vec<Bucket>,
}

/// API.md's statistics of `scope` over `from ≤ t < to`, read from the log alone. `to` defaults
/// to now, `from` to the beginning of the log.
pub async fn stats_from_log(
    store: &EventStore,
    scope: Scope,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    by: Option<By>,
) -> Result<Report, StatsError> {
    let to = window_end(from, to)?;
    let mut fold = StatsFold::for_scope(scope);
    let mut organization_known = false;
    let organization_stream = match scope {
        Scope::Organization(id) => Some(id.to_string()),
        Scope::Queue(_) => None,
    };
    // Reading the next batch overlaps with folding this one (two cores, half the wall time).
    let (batches, mut received) = tokio::sync::mpsc::channel(2);
    let filter = sql_filter(store, scope).await?;
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut position = 0;
            loop {
                let (batch, next) = match read_batch(&store, position, filter.as_ref()).await {
                    Ok((rows, next)) => (Ok(rows), next),
                    Err(error) => (Err(error), None),
                };
                if batches.send(batch).await.is_err() {
                    return;
                }
                match next {
                    Some(next) => position = next,
                    None => return,
                }
            }
        })
    };
    while let Some(batch) = received.recv().await {
        for row in batch? {
            if let Some(id) = &organization_stream {
                organization_known |= row.aggregate_type == Organization::TYPE
                    && row.event_type == "OrganizationCreated"
                    && row.aggregate_id == *id;
            }
            if !fold.wants(&row.aggregate_type, &row.aggregate_id, &row.event_type) {
                continue;
            }
            let (position, at) = (row.position, row.recorded_at);
            fold.apply(position, at, &row.decode()?);
        }
    }
    // The reader has stopped: it sent its last (empty or failed) batch.
    let _ = reader.await;
    let samples = fold.into_samples();
    match scope {
        Scope::Queue(id) if !samples.queues.contains_key(&id) => {
            return Err(StatsError::UnknownQueue(id))
        }
        Scope::Organization(id) if !organization_known => {
            return Err(StatsError::UnknownOrganization(id))
        }
        _ => {}
    }
    report(&samples, scope, from, to, by)
}

/// API.md's statistics of `scope` over `from ≤ t < to` from the `stats` read model's rows: the
/// same samples the fold of the log gives (held to it by a test), through the same
/// [`compute`]. What `GET /v1/queues/{queue}/stats` answers; the caller checks that the scope
/// exists.
pub async fn stats_from_rows(
    backend: &Backend,
    scope: Scope,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    by: Option<By>,
) -> Result<Report, StatsError> {
    let to = window_end(from, to)?;
    let samples = samples_from_rows(backend, scope)
        .await
        .map_err(|error| match error {
            StatsRowError::Sql(error) => StatsError::Store(StoreError::from(error)),
            StatsRowError::Corrupt { .. } => StatsError::Corrupt {
                position: 0,
                reason: error.to_string(),
            },
        })?;
    report(&samples, scope, from, to, by)
}

/// The window's end (`to`, or now), once it is known not to be empty.
fn window_end(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<DateTime<Utc>, StatsError> {
    let to = to.unwrap_or_else(Utc::now);
    match from.filter(|from| *from >= to) {
        Some(from) => Err(StatsError::EmptyWindow { from, to }),
        None => Ok(to),
    }
}

fn report(
    samples: &Samples,
    scope: Scope,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    by: Option<By>,
) -> Result<Report, StatsError> {
    let total = compute(samples, scope, from, to);
    let buckets = match by {
        None => Vec::new(),
        Some(by) => {
            compute_buckets(samples, scope, from, to, by).ok_or(StatsError::TooManyBuckets)?
        }
    };
    Ok(Report {
        from,
        to,
        total,
        buckets,
    })
}

fn decode(stored: StoredEvent) -> Result<Event, StatsError> {
    Event::decode(&stored.aggregate_type, stored.payload).map_err(|error| StatsError::Corrupt {
        position: stored.position,
        reason: error.to_string(),
    })
}

/// What the fold needs of a stored event.
struct Row {
    position: i64,
    aggregate_type: String,
    aggregate_id: String,
    event_type: String,
    recorded_at: DateTime<Utc>,
    payload: Payload,
}

enum Payload {
    Text(String),
    Json(serde_json::Value),
}

impl Row {
    fn decode(self) -> Result<Event, StatsError> {
        let position = self.position;
        let corrupt = |reason: String| StatsError::Corrupt { position, reason };
        match self.payload {
            Payload::Json(value) => Event::decode(&self.aggregate_type, value)
                .map_err(|error| corrupt(error.to_string())),
            // Statistics need no personal data: sealed fields read as erased, keys unread.
            Payload::Text(text) if text.contains(store::seal::SEALED) => {
                let mut value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|error| corrupt(error.to_string()))?;
                store::seal::without_keys(&mut value);
                Event::decode(&self.aggregate_type, value)
                    .map_err(|error| corrupt(error.to_string()))
            }
            // Straight from the text to the typed event: no `Value` in between.
            Payload::Text(text) => match self.aggregate_type.as_str() {
                Queue::TYPE => serde_json::from_str(&text).map(Event::Queue),
                Conversation::TYPE => serde_json::from_str(&text).map(Event::Conversation),
                other => {
                    return Err(corrupt(format!(
                        "a {other} event is not a statistics event"
                    )))
                }
            }
            .map_err(|error| corrupt(error.to_string())),
        }
    }
}

/// What the SQL of [`read_batch`] keeps on SQLite: the scope's queue streams, the conversations
/// that ever waited in them, up to the log's head when the statistics began (so that a
/// conversation joining meanwhile cannot be half read). `None` keeps every event of the types.
struct SqlFilter {
    head: i64,
    queues: Vec<String>,
    /// A JSON array of conversation ids, for `json_each`.
    conversations: String,
}

/// Finds the scope's queues (an organization's by one scan for their `QueueCreated`) and their
/// conversations (one scan of their streams). Most of a log is messages and other queues'
/// conversations: leaving them in SQLite is what makes the statistics fast.
async fn sql_filter(store: &EventStore, scope: Scope) -> Result<Option<SqlFilter>, StatsError> {
    let Backend::Sqlite(pool, _) = store.backend() else {
        return Ok(None);
    };
    let failed = |error: sqlx::Error| StatsError::Store(StoreError::from(error));
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .map_err(failed)?;
    // Scanned a span of positions at a time: each statement stays short (and under sqlx's
    // slow-statement warning), and a large log never holds one read open for long.
    let spans = (0..head)
        .step_by(SPAN as usize)
        .map(|low| (low, (low + SPAN).min(head)));
    let queues: Vec<String> = match scope {
        Scope::Queue(id) => vec![id.to_string()],
        Scope::Organization(id) => {
            let mut queues = Vec::new();
            for (low, high) in spans.clone() {
                let found: Vec<String> = sqlx::query_scalar(
                    "SELECT aggregate_id FROM events WHERE position > ? AND position <= ? \
                     AND event_type = 'QueueCreated' AND aggregate_type = 'queue' \
                     AND json_extract(payload, '$.organization_id') = ?",
                )
                .bind(low)
                .bind(high)
                .bind(id.to_string())
                .fetch_all(pool)
                .await
                .map_err(failed)?;
                queues.extend(found);
            }
            queues
        }
    };
    let queue_list = serde_json::Value::from(queues.clone()).to_string();
    let mut conversations = std::collections::BTreeSet::new();
    for (low, high) in spans {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT json_extract(payload, '$.conversation_id') FROM events \
             WHERE position > ? AND position <= ? AND aggregate_type = 'queue' \
             AND event_type IN ('CustomerJoinedQueue', 'ConversationTransferred') \
             AND aggregate_id IN (SELECT value FROM json_each(?))",
        )
        .bind(low)
        .bind(high)
        .bind(&queue_list)
        .fetch_all(pool)
        .await
        .map_err(failed)?;
        conversations.extend(found);
    }
    let conversations: Vec<String> = conversations.into_iter().collect();
    Ok(Some(SqlFilter {
        head,
        queues,
        conversations: serde_json::Value::from(conversations).to_string(),
    }))
}

/// The next events after `position` that the statistics may read: the fold's types and
/// `OrganizationCreated`, and on SQLite only those [`SqlFilter`] keeps, with just the columns
/// needed — turning every row into a `StoredEvent` (its payload parsed) is what the time would
/// go on. Every `QueueCreated` is kept, and every transfer of one of the scope's conversations
/// (a transfer into another queue ends a handle in this one). Postgres reads the feed as
/// projectors do, and the fold skips what it does not want.
async fn read_batch(
    store: &EventStore,
    position: i64,
    filter: Option<&SqlFilter>,
) -> Result<(Vec<Row>, Option<i64>), StatsError> {
    match store.backend() {
        Backend::Sqlite(pool, _) => {
            let types = EVENT_TYPES
                .iter()
                .chain(["OrganizationCreated"].iter())
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ");
            let scope = match filter {
                None => String::new(),
                Some(_) => " AND position <= ? AND ( \
                     aggregate_type = 'organization' OR event_type = 'QueueCreated' \
                     OR (aggregate_type = 'queue' \
                         AND aggregate_id IN (SELECT value FROM json_each(?))) \
                     OR (aggregate_type = 'conversation' \
                         AND aggregate_id IN (SELECT value FROM json_each(?))) \
                     OR (event_type = 'ConversationTransferred' \
                         AND json_extract(payload, '$.conversation_id') \
                             IN (SELECT value FROM json_each(?))))"
                    .to_owned(),
            };
            let sql = format!(
                "SELECT position, aggregate_type, aggregate_id, event_type, payload, recorded_at \
                 FROM events WHERE position > ? AND event_type IN ({types}){scope} \
                 AND (event_type <> 'MessageSent' \
                      OR json_extract(payload, '$.author.kind') = 'agent') \
                 ORDER BY position LIMIT ?"
            );
            let mut query = sqlx::query(&sql).bind(position);
            let upto = filter.map(|filter| (position + SPAN).min(filter.head));
            if let (Some(filter), Some(upto)) = (filter, upto) {
                let queues = serde_json::Value::from(filter.queues.clone()).to_string();
                query = query
                    .bind(upto)
                    .bind(queues)
                    .bind(filter.conversations.clone())
                    .bind(filter.conversations.clone());
            }
            let rows = query
                .bind(BATCH as i64)
                .fetch_all(pool)
                .await
                .map_err(|error| StatsError::Store(StoreError::from(error)))?;
            let rows = rows.iter().map(sqlite_row).collect::<Result<Vec<_>, _>>()?;
            let last = rows.last().map(|row| row.position);
            let next = match (upto, filter) {
                // A full batch: the rest of the span follows.
                _ if rows.len() == BATCH => last,
                (Some(upto), Some(filter)) if upto < filter.head => Some(upto),
                (Some(_), Some(_)) => None,
                _ => last,
            };
            Ok((rows, next))
        }
        Backend::Postgres(_) => {
            let rows: Vec<Row> = store
                .read_after(position, BATCH)
                .await?
                .into_iter()
                .map(|stored| Row {
                    position: stored.position,
                    aggregate_type: stored.aggregate_type,
                    aggregate_id: stored.aggregate_id,
                    event_type: stored.event_type,
                    recorded_at: stored.recorded_at,
                    payload: Payload::Json(stored.payload),
                })
                .collect();
            let next = rows.last().map(|row| row.position);
            Ok((rows, next))
        }
    }
}

fn sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Result<Row, StatsError> {
    let position: i64 = row.try_get("position").map_err(column)?;
    let recorded_at: String = row.try_get("recorded_at").map_err(column)?;
    let recorded_at = DateTime::parse_from_rfc3339(&recorded_at)
        .map_err(|error| StatsError::Corrupt {
            position,
            reason: format!("recorded_at {recorded_at:?}: {error}"),
        })?
        .with_timezone(&Utc);
    Ok(Row {
        position,
        aggregate_type: row.try_get("aggregate_type").map_err(column)?,
        aggregate_id: row.try_get("aggregate_id").map_err(column)?,
        event_type: row.try_get("event_type").map_err(column)?,
        recorded_at,
        payload: Payload::Text(row.try_get("payload").map_err(column)?),
    })
}

fn column(error: sqlx::Error) -> StatsError {
    StatsError::Store(StoreError::Corrupt(error.to_string()))
}

/// One customer in the line of a [`QueueSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingCustomer {
    /// 1 for the next to be picked.
    pub position: usize,
    pub conversation_id: Uuid,
    /// When this wait began: the join, or the transfer into this queue.
    pub since: DateTime<Utc>,
    /// From `since` to the snapshot's instant, to the millisecond.
    pub waited_seconds: f64,
}

/// A queue as it stood at instant `at`: after every event of its stream recorded before `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    pub queue_id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub at: DateTime<Utc>,
    pub open: bool,
    pub waiting: Vec<WaitingCustomer>,
}

/// The queue at instant `at`, from its own stream: the `Queue` aggregate itself is folded, so the
/// line's order is the domain's (transfers in go first).
pub async fn queue_at(
    store: &EventStore,
    queue_id: Uuid,
    at: DateTime<Utc>,
) -> Result<QueueSnapshot, StatsError> {
    let stream = store
        .load_stream(Queue::TYPE, &queue_id.to_string())
        .await?;
    if stream.is_empty() {
        return Err(StatsError::UnknownQueue(queue_id));
    }
    let mut queue = Queue::default();
    let mut since: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for stored in stream.into_iter().take_while(|e| e.recorded_at < at) {
        let recorded_at = stored.recorded_at;
        let Event::Queue(event) = decode(stored)? else {
            continue;
        };
        if let QueueEvent::CustomerJoinedQueue {
            conversation_id, ..
        }
        | QueueEvent::ConversationTransferred {
            conversation_id, ..
        } = &event
        {
            since.insert(*conversation_id, recorded_at);
        }
        queue.apply(event);
    }
    if queue.id.is_none() {
        return Err(StatsError::NotYetCreated { queue_id, at });
    }
    let waiting = queue
        .waiting
        .iter()
        .enumerate()
        .map(|(index, conversation_id)| {
            let since = since.get(conversation_id).copied().unwrap_or(at);
            WaitingCustomer {
                position: index + 1,
                conversation_id: *conversation_id,
                since,
                waited_seconds: super::figures::seconds(micros(since, at)),
            }
        })
        .collect();
    Ok(QueueSnapshot {
        queue_id,
        organization_id: queue.organization_id,
        name: queue
            .settings
            .map(|settings| settings.name.as_str().to_owned())
            .unwrap_or_default(),
        at,
        open: queue.open,
        waiting,
    })
}
