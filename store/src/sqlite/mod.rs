//! The log in one SQLite file, `DATA_DIR/jono.db`: WAL, `synchronous=FULL` so that each commit
//! is fsynced before we answer (sqlite-es opens with NORMAL, which may lose the last commits on
//! power loss). One writer per process, so positions commit in order and readers need no filter.
//!
//! The read models live in a file of their own, `DATA_DIR/read-models.db`: SQLite has one write
//! lock per database file, and with the read models in the log's file every projector commit
//! held the log's appends back (and an append held up to seven projector commits). Three pools:
//! the log's writer (a rusqlite connection to the log's file alone, so its `BEGIN IMMEDIATE`
//! locks nothing else, running each batch in a blocking thread), the
//! read models' writers (their file alone), and everybody's reads and the other small writes,
//! on the log's file with the read models' attached as `rm`, so a query may name tables of
//! both without saying where they live.
//!
//! The files: this one, opening the pools and reading the log; `writer`, the log's writer (a
//! batch of appends in one transaction, a request's own failure rolled back alone); `erasure`,
//! reading subjects' keys and erasing a subject.

mod erasure;
pub mod readers;
pub(crate) mod wal;
mod writer;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqlitePool};
use uuid::Uuid;

use crate::error::{describe_io, describe_sqlx, StoreError};
use crate::event::StoredEvent;
use crate::log_statements::{self as statements, COLUMNS};
use crate::snapshot::StoredSnapshot;

pub(crate) use erasure::{erase_subject, subject_keys, truncate_wal};
pub use readers::Readers;
pub(crate) use writer::Writer;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL UNIQUE,
    aggregate_type  TEXT NOT NULL,
    aggregate_id    TEXT NOT NULL,
    sequence        INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    event_version   TEXT NOT NULL,
    payload         TEXT NOT NULL,
    actor           TEXT,
    recorded_at     TEXT NOT NULL,
    idempotency_key TEXT,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);
-- What the queues recorded of each conversation, for its replay (`EventStore::load_queue_events_naming`):
-- every row is in it, the others under NULL. Not a partial index (`WHERE aggregate_type =
-- 'queue'`), which an earlier build made: with one, SQLite prepares every statement that binds
-- `aggregate_type` again at each new value (to see whether the partial index applies), and
-- SendMessage/s fell by 15 %.
DROP INDEX IF EXISTS events_queue_naming;
CREATE INDEX IF NOT EXISTS events_naming_in_queue
    ON events ((CASE WHEN aggregate_type = 'queue'
                THEN json_extract(payload, '$.conversation_id') END), position);
CREATE TABLE IF NOT EXISTS erasure_guard (active INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS events_update_only_erasure BEFORE UPDATE ON events
WHEN NOT (EXISTS (SELECT 1 FROM erasure_guard)
          AND NEW.position = OLD.position AND NEW.event_id = OLD.event_id
          AND NEW.aggregate_type = OLD.aggregate_type AND NEW.aggregate_id = OLD.aggregate_id
          AND NEW.sequence = OLD.sequence AND NEW.event_type = OLD.event_type)
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE refused'); END;
DROP TRIGGER IF EXISTS events_no_update;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE refused'); END;
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key            TEXT PRIMARY KEY,
    request_hash   TEXT NOT NULL,
    first_position INTEGER,
    last_position  INTEGER,
    created_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS subject_keys (
    subject    TEXT PRIMARY KEY,
    key        BLOB,
    created_at TEXT NOT NULL,
    erased_at  TEXT
);
CREATE TABLE IF NOT EXISTS sealing (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    from_position INTEGER NOT NULL
);
INSERT OR IGNORE INTO sealing (id, from_position)
    SELECT 1, COALESCE(MAX(position), 0) + 1 FROM events;
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    fold_version   INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    state          TEXT NOT NULL,
    taken_at       TEXT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, fold_version)
);
"#;

/// The read models' file in the data directory.
pub const READ_MODELS_FILE: &str = "read-models.db";

/// The pools of one data directory; see the module's comment.
pub(crate) struct Pools {
    /// The log's writer: `jono.db` alone, through a connection of its own ([`Writer`]).
    pub(crate) writer: Writer,
    /// Reads and small writes: `jono.db` with `read-models.db` attached.
    pub(crate) reader: SqlitePool,
    /// The projectors' writes: `read-models.db` alone.
    pub(crate) read_models: SqlitePool,
    /// Reads in the calling thread: `jono.db` with `read-models.db` attached, as `reader`.
    pub(crate) readers: Readers,
    /// The same of `read-models.db` alone, as `read_models`.
    pub(crate) read_model_readers: Readers,
}

pub(crate) async fn open(data_dir: &Path) -> Result<Pools, StoreError> {
    let dir_error = |reason: String| StoreError::DataDir {
        path: data_dir.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(data_dir).map_err(|e| dir_error(describe_io(&e)))?;
    // SQLite's own message for an unwritable directory is "unable to open database file";
    // trying a file first gives the operator the real reason.
    let probe = data_dir.join(".jono-write-probe");
    std::fs::write(&probe, b"probe").map_err(|e| dir_error(describe_io(&e)))?;
    let _ = std::fs::remove_file(&probe);

    let log = SqliteConnectOptions::new()
        .filename(data_dir.join("jono.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .pragma("secure_delete", "ON")
        .pragma(
            "wal_autocheckpoint",
            wal::AUTOCHECKPOINT_BACKSTOP.to_string(),
        )
        .pragma("journal_size_limit", wal::WAL_SIZE_LIMIT.to_string());
    let setup = pool_options()
        .max_connections(1)
        .connect_with(log.clone())
        .await
        .map_err(|e| dir_error(describe_sqlx(&e)))?;
    sqlx::raw_sql(SCHEMA)
        .execute(&setup)
        .await
        .map_err(|e| StoreError::Migration(describe_sqlx(&e)))?;
    move_read_models_out(&setup).await?;
    setup.close().await;
    let writer = Writer::new(data_dir.join("jono.db"));

    // The read models' file first: it is created here, in WAL mode, before the readers'
    // connections attach it.
    let read_models = open_read_models(data_dir).await?;
    let attached = data_dir.join(READ_MODELS_FILE);
    let attached = attached.to_string_lossy().into_owned();
    let reader = pool_options()
        .max_connections(8)
        .after_connect(move |conn, _meta| {
            let attached = attached.clone();
            Box::pin(async move {
                sqlx::query("ATTACH DATABASE ? AS rm")
                    .bind(attached)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect_with(log)
        .await
        .map_err(|e| dir_error(describe_sqlx(&e)))?;
    let readers = Readers::new(
        data_dir.join("jono.db"),
        Some(data_dir.join(READ_MODELS_FILE)),
    );
    let read_model_readers = Readers::new(data_dir.join(READ_MODELS_FILE), None);
    Ok(Pools {
        writer,
        reader,
        read_models,
        readers,
        read_model_readers,
    })
}

/// Drops the read models a version before `read-models.db` kept in the log's file (their
/// tables and checkpoints): left there, they would hide the live ones from every query, which
/// looks in the log's file first. The projectors then build the new file from the log.
async fn move_read_models_out(pool: &SqlitePool) -> Result<(), StoreError> {
    let migration = |e: sqlx::Error| StoreError::Migration(describe_sqlx(&e));
    // Virtual (full-text) tables first: dropping one drops its shadow tables with it.
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' \
         AND (name LIKE 'rm\\_%' ESCAPE '\\' \
              OR name IN ('projection_checkpoints', 'projection_failures')) \
         ORDER BY sql NOT LIKE 'CREATE VIRTUAL%'",
    )
    .fetch_all(pool)
    .await
    .map_err(migration)?;
    if tables.is_empty() {
        return Ok(());
    }
    tracing::info!(
        tables = tables.len(),
        "moving the read models out of the log's file into {READ_MODELS_FILE}: they are built \
         again from the log"
    );
    for (table,) in tables {
        sqlx::query(&format!("DROP TABLE IF EXISTS main.\"{table}\""))
            .execute(pool)
            .await
            .map_err(migration)?;
    }
    Ok(())
}

/// The options both pools share. A connection handed back still inside a transaction is closed,
/// not reused: when the disk fills, SQLite rolls a transaction back by itself (`SQLITE_FULL`),
/// sqlx's own `ROLLBACK` then fails, and sqlx still counts the connection as in a transaction, so
/// every later `BEGIN` on it would fail ("begin_with at non-zero transaction depth") — the
/// projectors stopped for good after a full disk, even once space was freed. The ping first
/// lets a rollback queued by a dropped transaction run.
fn pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new().after_release(|conn, _meta| {
        Box::pin(async move {
            conn.ping().await?;
            Ok(!conn.is_in_transaction())
        })
    })
}

/// The read models' pool, on their own file, with `synchronous=NORMAL`: their commits are not
/// each flushed to disk. A read model is a fold of the log, checkpointed with its rows, so a
/// power loss can only take back its last commits, rows and checkpoint together, and the
/// projector applies those events again; the log's own commits keep `synchronous=FULL`.
async fn open_read_models(data_dir: &Path) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(data_dir.join(READ_MODELS_FILE))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .pragma("secure_delete", "ON")
        .pragma(
            "wal_autocheckpoint",
            wal::AUTOCHECKPOINT_BACKSTOP.to_string(),
        )
        .pragma("journal_size_limit", wal::WAL_SIZE_LIMIT.to_string());
    pool_options()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            reason: describe_sqlx(&e),
        })
}

/// Times are stored as fixed-width RFC 3339 text in UTC, so text order is time order.
fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("recorded_at {text:?}: {e}")))
}

fn json_text(value: &serde_json::Value) -> String {
    value.to_string()
}

/// An event's row as `COLUMNS` lists them, decoded.
fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredEvent, StoreError>> {
    let event_id: String = row.get(1)?;
    let payload: String = row.get(7)?;
    let actor: Option<String> = row.get(8)?;
    let recorded_at: String = row.get(9)?;
    let (position, aggregate_type, aggregate_id, sequence, event_type, event_version) = (
        row.get(0)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    );
    let idempotency_key: Option<String> = row.get(10)?;
    let json = |text: &str| {
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("json column: {e}")))
    };
    let decoded = || {
        Ok(StoredEvent {
            position,
            event_id: Uuid::parse_str(&event_id)
                .map_err(|e| StoreError::Corrupt(format!("event_id {event_id:?}: {e}")))?,
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            event_version,
            payload: json(&payload)?,
            actor: actor.as_deref().map(json).transpose()?,
            recorded_at: parse_time(&recorded_at)?,
            idempotency_key,
        })
    };
    Ok(decoded())
}

/// The events a `SELECT {COLUMNS} FROM events …` returns, read in this thread.
pub(crate) async fn events(
    readers: &Readers,
    sql: &str,
    params: &[crate::dialect::Param],
) -> Result<Vec<StoredEvent>, StoreError> {
    readers
        .read(|connection| {
            let mut statement = connection.prepare_cached(sql)?;
            readers::bind(&mut statement, params)?;
            let mut rows = statement.raw_query();
            let mut events = Vec::new();
            while let Some(row) = rows.next()? {
                events.push(row_to_event(row)?);
            }
            Ok(events)
        })
        .await
        .map_err(crate::dialect::direct_error)?
        .into_iter()
        .collect()
}

pub(crate) async fn head(readers: &Readers) -> Result<i64, StoreError> {
    readers
        .read(|connection| {
            connection
                .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?
                .query_row([], |row| row.get(0))
        })
        .await
        .map_err(crate::dialect::direct_error)
}

/// Up to `limit` events after `position`; those of the `skipped` types with a `null` payload.
pub(crate) async fn read_after(
    readers: &Readers,
    position: i64,
    limit: i64,
    skipped: &[&str],
) -> Result<Vec<StoredEvent>, StoreError> {
    if skipped.is_empty() {
        let sql =
            format!("SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
        return events(readers, &sql, &[position.into(), limit.into()]).await;
    }
    let columns = crate::log_statements::columns_with_payload(
        "CASE WHEN event_type IN (SELECT value FROM json_each($3)) THEN 'null' ELSE payload END",
    );
    let sql =
        format!("SELECT {columns} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
    let skipped = serde_json::to_string(skipped)
        .map_err(|e| StoreError::Corrupt(format!("a list of types: {e}")))?;
    events(
        readers,
        &sql,
        &[position.into(), limit.into(), skipped.into()],
    )
    .await
}

pub(crate) async fn read_positions(
    readers: &Readers,
    positions: &[i64],
) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events \
         WHERE position IN (SELECT value FROM json_each($1)) ORDER BY position"
    );
    let list = serde_json::to_string(positions)
        .map_err(|e| StoreError::Corrupt(format!("a list of positions: {e}")))?;
    events(readers, &sql, &[list.into()]).await
}

/// How often a process looks for events another process (`jono admin …`, a second `jono
/// serve` on the same file) committed to the log: SQLite has no notifications across
/// processes, and this one's own commits wake its readers at once anyway.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Raises the shared head when the file's head passes it, so that projectors and WebSocket
/// subscribers follow other processes' commits within a quarter of a second.
pub(crate) fn spawn_watcher(
    readers: Readers,
    shared: std::sync::Arc<crate::log::Shared>,
    mut shutdown: tokio::sync::watch::Receiver<()>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(WATCH_EVERY) => {}
            }
            match head(&readers).await {
                Ok(file_head) => {
                    shared
                        .head
                        .send_if_modified(|known| crate::log::raise(known, file_head));
                }
                Err(error) => tracing::debug!(%error, "cannot read the event head"),
            }
        }
    });
}

/// Checkpoints `jono.db`'s and `read-models.db`'s write-ahead logs off the committing
/// threads ([`wal`]) until `shutdown`'s sender is dropped.
pub(crate) fn spawn_checkpointer(data_dir: &Path, shutdown: tokio::sync::watch::Receiver<()>) {
    wal::spawn_checkpointer(
        vec![data_dir.join("jono.db"), data_dir.join(READ_MODELS_FILE)],
        shutdown,
    );
}

pub(crate) async fn load_snapshot(
    readers: &Readers,
    aggregate_type: &str,
    aggregate_id: &str,
    fold_version: u32,
) -> Result<Option<StoredSnapshot>, StoreError> {
    let params = crate::dialect::params![aggregate_type, aggregate_id, i64::from(fold_version)];
    let row: Option<(i64, String)> = readers
        .read(|connection| readers::first(connection, statements::LOAD_SNAPSHOT, params))
        .await
        .map_err(crate::dialect::direct_error)?;
    row.map(|(version, state)| {
        let state = serde_json::from_str(&state)
            .map_err(|e| StoreError::Corrupt(format!("a snapshot's state: {e}")))?;
        Ok(StoredSnapshot { version, state })
    })
    .transpose()
}

pub(crate) async fn save_snapshot(
    pool: &SqlitePool,
    aggregate_type: &str,
    aggregate_id: &str,
    fold_version: u32,
    snapshot: &StoredSnapshot,
) -> Result<(), StoreError> {
    sqlx::query(statements::SAVE_SNAPSHOT)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(i64::from(fold_version))
        .bind(snapshot.version)
        .bind(snapshot.state.to_string())
        .bind(Utc::now().to_rfc3339())
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    /// A transaction that SQLite ended by itself (as it does on `SQLITE_FULL`) leaves sqlx
    /// counting the connection as in a transaction; the pool must not hand it out again.
    #[tokio::test]
    async fn a_connection_left_in_a_transaction_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("pool.db"))
            .create_if_missing(true);
        let pool = pool_options()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let mut tx = pool.begin().await.unwrap();
        // SQLite's own rollback, behind sqlx's back; sqlx's ROLLBACK on drop then fails.
        sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
        drop(tx);
        for _ in 0..3 {
            // As the projectors and the log's writer begin theirs.
            let tx = pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .expect("a usable connection");
            tx.commit().await.unwrap();
        }
    }
}
