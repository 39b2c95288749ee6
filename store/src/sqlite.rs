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

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use rusqlite::OptionalExtension;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row, SqlitePool};
use uuid::Uuid;

use crate::error::{describe_io, describe_sqlx, AppendError, StoreError};
use crate::event::StoredEvent;
use crate::log::{AppendRequest, AppendResult, BatchOutcome};
use crate::log_statements::{self as statements, COLUMNS};
use crate::seal::{self, SubjectKey};
use crate::snapshot::StoredSnapshot;

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
        .pragma("secure_delete", "ON");
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
    Ok(Pools {
        writer,
        reader,
        read_models,
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
        .pragma("secure_delete", "ON");
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

fn row_to_event(row: &SqliteRow) -> Result<StoredEvent, StoreError> {
    let corrupt = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    let event_id: String = row.try_get("event_id").map_err(corrupt)?;
    let payload: String = row.try_get("payload").map_err(corrupt)?;
    let actor: Option<String> = row.try_get("actor").map_err(corrupt)?;
    let recorded_at: String = row.try_get("recorded_at").map_err(corrupt)?;
    let json = |text: &str| {
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("json column: {e}")))
    };
    Ok(StoredEvent {
        position: row.try_get("position").map_err(corrupt)?,
        event_id: Uuid::parse_str(&event_id)
            .map_err(|e| StoreError::Corrupt(format!("event_id {event_id:?}: {e}")))?,
        aggregate_type: row.try_get("aggregate_type").map_err(corrupt)?,
        aggregate_id: row.try_get("aggregate_id").map_err(corrupt)?,
        sequence: row.try_get("sequence").map_err(corrupt)?,
        event_type: row.try_get("event_type").map_err(corrupt)?,
        event_version: row.try_get("event_version").map_err(corrupt)?,
        payload: json(&payload)?,
        actor: actor.as_deref().map(json).transpose()?,
        recorded_at: parse_time(&recorded_at)?,
        idempotency_key: row.try_get("idempotency_key").map_err(corrupt)?,
    })
}

pub(crate) fn rows_to_events(rows: &[SqliteRow]) -> Result<Vec<StoredEvent>, StoreError> {
    rows.iter().map(row_to_event).collect()
}

pub(crate) async fn head(pool: &SqlitePool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(pool)
            .await?,
    )
}

pub(crate) async fn read_after(
    pool: &SqlitePool,
    position: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?");
    let rows = sqlx::query(&sql)
        .bind(position)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows_to_events(&rows)
}

pub(crate) async fn read_positions(
    pool: &SqlitePool,
    positions: &[i64],
) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events \
         WHERE position IN (SELECT value FROM json_each(?)) ORDER BY position"
    );
    let list = serde_json::to_string(positions)
        .map_err(|e| StoreError::Corrupt(format!("a list of positions: {e}")))?;
    let rows = sqlx::query(&sql).bind(list).fetch_all(pool).await?;
    rows_to_events(&rows)
}

/// The log's writer: one rusqlite connection to `jono.db`, used by the writer task alone. A
/// batch runs in a blocking thread as a whole, one hand-over per batch: through a pooled sqlx
/// connection each of its statements was a round trip to that connection's worker thread, and
/// a profile under 32 writers spent half its time in those threads' wake-ups.
pub(crate) struct Writer {
    path: PathBuf,
    connection: Option<rusqlite::Connection>,
}

impl Writer {
    fn new(path: PathBuf) -> Writer {
        Writer {
            path,
            connection: None,
        }
    }

    /// Appends `requests` in one transaction (see [`commit_direct`]).
    pub(crate) async fn commit_batch(
        &mut self,
        requests: Vec<AppendRequest>,
        shared: std::sync::Arc<crate::log::Shared>,
    ) -> Result<BatchOutcome, AppendError> {
        let connection = self.connection.take();
        let path = self.path.clone();
        let (connection, outcome) = tokio::task::spawn_blocking(move || {
            let mut connection = match connection {
                Some(connection) => connection,
                None => match open_writer(&path) {
                    Ok(connection) => connection,
                    Err(error) => return (None, Err(unavailable(error))),
                },
            };
            let outcome = commit_direct(&mut connection, &requests, &shared);
            // A connection a failure left inside a transaction (a COMMIT that failed, SQLite's
            // own rollback after a full disk) is closed, not used again.
            if !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            (connection.is_autocommit().then_some(connection), outcome)
        })
        .await
        .map_err(|e| AppendError::Unavailable(format!("the log's writer thread: {e}")))?;
        self.connection = connection;
        outcome
    }
}

/// The writer's connection: `synchronous=FULL` (each commit fsynced before its answer), the
/// busy timeout of the pools, foreign keys on. The file is in WAL mode already (the pools set
/// it when the store opens, and it stays).
fn open_writer(path: &Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(5))?;
    connection.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
    )?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(connection)
}

fn unavailable(error: rusqlite::Error) -> AppendError {
    AppendError::Unavailable(match error {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message,
        other => other.to_string(),
    })
}

/// Sorts a failed statement into the request's own fault (rolled back alone) or the store's.
fn classify(error: rusqlite::Error) -> AppendError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &error {
        if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        {
            if message.contains("idempotency_keys.key") {
                return AppendError::DuplicateIdempotencyKey;
            }
            if message.contains("events.event_id") {
                return AppendError::Invalid("an event id is already in the log".into());
            }
            if message.contains("events.aggregate_type") {
                return AppendError::Conflict;
            }
        }
    }
    unavailable(error)
}

/// One transaction for the batch, each request in a savepoint of its own so that a request that
/// fails (a conflict, a used idempotency key) is rolled back alone; one commit, one fsync.
fn commit_direct(
    connection: &mut rusqlite::Connection,
    requests: &[AppendRequest],
    shared: &crate::log::Shared,
) -> Result<BatchOutcome, AppendError> {
    // IMMEDIATE takes the write lock up front, so a second process waits on busy_timeout
    // instead of failing when a read transaction would have to be upgraded.
    let tx = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let last: Option<String> = tx
        .query_row(
            "SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    let mut now = Utc::now().trunc_subsecs(6);
    if let Some(last) = last {
        let last = parse_time(&last).map_err(|e| AppendError::Unavailable(e.to_string()))?;
        now = now.max(last);
    }
    let mut keys = seal::BatchKeys::new();
    let missing = {
        let all: Vec<&AppendRequest> = requests.iter().collect();
        let kept = shared.keys.lock().map_err(|_| poisoned())?;
        seal::subjects_of_batch(&all, &kept, &mut keys)
    };
    let mut found = Vec::with_capacity(missing.len());
    for subject in missing {
        let key = subject_key(&tx, &subject, now)?;
        keys.insert(subject.clone(), key.clone());
        found.push((subject, key));
    }
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        tx.execute_batch("SAVEPOINT request").map_err(unavailable)?;
        let result = append_one(&tx, request, now, &keys);
        if let Err(AppendError::Unavailable(_)) = result {
            // Dropped, the transaction rolls back.
            return result.map(|_| BatchOutcome {
                results: vec![],
                commit_seconds: 0.0,
            });
        }
        if result.is_err() {
            tx.execute_batch("ROLLBACK TO SAVEPOINT request")
                .map_err(unavailable)?;
        }
        tx.execute_batch("RELEASE SAVEPOINT request")
            .map_err(unavailable)?;
        results.push(result);
    }
    let committing = std::time::Instant::now();
    tx.commit().map_err(unavailable)?;
    let commit_seconds = committing.elapsed().as_secs_f64();
    // Kept only once committed: a key rolled back with its batch must never seal anything.
    let mut kept = shared.keys.lock().map_err(|_| poisoned())?;
    for (subject, key) in found {
        kept.keep(subject, key);
    }
    Ok(BatchOutcome {
        results,
        commit_seconds,
    })
}

fn poisoned() -> AppendError {
    AppendError::Unavailable("the writer's key cache is poisoned".into())
}

/// A data subject's key, made on first use in the batch's transaction; `None` once erased.
fn subject_key(
    conn: &rusqlite::Connection,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<Option<SubjectKey>, AppendError> {
    conn.prepare_cached(statements::INSERT_SUBJECT_KEY)
        .and_then(|mut insert| {
            insert.execute(rusqlite::params![
                subject,
                SubjectKey::generate().as_bytes(),
                format_time(now)
            ])
        })
        .map_err(unavailable)?;
    let key: Option<Vec<u8>> = conn
        .prepare_cached(statements::SUBJECT_KEY)
        .and_then(|mut select| select.query_row([subject], |row| row.get(0)))
        .map_err(unavailable)?;
    Ok(key.as_deref().and_then(SubjectKey::from_slice))
}

fn append_one(
    conn: &rusqlite::Connection,
    request: &AppendRequest,
    now: DateTime<Utc>,
    keys: &seal::BatchKeys,
) -> AppendResult {
    let recorded_at = format_time(now);
    let key = request.idempotency.as_ref().map(|r| r.key.clone());
    if let Some(record) = &request.idempotency {
        conn.prepare_cached(statements::INSERT_IDEMPOTENCY_KEY)
            .and_then(|mut insert| {
                insert.execute(rusqlite::params![
                    record.key,
                    record.request_hash,
                    recorded_at
                ])
            })
            .map_err(classify)?;
    }
    for (aggregate_type, aggregate_id, expected) in &request.expected {
        let current: i64 = conn
            .prepare_cached(statements::STREAM_VERSION)
            .and_then(|mut select| {
                select.query_row(rusqlite::params![aggregate_type, aggregate_id], |row| {
                    row.get(0)
                })
            })
            .map_err(unavailable)?;
        if current != *expected {
            return Err(AppendError::Conflict);
        }
    }
    let mut stored = Vec::with_capacity(request.events.len());
    let mut insert = conn
        .prepare_cached(statements::INSERT_EVENT)
        .map_err(unavailable)?;
    for event in &request.events {
        let position: i64 = insert
            .query_row(
                rusqlite::params![
                    event.event_id.to_string(),
                    event.aggregate_type,
                    event.aggregate_id,
                    event.sequence,
                    event.event_type,
                    event.event_version,
                    json_text(&seal::stored_payload(event, keys)),
                    event.actor.as_ref().map(json_text),
                    recorded_at,
                    key,
                ],
                |row| row.get(0),
            )
            .map_err(classify)?;
        stored.push(StoredEvent::from_new(
            event.clone(),
            position,
            now,
            key.clone(),
        ));
    }
    if let (Some(key), Some(first), Some(last)) = (&key, stored.first(), stored.last()) {
        conn.prepare_cached(statements::SET_IDEMPOTENT_RANGE)
            .and_then(|mut update| {
                update.execute(rusqlite::params![first.position, last.position, key])
            })
            .map_err(unavailable)?;
    }
    Ok(stored)
}

/// How often a process looks for events another process (`jono admin …`, a second `jono
/// serve` on the same file) committed to the log: SQLite has no notifications across
/// processes, and this one's own commits wake its readers at once anyway.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Raises the shared head when the file's head passes it, so that projectors and WebSocket
/// subscribers follow other processes' commits within a quarter of a second.
pub(crate) fn spawn_watcher(
    pool: SqlitePool,
    shared: std::sync::Arc<crate::log::Shared>,
    mut shutdown: tokio::sync::watch::Receiver<()>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(WATCH_EVERY) => {}
            }
            match head(&pool).await {
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

pub(crate) async fn subject_keys(
    pool: &SqlitePool,
    subjects: &[String],
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let list = serde_json::to_string(subjects)
        .map_err(|e| StoreError::Corrupt(format!("a list of subjects: {e}")))?;
    Ok(sqlx::query_as(
        "SELECT subject, key FROM subject_keys \
         WHERE subject IN (SELECT value FROM json_each(?)) AND key IS NOT NULL",
    )
    .bind(list)
    .fetch_all(pool)
    .await?)
}

/// See [`crate::log::EventStore::erase_subject`]. One transaction: the key destroyed (a row
/// without one stays, so the subject is never given a new key), the personal fields of the
/// subject's events below the position where sealing began erased in place (the
/// `events_update_only_erasure` trigger lets only this through, while `erasure_guard` holds a
/// row), its conversation's snapshots dropped.
pub(crate) async fn erase_subject(
    pool: &SqlitePool,
    subject: &str,
) -> Result<crate::erasure::Erased, StoreError> {
    let now = format_time(Utc::now());
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(
        "INSERT INTO subject_keys (subject, key, created_at, erased_at) VALUES (?1, NULL, ?2, ?2) \
         ON CONFLICT (subject) DO UPDATE SET key = NULL, \
         erased_at = COALESCE(subject_keys.erased_at, excluded.erased_at)",
    )
    .bind(subject)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    let from: i64 = sqlx::query_scalar("SELECT from_position FROM main.sealing WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let old: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT position, aggregate_type, payload FROM main.events WHERE position < ?1 AND \
         ((aggregate_type = 'conversation' AND aggregate_id = ?2) OR \
          (aggregate_type = 'queue' AND json_extract(payload, '$.conversation_id') = ?2))",
    )
    .bind(from)
    .bind(subject)
    .fetch_all(&mut *tx)
    .await?;
    let mut rewritten = 0;
    for (position, aggregate_type, payload) in old {
        let mut payload: serde_json::Value = serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("the payload at {position}: {e}")))?;
        if !seal::erase_in_place(&aggregate_type, &mut payload) {
            continue;
        }
        if rewritten == 0 {
            sqlx::query("INSERT INTO main.erasure_guard (active) VALUES (1)")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE main.events SET payload = ? WHERE position = ?")
            .bind(json_text(&payload))
            .bind(position)
            .execute(&mut *tx)
            .await?;
        rewritten += 1;
    }
    if rewritten > 0 {
        sqlx::query("DELETE FROM main.erasure_guard")
            .execute(&mut *tx)
            .await?;
    }
    let snapshots = sqlx::query(
        "DELETE FROM main.snapshots WHERE aggregate_type = 'conversation' AND aggregate_id = ?",
    )
    .bind(subject)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(crate::erasure::Erased {
        rewritten,
        snapshots: usize::try_from(snapshots).unwrap_or(usize::MAX),
    })
}

/// Copies the write-ahead log into the database file and truncates it to nothing, so no old
/// version of a page stays in it (the pool's file: the log's, or the read models').
pub(crate) async fn truncate_wal(pool: &SqlitePool) -> Result<(), StoreError> {
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(pool)
        .await?;
    if busy != 0 {
        tracing::warn!("a write-ahead log could not be truncated yet: readers held it");
    }
    Ok(())
}

pub(crate) async fn load_snapshot(
    pool: &SqlitePool,
    aggregate_type: &str,
    aggregate_id: &str,
    fold_version: u32,
) -> Result<Option<StoredSnapshot>, StoreError> {
    let row: Option<(i64, String)> = sqlx::query_as(statements::LOAD_SNAPSHOT)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(i64::from(fold_version))
        .fetch_optional(pool)
        .await?;
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
