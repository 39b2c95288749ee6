//! Sealing and erasure on SQLite: the subjects' keys a read opens with, a subject's erasure
//! in one transaction, and the write-ahead log truncated after it.

use chrono::Utc;
use sqlx::{Connection, SqlitePool};

use super::{format_time, json_text};
use crate::error::StoreError;
use crate::seal;

pub(crate) async fn subject_keys(
    readers: &super::Readers,
    subjects: &[String],
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let list = serde_json::to_string(subjects)
        .map_err(|e| StoreError::Corrupt(format!("a list of subjects: {e}")))?;
    let params = [crate::dialect::Param::from(list)];
    readers
        .read(|connection| {
            super::readers::all(
                connection,
                "SELECT subject, key FROM subject_keys \
                 WHERE subject IN (SELECT value FROM json_each($1)) AND key IS NOT NULL",
                &params,
            )
        })
        .await
        .map_err(crate::dialect::direct_error)
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

/// How long an erasure's truncation tries again while another connection checkpoints the same
/// file: the store's checkpointer does every 100 ms (`super::wal`), and SQLite refuses a second
/// checkpoint at once, without the busy handler; `PRAGMA wal_checkpoint` then answers
/// `busy = 1` and leaves the log as it was.
const TRUNCATE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Copies the write-ahead log into the database file and truncates it to nothing, so no old
/// version of a page stays in it (the pool's file: the log's, or the read models').
pub(crate) async fn truncate_wal(pool: &SqlitePool) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    loop {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(pool)
            .await?;
        if busy == 0 {
            return Ok(());
        }
        if started.elapsed() >= TRUNCATE_PATIENCE {
            tracing::warn!(
                "a write-ahead log could not be truncated yet: readers or another checkpoint held it"
            );
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
