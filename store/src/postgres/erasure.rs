//! Sealing and erasure on Postgres: the subjects' keys a read opens with, a subject's erasure
//! in one transaction, and the log's tables vacuumed after it.

use sqlx::PgPool;

use crate::error::StoreError;
use crate::seal;

pub(crate) async fn subject_keys(
    pool: &PgPool,
    subjects: &[String],
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT subject, key FROM subject_keys WHERE subject = ANY($1) AND key IS NOT NULL",
    )
    .bind(subjects)
    .fetch_all(pool)
    .await?)
}

/// See [`crate::log::EventStore::erase_subject`]: as on SQLite, in one transaction; the
/// append-only trigger lets the rewrite of personal fields through while `jono.erasure` is on
/// in this transaction.
pub(crate) async fn erase_subject(
    pool: &PgPool,
    subject: &str,
) -> Result<crate::erasure::Erased, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO subject_keys (subject, key, created_at, erased_at) VALUES ($1, NULL, now(), now()) \
         ON CONFLICT (subject) DO UPDATE SET key = NULL, \
         erased_at = COALESCE(subject_keys.erased_at, excluded.erased_at)",
    )
    .bind(subject)
    .execute(&mut *tx)
    .await?;
    let from: i64 = sqlx::query_scalar("SELECT from_position FROM sealing WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let old: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(
        "SELECT position, aggregate_type, payload FROM events WHERE position < $1 AND \
         ((aggregate_type = 'conversation' AND aggregate_id = $2) OR \
          (aggregate_type = 'queue' AND payload->>'conversation_id' = $2))",
    )
    .bind(from)
    .bind(subject)
    .fetch_all(&mut *tx)
    .await?;
    let mut rewritten = 0;
    for (position, aggregate_type, mut payload) in old {
        if !seal::erase_in_place(&aggregate_type, &mut payload) {
            continue;
        }
        if rewritten == 0 {
            sqlx::query("SET LOCAL jono.erasure = 'on'")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE events SET payload = $1 WHERE position = $2")
            .bind(&payload)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        rewritten += 1;
    }
    let snapshots = sqlx::query(
        "DELETE FROM snapshots WHERE aggregate_type = 'conversation' AND aggregate_id = $1",
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

/// Vacuums the log's tables after an erasure (see
/// [`crate::log::EventStore::compact_after_erasure`]).
pub(crate) async fn vacuum_log(pool: &PgPool, events_too: bool) -> Result<(), StoreError> {
    let tables = if events_too {
        "events, snapshots, subject_keys"
    } else {
        "snapshots, subject_keys"
    };
    sqlx::raw_sql(&format!("VACUUM {tables}"))
        .execute(pool)
        .await?;
    Ok(())
}
