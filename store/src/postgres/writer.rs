//! The log's writer on Postgres: a batch of appends in one transaction, under the append
//! lock (see the module comment of `postgres`), in a handful of statements for the whole
//! batch, each request's own failure (a conflict, a used idempotency key) decided alone, and a
//! NOTIFY of the new head delivered at commit.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

use super::{APPEND_LOCK, CHANNEL};
use crate::error::{describe_sqlx, AppendError};
use crate::event::{NewEvent, StoredEvent};
use crate::log::{AppendRequest, AppendResult, BatchOutcome, Shared};
use crate::log_statements as statements;
use crate::seal::{self, SubjectKey};
use crate::tail::Kept;

fn unavailable(error: sqlx::Error) -> AppendError {
    AppendError::Unavailable(describe_sqlx(&error))
}

/// Unlike postgres-es, which calls every unique violation an optimistic-lock conflict (so a
/// reused idempotency key would be retried forever), we look at which constraint refused.
fn classify(error: sqlx::Error) -> AppendError {
    if let sqlx::Error::Database(db) = &error {
        match db.constraint() {
            Some("idempotency_keys_pkey") => return AppendError::DuplicateIdempotencyKey,
            Some("events_stream_sequence_unique") => return AppendError::Conflict,
            Some("events_event_id_unique") => {
                return AppendError::Invalid("an event id is already in the log".into())
            }
            _ => {}
        }
    }
    unavailable(error)
}

/// Appends `requests` in one transaction. The usual way is a few statements for the whole
/// batch, whatever its size ([`commit_together`]); when the database refuses what that way
/// predicted would pass (a constraint a writer outside the append lock raced for), the batch
/// is rolled back and done again one request at a time, each in its own savepoint
/// ([`commit_one_by_one`]), so that the refusal falls on its own request alone.
pub(crate) async fn commit_batch(
    pool: &PgPool,
    requests: &[&AppendRequest],
    shared: &Shared,
) -> Result<BatchOutcome, AppendError> {
    match commit_together(pool, requests, shared).await? {
        Some(outcome) => Ok(outcome),
        None => commit_one_by_one(pool, requests, shared).await,
    }
}

/// The transaction a batch runs in, the append lock taken in the same round trip as BEGIN
/// (why the lock exists: see the module comment).
async fn begin_locked(pool: &PgPool) -> Result<sqlx::Transaction<'static, Postgres>, AppendError> {
    pool.begin_with(format!(
        "BEGIN; SELECT pg_advisory_xact_lock({APPEND_LOCK})"
    ))
    .await
    .map_err(unavailable)
}

/// The batch in five round trips, however many requests it holds: BEGIN with the lock; one
/// read of the streams' versions, the idempotency keys already used and the last time stamp;
/// (the subjects' keys not kept yet, when there are any;) one statement inserting every event
/// and idempotency key of the requests that pass and notifying the new head; COMMIT.
///
/// Under the append lock no other appender writes, so the versions read after taking it are
/// the streams' versions at commit: each request's expected versions are checked here, in
/// order, against them and against the requests of the batch accepted before it — what each
/// request's own `SELECT` inside its savepoint decided before. `None` when the insert was
/// refused by a constraint after all (a writer that bypasses the lock); nothing is committed.
async fn commit_together(
    pool: &PgPool,
    requests: &[&AppendRequest],
    shared: &Shared,
) -> Result<Option<BatchOutcome>, AppendError> {
    let mut tx = begin_locked(pool).await?;

    let mut streams: Vec<(&str, &str)> = Vec::new();
    for request in requests {
        for (aggregate_type, aggregate_id, _) in &request.expected {
            let stream = (aggregate_type.as_str(), aggregate_id.as_str());
            if !streams.contains(&stream) {
                streams.push(stream);
            }
        }
    }
    let asked_keys: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.idempotency.as_ref().map(|i| i.key.as_str()))
        .collect();
    let (last, versions, used): (Option<DateTime<Utc>>, Vec<i64>, Vec<String>) =
        sqlx::query_as(READ_BATCH)
            .bind(streams.iter().map(|s| s.0).collect::<Vec<_>>())
            .bind(streams.iter().map(|s| s.1).collect::<Vec<_>>())
            .bind(&asked_keys)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
    if versions.len() != streams.len() {
        return Err(AppendError::Unavailable(
            "the streams' versions came back incomplete".into(),
        ));
    }
    let mut versions: HashMap<(&str, &str), i64> = streams.into_iter().zip(versions).collect();
    let mut used: HashSet<String> = used.into_iter().collect();
    let now = Utc::now().trunc_subsecs(6).max(last.unwrap_or_default());

    let mut keys = seal::BatchKeys::new();
    let missing = {
        let kept = shared.keys.lock().map_err(|_| poisoned())?;
        seal::subjects_of_batch(requests, &kept, &mut keys)
    };
    let mut found = Vec::with_capacity(missing.len());
    for subject in missing {
        let key = subject_key(&mut tx, &subject, now).await?;
        keys.insert(subject.clone(), key.clone());
        found.push((subject, key));
    }

    // Each request's fate, in order, as its savepoint would have decided it: a used
    // idempotency key first, then its expected versions.
    let mut verdicts: Vec<Result<(), AppendError>> = Vec::with_capacity(requests.len());
    let mut rows = Rows::default();
    for request in requests {
        let verdict = decide(request, &versions, &used);
        if verdict.is_ok() {
            if let Some(record) = &request.idempotency {
                used.insert(record.key.clone());
                rows.keys.push(record.key.clone());
                rows.hashes.push(record.request_hash.clone());
            }
            let key = request.idempotency.as_ref().map(|r| r.key.clone());
            for event in &request.events {
                let version = versions
                    .entry((event.aggregate_type.as_str(), event.aggregate_id.as_str()))
                    .or_insert(0);
                *version = (*version).max(event.sequence);
                rows.push(event, seal::stored_payload(event, &keys).into_owned(), &key);
            }
        }
        verdicts.push(verdict);
    }

    let positions: Vec<(i64, Uuid)> = if rows.is_empty() {
        vec![]
    } else {
        let inserted = sqlx::query_as(INSERT_BATCH)
            .bind(&rows.event_ids)
            .bind(&rows.aggregate_types)
            .bind(&rows.aggregate_ids)
            .bind(&rows.sequences)
            .bind(&rows.event_types)
            .bind(&rows.event_versions)
            .bind(&rows.payloads)
            .bind(&rows.actors)
            .bind(&rows.event_keys)
            .bind(now)
            .bind(&rows.keys)
            .bind(&rows.hashes)
            .bind(CHANNEL)
            .fetch_all(&mut *tx)
            .await;
        match inserted {
            Ok(positions) => positions,
            Err(error) => {
                return match classify(error) {
                    AppendError::Unavailable(reason) => Err(AppendError::Unavailable(reason)),
                    // Dropped, the transaction rolls back; the batch is done again, one by one.
                    _ => Ok(None),
                };
            }
        }
    };
    // Positions must rise in the order of the events (a stream's sequence with them); the
    // identity is taken row by row in the order of the arrays, and this checks it did.
    if positions.len() != rows.event_ids.len()
        || positions
            .iter()
            .zip(&rows.event_ids)
            .any(|((_, id), want)| id != want)
        || positions.windows(2).any(|w| w[0].0 >= w[1].0)
    {
        return Err(AppendError::Unavailable(
            "the log's insert returned positions out of order".into(),
        ));
    }

    let committing = std::time::Instant::now();
    tx.commit().await.map_err(unavailable)?;
    let commit_seconds = committing.elapsed().as_secs_f64();
    keep_keys(shared, found)?;

    // For this process's followers ([`crate::tail`]): under the append lock, positions
    // commit in order, and the tail answers only from a run of consecutive ones.
    let accepted = requests
        .iter()
        .zip(&verdicts)
        .filter(|(_, verdict)| verdict.is_ok())
        .flat_map(|(request, _)| {
            let key = request.idempotency.as_ref().map(|r| r.key.clone());
            request.events.iter().map(move |event| (event, key.clone()))
        });
    let committed: Vec<Kept> = accepted
        .zip(&positions)
        .zip(rows.payloads)
        .map(|(((event, key), (position, _)), payload)| {
            Kept::committed(event, payload, *position, now, key, &keys)
        })
        .collect();
    shared.tail.lock().map_err(|_| poisoned())?.push(committed);

    let mut positions = positions.into_iter().map(|(position, _)| position);
    let results = requests
        .iter()
        .zip(verdicts)
        .map(|(request, verdict)| {
            verdict.map(|()| {
                let key = request.idempotency.as_ref().map(|r| r.key.clone());
                request
                    .events
                    .iter()
                    .zip(positions.by_ref())
                    .map(|(event, position)| {
                        StoredEvent::from_new(event.clone(), position, now, key.clone())
                    })
                    .collect()
            })
        })
        .collect();
    Ok(Some(BatchOutcome {
        results,
        commit_seconds,
    }))
}

/// Whether `request` may be appended, given the streams' versions and the idempotency keys
/// used before it.
fn decide(
    request: &AppendRequest,
    versions: &HashMap<(&str, &str), i64>,
    used: &HashSet<String>,
) -> Result<(), AppendError> {
    if let Some(record) = &request.idempotency {
        if used.contains(&record.key) {
            return Err(AppendError::DuplicateIdempotencyKey);
        }
    }
    for (aggregate_type, aggregate_id, expected) in &request.expected {
        let current = versions
            .get(&(aggregate_type.as_str(), aggregate_id.as_str()))
            .copied()
            .unwrap_or(0);
        if current != *expected {
            return Err(AppendError::Conflict);
        }
    }
    Ok(())
}

/// The columns of the events a batch inserts, and its idempotency keys, as arrays.
#[derive(Default)]
struct Rows {
    event_ids: Vec<Uuid>,
    aggregate_types: Vec<String>,
    aggregate_ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<serde_json::Value>,
    actors: Vec<Option<serde_json::Value>>,
    event_keys: Vec<Option<String>>,
    keys: Vec<String>,
    hashes: Vec<String>,
}

impl Rows {
    fn push(&mut self, event: &NewEvent, payload: serde_json::Value, key: &Option<String>) {
        self.event_ids.push(event.event_id);
        self.aggregate_types.push(event.aggregate_type.clone());
        self.aggregate_ids.push(event.aggregate_id.clone());
        self.sequences.push(event.sequence);
        self.event_types.push(event.event_type.clone());
        self.event_versions.push(event.event_version.clone());
        self.payloads.push(payload);
        self.actors.push(event.actor.clone());
        self.event_keys.push(key.clone());
    }

    fn is_empty(&self) -> bool {
        self.event_ids.is_empty() && self.keys.is_empty()
    }
}

/// The batch's read, after the lock: the last time stamp, each stream's version in the order
/// of `$1`/`$2` (0 without events), and which of the keys `$3` are used.
const READ_BATCH: &str = "\
SELECT (SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1),
       ARRAY(SELECT (SELECT COALESCE(MAX(e.sequence), 0) FROM events e
                     WHERE e.aggregate_type = s.t AND e.aggregate_id = s.i)
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(t, i, n)
             ORDER BY s.n),
       ARRAY(SELECT key FROM idempotency_keys WHERE key = ANY($3::text[]))";

/// Every event of the batch (positions taken in the arrays' order, and returned in it) and
/// every idempotency key with the range of positions its events took; the new head notified
/// at commit to every process listening, ours included.
const INSERT_BATCH: &str = "\
WITH ins AS (
    INSERT INTO events (event_id, aggregate_type, aggregate_id, sequence, event_type,
                        event_version, payload, actor, recorded_at, idempotency_key)
    SELECT r.event_id, r.t, r.i, r.seq, r.et, r.ev, r.payload, r.actor, $10, r.key
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[],
                $7::jsonb[], $8::jsonb[], $9::text[])
         WITH ORDINALITY AS r(event_id, t, i, seq, et, ev, payload, actor, key, n)
    ORDER BY r.n
    RETURNING position, event_id, idempotency_key
), kept AS (
    INSERT INTO idempotency_keys (key, request_hash, first_position, last_position, created_at)
    SELECT k.key, k.hash,
           (SELECT MIN(ins.position) FROM ins WHERE ins.idempotency_key = k.key),
           (SELECT MAX(ins.position) FROM ins WHERE ins.idempotency_key = k.key),
           $10
    FROM unnest($11::text[], $12::text[]) AS k(key, hash)
    RETURNING 1
), notified AS (
    SELECT pg_notify($13, MAX(ins.position)::text) FROM ins
)
SELECT ins.position, ins.event_id
FROM ins, (SELECT COUNT(*) FROM kept) AS k(n), (SELECT COUNT(*) FROM notified) AS o(n)
ORDER BY ins.position";

fn keep_keys(shared: &Shared, found: Vec<(String, Option<SubjectKey>)>) -> Result<(), AppendError> {
    // Kept only once committed: a key rolled back with its batch must never seal anything.
    let mut kept = shared.keys.lock().map_err(|_| poisoned())?;
    for (subject, key) in found {
        kept.keep(subject, key);
    }
    Ok(())
}

/// The batch one request at a time, each in a savepoint of its own, a few round trips per
/// request: the way when [`commit_together`] met a refusal it did not foresee.
async fn commit_one_by_one(
    pool: &PgPool,
    requests: &[&AppendRequest],
    shared: &Shared,
) -> Result<BatchOutcome, AppendError> {
    let mut tx = begin_locked(pool).await?;
    let last: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
    let now = Utc::now().trunc_subsecs(6).max(last.unwrap_or_default());
    let mut keys = seal::BatchKeys::new();
    let missing = {
        let kept = shared.keys.lock().map_err(|_| poisoned())?;
        seal::subjects_of_batch(requests, &kept, &mut keys)
    };
    let mut found = Vec::with_capacity(missing.len());
    for subject in missing {
        let key = subject_key(&mut tx, &subject, now).await?;
        keys.insert(subject.clone(), key.clone());
        found.push((subject, key));
    }
    let mut results = Vec::with_capacity(requests.len());
    let mut head = None;
    for request in requests {
        sqlx::query("SAVEPOINT request")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let result = append_one(&mut tx, request, now, &keys).await;
        if let Err(AppendError::Unavailable(_)) = result {
            return result.map(|_| BatchOutcome {
                results: vec![],
                commit_seconds: 0.0,
            });
        }
        if result.is_err() {
            sqlx::query("ROLLBACK TO SAVEPOINT request")
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        sqlx::query("RELEASE SAVEPOINT request")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if let Ok(stored) = &result {
            head = stored.iter().map(|e| e.position).max().max(head);
        }
        results.push(result);
    }
    if let Some(head) = head {
        // Delivered at commit, to every process listening, ours included.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(head.to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    }
    let committing = std::time::Instant::now();
    tx.commit().await.map_err(unavailable)?;
    let commit_seconds = committing.elapsed().as_secs_f64();
    keep_keys(shared, found)?;
    Ok(BatchOutcome {
        results,
        commit_seconds,
    })
}

fn poisoned() -> AppendError {
    AppendError::Unavailable("the writer's key cache is poisoned".into())
}

/// A data subject's key, made on first use in the batch's transaction; `None` once erased.
async fn subject_key(
    conn: &mut PgConnection,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<Option<SubjectKey>, AppendError> {
    sqlx::query(statements::INSERT_SUBJECT_KEY)
        .bind(subject)
        .bind(SubjectKey::generate().as_bytes())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    let key: Option<Vec<u8>> = sqlx::query_scalar(statements::SUBJECT_KEY)
        .bind(subject)
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(key.as_deref().and_then(SubjectKey::from_slice))
}

async fn append_one(
    conn: &mut PgConnection,
    request: &AppendRequest,
    now: DateTime<Utc>,
    keys: &seal::BatchKeys,
) -> AppendResult {
    let key = request.idempotency.as_ref().map(|r| r.key.clone());
    if let Some(record) = &request.idempotency {
        sqlx::query(statements::INSERT_IDEMPOTENCY_KEY)
            .bind(&record.key)
            .bind(&record.request_hash)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
    }
    for (aggregate_type, aggregate_id, expected) in &request.expected {
        let current: i64 = sqlx::query_scalar(statements::STREAM_VERSION)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_one(&mut *conn)
            .await
            .map_err(unavailable)?;
        if current != *expected {
            return Err(AppendError::Conflict);
        }
    }
    let mut stored = Vec::with_capacity(request.events.len());
    for event in &request.events {
        let position: i64 = sqlx::query_scalar(statements::INSERT_EVENT)
            .bind(event.event_id)
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .bind(event.sequence)
            .bind(&event.event_type)
            .bind(&event.event_version)
            .bind(seal::stored_payload(event, keys).as_ref())
            .bind(&event.actor)
            .bind(now)
            .bind(&key)
            .fetch_one(&mut *conn)
            .await
            .map_err(classify)?;
        stored.push(StoredEvent::from_new(
            event.clone(),
            position,
            now,
            key.clone(),
        ));
    }
    if let (Some(key), Some(first), Some(last)) = (&key, stored.first(), stored.last()) {
        sqlx::query(statements::SET_IDEMPOTENT_RANGE)
            .bind(first.position)
            .bind(last.position)
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    Ok(stored)
}
