//! The log in Postgres, shared by any number of processes.
//!
//! Positions come from an identity sequence, taken before commit, and Postgres transactions
//! commit in any order; a reader that simply read `position > checkpoint` could pass over a
//! position whose transaction commits a moment later, and never see it (invariant 3). Two
//! defences, each covering what the other cannot:
//! - readers only see rows whose transaction id is below the oldest transaction still in flight
//!   (`xid < pg_snapshot_xmin(pg_current_snapshot())`), so no in-flight row can sit below them;
//! - appenders take `pg_advisory_xact_lock(APPEND_LOCK)` first. Transaction ids and sequence
//!   numbers are taken at different moments (the xid at a transaction's first write, the position
//!   at its insert), so with the xid filter alone a transaction with a lower xid could insert
//!   position N+1 and commit while one with a higher xid holding N is still open, and a reader
//!   would pass N. The lock makes our appends take positions and commit one after another; the
//!   xid filter keeps readers safe against any writer that bypasses the lock.
//!
//! The files: this one, opening the pool, reading the log and following its readable head;
//! `writer`, the log's writer (a batch of appends in one transaction, under the lock, a
//! request's own failure rolled back alone); `erasure`, reading subjects' keys and erasing a
//! subject.

mod erasure;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::watch;

use crate::error::{describe_sqlx, StoreError};
use crate::event::StoredEvent;
use crate::log::{raise, Shared};
use crate::log_statements::{self as statements, COLUMNS};
use crate::snapshot::StoredSnapshot;

pub(crate) use erasure::{erase_subject, subject_keys, vacuum_log};
pub(crate) use writer::commit_batch;

/// Serializes appends across processes ("JONO" in ASCII).
const APPEND_LOCK: i64 = 0x4A4F_4E4F;
/// Serializes schema preparation when several processes start at once.
const MIGRATION_LOCK: i64 = 0x4A4F_4E4D;
/// The LISTEN/NOTIFY channel that wakes readers in other processes.
pub(crate) const CHANNEL: &str = "jono_events";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    position        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        UUID NOT NULL CONSTRAINT events_event_id_unique UNIQUE,
    aggregate_type  TEXT NOT NULL,
    aggregate_id    TEXT NOT NULL,
    sequence        BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    event_version   TEXT NOT NULL,
    payload         JSONB NOT NULL,
    actor           JSONB,
    recorded_at     TIMESTAMPTZ NOT NULL,
    idempotency_key TEXT,
    xid             xid8 NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT events_stream_sequence_unique UNIQUE (aggregate_type, aggregate_id, sequence)
);
-- What the queues recorded of each conversation, for its replay (`EventStore::load_queue_events_naming`).
CREATE INDEX IF NOT EXISTS events_queue_naming
    ON events ((payload->>'conversation_id'), position)
    WHERE aggregate_type = 'queue';
CREATE OR REPLACE FUNCTION jono_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one exception (store/src/seal.rs): an erasure rewrites the personal fields of its
    -- subject's events written before sealing existed, and nothing else of them.
    IF TG_OP = 'UPDATE' AND current_setting('jono.erasure', true) = 'on'
       AND NEW.position = OLD.position AND NEW.event_id = OLD.event_id
       AND NEW.aggregate_type = OLD.aggregate_type AND NEW.aggregate_id = OLD.aggregate_id
       AND NEW.sequence = OLD.sequence AND NEW.event_type = OLD.event_type THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP;
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgname = 'events_append_only' AND tgrelid = 'events'::regclass) THEN
        CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
            FOR EACH ROW EXECUTE FUNCTION jono_events_append_only();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgname = 'events_no_truncate' AND tgrelid = 'events'::regclass) THEN
        CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
            FOR EACH STATEMENT EXECUTE FUNCTION jono_events_append_only();
    END IF;
END
$$;
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key            TEXT PRIMARY KEY,
    request_hash   TEXT NOT NULL,
    first_position BIGINT,
    last_position  BIGINT,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS subject_keys (
    subject    TEXT PRIMARY KEY,
    key        BYTEA,
    created_at TIMESTAMPTZ NOT NULL,
    erased_at  TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS sealing (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    from_position BIGINT NOT NULL
);
INSERT INTO sealing (id, from_position)
    SELECT 1, COALESCE(MAX(position), 0) + 1 FROM events
    ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    fold_version   BIGINT NOT NULL,
    version        BIGINT NOT NULL,
    state          JSONB NOT NULL,
    taken_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, fold_version)
);
"#;

pub(crate) async fn open(url: &str) -> Result<PgPool, StoreError> {
    // sqlx's parse errors never echo the URL, so no password can leak through them.
    let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| {
        StoreError::BadDatabaseUrl(format!(
            "{e}; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        ))
    })?;
    let at = format!("{}:{}", options.get_host(), options.get_port());
    let unreachable = |e: sqlx::Error| StoreError::PostgresUnreachable {
        at: at.clone(),
        reason: describe_sqlx(&e),
    };
    // One plain connection first: the pool would retry until its timeout and then report only
    // "timed out", hiding the reason (refused, unknown host, bad password).
    let probe = PgConnection::connect_with(&options)
        .await
        .map_err(unreachable)?;
    let _ = probe.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(unreachable)?;
    let migrate = async {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
        sqlx::raw_sql(crate::cluster::SCHEMA)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    };
    migrate
        .await
        .map_err(|e| StoreError::Migration(describe_sqlx(&e)))?;
    Ok(pool)
}

fn row_to_event(row: &PgRow) -> Result<StoredEvent, StoreError> {
    let corrupt = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    Ok(StoredEvent {
        position: row.try_get("position").map_err(corrupt)?,
        event_id: row.try_get("event_id").map_err(corrupt)?,
        aggregate_type: row.try_get("aggregate_type").map_err(corrupt)?,
        aggregate_id: row.try_get("aggregate_id").map_err(corrupt)?,
        sequence: row.try_get("sequence").map_err(corrupt)?,
        event_type: row.try_get("event_type").map_err(corrupt)?,
        event_version: row.try_get("event_version").map_err(corrupt)?,
        payload: row.try_get("payload").map_err(corrupt)?,
        actor: row.try_get("actor").map_err(corrupt)?,
        recorded_at: row.try_get("recorded_at").map_err(corrupt)?,
        idempotency_key: row.try_get("idempotency_key").map_err(corrupt)?,
    })
}

pub(crate) fn rows_to_events(rows: &[PgRow]) -> Result<Vec<StoredEvent>, StoreError> {
    rows.iter().map(row_to_event).collect()
}

/// The highest position a reader may safely read up to now (see the module comment).
pub(crate) async fn head(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(heads(pool).await?.0)
}

/// The readable head and the last committed position, in one round trip. The readable head walks
/// the primary key backwards and stops at the first row no open transaction can precede (rather
/// than MAX() over a filter, which would scan the whole log).
async fn heads(pool: &PgPool) -> Result<(i64, i64), StoreError> {
    let (readable, last): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT position FROM events WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) \
                 ORDER BY position DESC LIMIT 1), \
                (SELECT position FROM events ORDER BY position DESC LIMIT 1)",
    )
    .fetch_one(pool)
    .await?;
    Ok((readable.unwrap_or(0), last.unwrap_or(0)))
}

/// The last committed position, whether or not an earlier one is still in flight.
pub(crate) async fn last_committed(pool: &PgPool) -> Result<i64, StoreError> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT position FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(pool)
            .await?;
    Ok(last.unwrap_or(0))
}

/// Up to `limit` readable events after `position`; those of the `skipped` types with a `null`
/// payload.
pub(crate) async fn read_after(
    pool: &PgPool,
    position: i64,
    limit: i64,
    skipped: &[&str],
) -> Result<Vec<StoredEvent>, StoreError> {
    let columns = if skipped.is_empty() {
        COLUMNS.to_owned()
    } else {
        crate::log_statements::columns_with_payload(
            "CASE WHEN event_type = ANY($3) THEN 'null'::jsonb ELSE payload END AS payload",
        )
    };
    let sql = format!(
        "SELECT {columns} FROM events \
         WHERE position > $1 AND xid < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY position LIMIT $2"
    );
    let mut query = sqlx::query(&sql).bind(position).bind(limit);
    if !skipped.is_empty() {
        query = query.bind(skipped);
    }
    let rows = query.fetch_all(pool).await?;
    rows_to_events(&rows)
}

pub(crate) async fn read_positions(
    pool: &PgPool,
    positions: &[i64],
) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE position = ANY($1) ORDER BY position");
    let rows = sqlx::query(&sql).bind(positions).fetch_all(pool).await?;
    rows_to_events(&rows)
}

/// Keeps the watch of the readable head current: woken by our own commits, by other processes'
/// NOTIFY, every few milliseconds while a commit is not yet readable, and once a second in case
/// a notification was lost.
pub(crate) fn spawn_listener(pool: PgPool, shared: Arc<Shared>, mut shutdown: watch::Receiver<()>) {
    tokio::spawn(async move {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => Some(listener),
                Err(error) => {
                    tracing::warn!(%error, "cannot LISTEN for new events; polling instead");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for new events; polling instead");
                None
            }
        };
        // How long to wait before looking again without a wake-up: a second while the readable
        // head has caught up with the last commit; soon while it has not. The readable head is
        // held back by any older transaction still open (a projector's, another append's), and
        // nothing notifies when that one ends: without the short wait, a reader would sit up
        // to a second behind a commit it was told about (picks measured at ~1.1 s on p99).
        let mut idle = IDLE_REFRESH;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = shared.refresh.notified() => {}
                _ = tokio::time::sleep(idle) => {}
                notification = async {
                    match listener.as_mut() {
                        Some(listener) => listener.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                } => {
                    if let Err(error) = notification {
                        // PgListener reconnects on the next recv; don't spin meanwhile.
                        tracing::debug!(%error, "event listener connection lost");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            // The payload (the committer's head) is only a hint: the readable head also depends
            // on older transactions still in flight, so ask the database.
            match heads(&pool).await {
                Ok((readable, last)) => {
                    shared.head.send_if_modified(|h| raise(h, readable));
                    idle = if last <= readable {
                        IDLE_REFRESH
                    } else if idle >= IDLE_REFRESH {
                        BEHIND_REFRESH
                    } else {
                        (idle * 2).min(MAX_BEHIND_REFRESH)
                    };
                }
                Err(error) => tracing::debug!(%error, "cannot read the event head"),
            }
        }
    });
}

/// The listener's look at the head without a wake-up: while caught up, …
const IDLE_REFRESH: Duration = Duration::from_secs(1);
/// … and while a commit is not yet readable: from 2 ms, doubling up to 50 ms.
const BEHIND_REFRESH: Duration = Duration::from_millis(2);
const MAX_BEHIND_REFRESH: Duration = Duration::from_millis(50);

pub(crate) async fn load_snapshot(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    fold_version: u32,
) -> Result<Option<StoredSnapshot>, StoreError> {
    let row: Option<(i64, serde_json::Value)> = sqlx::query_as(statements::LOAD_SNAPSHOT)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(i64::from(fold_version))
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(version, state)| StoredSnapshot { version, state }))
}

pub(crate) async fn save_snapshot(
    pool: &PgPool,
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
        .bind(&snapshot.state)
        .bind(Utc::now())
        .execute(pool)
        .await?;
    Ok(())
}
