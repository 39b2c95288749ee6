//! The log's writer on Postgres: a batch of appends in one transaction, under the append
//! lock (see the module comment of `postgres`), each request in a savepoint so that its own
//! failure is rolled back alone, and a NOTIFY of the new head delivered at commit.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{PgConnection, PgPool};

use super::{APPEND_LOCK, CHANNEL};
use crate::error::{describe_sqlx, AppendError};
use crate::event::StoredEvent;
use crate::log::{AppendRequest, AppendResult, BatchOutcome, Shared};
use crate::log_statements as statements;
use crate::seal::{self, SubjectKey};

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

pub(crate) async fn commit_batch(
    pool: &PgPool,
    requests: &[&AppendRequest],
    shared: &Shared,
) -> Result<BatchOutcome, AppendError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    // Why this lock exists: see the module comment.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
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
