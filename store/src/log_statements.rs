//! The log's SQL, written once for both backends. Every statement here numbers its parameters
//! `$1`, `$2`… in order of appearance, which sqlx binds on either backend and rusqlite (the
//! SQLite writer) binds as SQLite's numbered parameters. What must differ stays in `sqlite/`
//! and `postgres/`: the readable head (Postgres's transaction horizon), lists bound as one
//! value (`json_each` / `ANY`), column types (text times and JSON on SQLite), erasure.

use crate::bind_all;
use crate::dialect::Param;
use crate::error::StoreError;
use crate::event::StoredEvent;
use crate::log::Backend;
use crate::{postgres, sqlite};

/// An event's columns, as `sqlite::row_to_event` and `postgres::row_to_event` read them.
pub(crate) const COLUMNS: &str = "position, event_id, aggregate_type, aggregate_id, sequence, \
                                  event_type, event_version, payload, actor, recorded_at, \
                                  idempotency_key";

/// [`COLUMNS`] with `payload` as `payload_expression`: the same columns in the same places.
pub(crate) fn columns_with_payload(payload_expression: &str) -> String {
    COLUMNS.replacen("payload", payload_expression, 1)
}

/// An idempotency key's record, before the events it covers: `(key, request_hash, created_at)`.
/// A second request with the same key fails here on the primary key, inside the append.
pub(crate) const INSERT_IDEMPOTENCY_KEY: &str =
    "INSERT INTO idempotency_keys (key, request_hash, created_at) VALUES ($1, $2, $3)";

/// The positions an idempotency key's events took: `(first, last, key)`.
pub(crate) const SET_IDEMPOTENT_RANGE: &str =
    "UPDATE idempotency_keys SET first_position = $1, last_position = $2 WHERE key = $3";

/// A stream's version (0 without events), the expected-version check: `(type, id)`.
pub(crate) const STREAM_VERSION: &str = "SELECT COALESCE(MAX(sequence), 0) FROM events \
                                         WHERE aggregate_type = $1 AND aggregate_id = $2";

/// One event; its position comes back.
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO events (event_id, aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, actor, recorded_at, idempotency_key) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING position";

/// A subject's key, made the first time one of its events is sealed: `(subject, key,
/// created_at)`. An erased subject keeps its row without a key, so it never gets a new one.
pub(crate) const INSERT_SUBJECT_KEY: &str =
    "INSERT INTO subject_keys (subject, key, created_at) VALUES ($1, $2, $3) \
     ON CONFLICT (subject) DO NOTHING";

/// A subject's key (`NULL` once erased).
pub(crate) const SUBJECT_KEY: &str = "SELECT key FROM subject_keys WHERE subject = $1";

/// A stream's snapshot under one fold version: `(type, id, fold_version)`.
pub(crate) const LOAD_SNAPSHOT: &str = "SELECT version, state FROM snapshots \
     WHERE aggregate_type = $1 AND aggregate_id = $2 AND fold_version = $3";

/// Keeps a snapshot unless a later one is there: `(type, id, fold_version, version, state,
/// taken_at)`.
pub(crate) const SAVE_SNAPSHOT: &str =
    "INSERT INTO snapshots (aggregate_type, aggregate_id, fold_version, version, state, taken_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (aggregate_type, aggregate_id, fold_version) DO UPDATE \
     SET version = excluded.version, state = excluded.state, taken_at = excluded.taken_at \
     WHERE excluded.version > snapshots.version";

/// A recursive `WITH` term named `name`: a binary search over the stream `($1, $2)`'s
/// sequences for the last event at or before the position `position` (a parameter). Its row
/// with `lo >= hi` holds that event's sequence, 0 when the stream has none there. A stream's
/// sequence grows with the position, so each step looks one sequence up in the stream's index
/// (the first event at or after the middle: a gap in the sequences cannot mislead it): about
/// 2·log₂(events) lookups, whatever the stream's length and wherever `position` falls — where
/// walking the index from either end costs every event passed on the way.
pub(crate) fn sequence_at(name: &str, position: &str) -> String {
    let middle = "(lo + hi + 1) / 2";
    let found = format!(
        "(SELECT position FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         AND sequence >= {middle} ORDER BY sequence LIMIT 1) <= {position}"
    );
    format!(
        "{name}(lo, hi) AS (\
         SELECT CAST(0 AS BIGINT), CAST(COALESCE((SELECT MAX(sequence) FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2), 0) AS BIGINT) \
         UNION ALL \
         SELECT CASE WHEN {found} THEN {middle} ELSE lo END, \
                CASE WHEN {found} THEN hi ELSE {middle} - 1 END \
         FROM {name} WHERE lo < hi)"
    )
}

/// The conversation a queue's event names, as the index `events_naming_in_queue` (SQLite) or
/// `events_queue_naming` (Postgres, a partial index) holds it: a statement must say it in
/// these very words for the index to be used.
pub(crate) fn named_in_queue(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite(..) => {
            "(CASE WHEN aggregate_type = 'queue' THEN json_extract(payload, '$.conversation_id') END)"
        }
        Backend::Postgres(_) => "payload->>'conversation_id'",
    }
}

/// The events a `SELECT {COLUMNS} FROM events …` returns, decoded by the backend's rules.
pub(crate) async fn events(
    backend: &Backend,
    sql: &str,
    params: &[Param],
) -> Result<Vec<StoredEvent>, StoreError> {
    match backend {
        Backend::Sqlite(_, readers) => sqlite::events(readers, sql, params).await,
        Backend::Postgres(pool) => {
            postgres::rows_to_events(&bind_all!(sqlx::query(sql), params).fetch_all(pool).await?)
        }
    }
}
