//! Consistent copies of a store while Jono serves (`jono backup`, `jono restore`). The log is
//! the only truth, and the checkpoints and secrets beside it are copied in the same snapshot, so
//! a restored store starts where the copy was taken. The read models are copied on Postgres; on
//! SQLite they are in a file of their own (`read-models.db`), not copied, built from the log at
//! the restored store's first start.
//!
//! - SQLite: `VACUUM INTO` writes the database as one read transaction saw it: a consistent
//!   copy that does not stop the writer (WAL), compacted on the way.
//! - Postgres: `pg_dump` of the schema Jono uses (run by the caller); here only what it needs to
//!   know — the schema's name, and whether a target is still empty.

use std::path::Path;

use sqlx::{PgPool, Row, SqlitePool};

use crate::error::StoreError;
use crate::log::Backend;

/// Writes a consistent copy of the SQLite database behind `pool` to `into`, which must not exist.
pub async fn sqlite_snapshot(pool: &SqlitePool, into: &Path) -> Result<(), StoreError> {
    let target = into.to_str().ok_or_else(|| {
        StoreError::Unavailable(format!("{} is not a UTF-8 path", into.display()))
    })?;
    sqlx::query("VACUUM INTO ?1")
        .bind(target)
        .execute(pool)
        .await?;
    Ok(())
}

/// The schema Jono's tables live in on Postgres (`search_path`'s first).
pub async fn postgres_schema(pool: &PgPool) -> Result<String, StoreError> {
    let row = sqlx::query("SELECT current_schema()::text AS schema")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get::<String, _>("schema")?)
}

/// How many events the log holds (a restore refuses a store that has any).
pub async fn event_count(backend: &Backend) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) AS n FROM events";
    let count = match backend {
        Backend::Sqlite(pool, _) => sqlx::query(sql)
            .fetch_one(pool)
            .await?
            .try_get::<i64, _>("n")?,
        Backend::Postgres(pool) => sqlx::query(sql)
            .fetch_one(pool)
            .await?
            .try_get::<i64, _>("n")?,
    };
    Ok(count)
}

/// Whether the Postgres database at `url` (its `search_path`) already has Jono's log, which a
/// restore must not overwrite.
pub async fn postgres_has_log(url: &str) -> Result<bool, StoreError> {
    let pool = PgPool::connect(url).await?;
    let row = sqlx::query("SELECT to_regclass('events') IS NOT NULL AS present")
        .fetch_one(&pool)
        .await?;
    let present = row.try_get::<bool, _>("present")?;
    pool.close().await;
    Ok(present)
}

/// Whether `schema` exists in the Postgres database at `url`.
pub async fn postgres_schema_exists(url: &str, schema: &str) -> Result<bool, StoreError> {
    let pool = PgPool::connect(url).await?;
    let row =
        sqlx::query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS present")
            .bind(schema)
            .fetch_one(&pool)
            .await?;
    let present = row.try_get::<bool, _>("present")?;
    pool.close().await;
    Ok(present)
}
