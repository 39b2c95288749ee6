//! The log's writer on SQLite: a batch of appends in one transaction, in a thread of its own,
//! each request in a savepoint so that its own failure is rolled back alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use rusqlite::OptionalExtension;

use super::{format_time, json_text, parse_time};
use crate::error::AppendError;
use crate::event::StoredEvent;
use crate::log::{AppendRequest, BatchOutcome};
use crate::log_statements as statements;
use crate::seal::{self, SubjectKey};
use crate::tail::Kept;

/// The log's writer: one rusqlite connection to `jono.db`, used by the writer thread alone. A
/// batch runs there as a whole: through a pooled sqlx connection each of its statements was a
/// round trip to that connection's worker thread, and a profile under 32 writers spent half
/// its time in those threads' wake-ups.
pub(crate) struct Writer {
    path: PathBuf,
    connection: Option<rusqlite::Connection>,
}

impl Writer {
    pub(super) fn new(path: PathBuf) -> Writer {
        Writer {
            path,
            connection: None,
        }
    }

    /// Appends `requests` in one transaction (see [`commit_direct`]), in the calling thread:
    /// the log's writer thread (`crate::log::run_sqlite_writer`), which does nothing else.
    pub(crate) fn commit_batch(
        &mut self,
        requests: &[AppendRequest],
        shared: &crate::log::Shared,
    ) -> Result<BatchOutcome, AppendError> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => open_writer(&self.path).map_err(unavailable)?,
        };
        let outcome = commit_direct(&mut connection, requests, shared);
        // A connection a failure left inside a transaction (a COMMIT that failed, SQLite's own
        // rollback after a full disk) is closed, not used again.
        if !connection.is_autocommit() {
            let _ = connection.execute_batch("ROLLBACK");
        }
        self.connection = connection.is_autocommit().then_some(connection);
        outcome
    }
}

/// How long the writer waits for `jono.db`'s write lock while another connection holds it (the
/// pools' busy timeout), and the step it waits in: SQLite's own busy timeout sleeps 1, 2, 5,
/// 10, 15 ms… between attempts, so a write of another connection that held the lock for a
/// millisecond (a follower's saved place, a lease's renewal: a few a second) held up the batch,
/// and every request waiting on it, for 3 or 8 ms. In steps of 0.1 ms the batch begins at most
/// about that long after the lock is free.
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
const LOCK_STEP: Duration = Duration::from_micros(100);

/// The writer's busy handler: another attempt after [`LOCK_STEP`], until [`LOCK_TIMEOUT`].
fn wait_for_lock(attempts: i32) -> bool {
    let waited = LOCK_STEP.saturating_mul(u32::try_from(attempts).unwrap_or(u32::MAX));
    if waited >= LOCK_TIMEOUT {
        return false;
    }
    std::thread::sleep(LOCK_STEP);
    true
}

/// The writer's connection: `synchronous=FULL` (each commit fsynced before its answer), the
/// pools' busy timeout in short steps ([`wait_for_lock`]), foreign keys on, the write-ahead log checkpointed by the
/// checkpointer ([`super::wal`]), not by the batch whose commit passes 1,000 pages. The file is
/// in WAL mode already (the pools set it when the store opens, and it stays).
fn open_writer(path: &Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_handler(Some(wait_for_lock))?;
    connection.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; \
         PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {};",
        super::wal::AUTOCHECKPOINT_BACKSTOP,
        super::wal::WAL_SIZE_LIMIT
    ))?;
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
    let locking = std::time::Instant::now();
    let tx = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    shared
        .metrics
        .record_write_lock(locking.elapsed().as_secs_f64());
    // Prepared once per connection (`prepare_cached`), as every statement of a batch: a
    // profile of the writer thread found a tenth of it preparing this one at every batch.
    let last: Option<String> = tx
        .prepare_cached("SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1")
        .and_then(|mut select| select.query_row([], |row| row.get(0)).optional())
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
    let mut committed = Vec::new();
    for request in requests {
        tx.execute_batch("SAVEPOINT request").map_err(unavailable)?;
        let result = append_one(&tx, request, now, &keys).map(|(stored, sealed)| {
            committed.extend(sealed);
            stored
        });
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
    drop(kept);
    // For the followers, before the head moves and wakes them.
    shared.tail.lock().map_err(|_| poisoned())?.push(committed);
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

/// Appends one request: its events as the command gave them, and as stored (sealed) with their
/// opened payloads, for the tail ([`crate::tail`]).
fn append_one(
    conn: &rusqlite::Connection,
    request: &AppendRequest,
    now: DateTime<Utc>,
    keys: &seal::BatchKeys,
) -> Result<(Vec<StoredEvent>, Vec<Kept>), AppendError> {
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
    let mut sealed = Vec::with_capacity(request.events.len());
    let mut insert = conn
        .prepare_cached(statements::INSERT_EVENT)
        .map_err(unavailable)?;
    for event in &request.events {
        let payload = seal::stored_payload(event, keys);
        let position: i64 = insert
            .query_row(
                rusqlite::params![
                    event.event_id.to_string(),
                    event.aggregate_type,
                    event.aggregate_id,
                    event.sequence,
                    event.event_type,
                    event.event_version,
                    json_text(&payload),
                    event.actor.as_ref().map(json_text),
                    recorded_at,
                    key,
                ],
                |row| row.get(0),
            )
            .map_err(classify)?;
        sealed.push(Kept::committed(
            event,
            payload.into_owned(),
            position,
            now,
            key.clone(),
            keys,
        ));
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
    Ok((stored, sealed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_waits_for_the_lock_in_short_steps_and_for_five_seconds_at_most() {
        assert!(wait_for_lock(0));
        let steps = i32::try_from(LOCK_TIMEOUT.as_micros() / LOCK_STEP.as_micros()).unwrap();
        assert!(wait_for_lock(steps - 1));
        assert!(!wait_for_lock(steps));
        assert!(!wait_for_lock(i32::MAX));
    }
}
