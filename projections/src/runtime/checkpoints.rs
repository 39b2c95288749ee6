//! The projections' checkpoints and failures, as their tables hold them: where each projection
//! has applied the log up to (invariant 4: moved in the transaction of the rows it covers), and
//! the last failure of one that is stuck on an event.

use store::log::{Backend, EventStore};

use super::{ProjectionError, ProjectorState};
use crate::database::{Param, Tx, REBUILD_SUFFIX};
use crate::params;

pub(super) const CHECKPOINTS: &str = "CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    version BIGINT NOT NULL
)";

/// A failing projector's last failure, so that `jono projections status` in another process
/// can show it; removed once the projector moves on.
pub(super) const FAILURES: &str = "CREATE TABLE IF NOT EXISTS projection_failures (
    name TEXT PRIMARY KEY,
    failed_at BIGINT NOT NULL,
    error TEXT NOT NULL
)";

/// Every projection's state as the database holds it: its checkpoint, failed if a failure is
/// recorded beside it. For a process that reports the projectors another one runs.
pub(super) async fn stored_states(
    backend: &Backend,
) -> Result<Vec<(String, ProjectorState)>, sqlx::Error> {
    let rows: Vec<(String, i64, Option<i64>, Option<String>)> = crate::database::fetch_all(
        backend,
        "SELECT c.name, c.position, f.failed_at, f.error FROM projection_checkpoints c \
         LEFT JOIN projection_failures f ON f.name = c.name",
        &[],
    )
    .await?;
    let states = rows.into_iter().map(|(name, position, failed_at, error)| {
        let state = match (failed_at, error) {
            (Some(failed_at), Some(error)) => ProjectorState::Failed {
                position,
                failed_at,
                error,
            },
            _ => ProjectorState::Running { position },
        };
        (name, state)
    });
    Ok(states.collect())
}

/// Reads the checkpoints of `names` inside `tx` in one statement (0 for one not there yet), in
/// `names`' order, locking their rows on Postgres so that a concurrent projector of the same
/// names (or a rebuild's swap) waits for this transaction, then sees its result. The rows are
/// locked in name order, the one order every locker takes, so two never wait on each other.
pub(super) async fn lock(tx: &mut Tx, names: &[&str]) -> Result<Vec<i64>, sqlx::Error> {
    let places: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
    let lock = if tx.is_postgres() { " FOR UPDATE" } else { "" };
    let sql = format!(
        "SELECT name, position FROM projection_checkpoints WHERE name IN ({}) ORDER BY name{lock}",
        places.join(", ")
    );
    let params: Vec<Param> = names.iter().map(|name| Param::from(*name)).collect();
    let found: Vec<(String, i64)> = tx.fetch_all(&sql, &params).await?;
    let position = |name: &str| {
        found
            .iter()
            .find(|(stored, _)| stored == name)
            .map_or(0, |(_, position)| *position)
    };
    Ok(names.iter().map(|name| position(name)).collect())
}

/// Moves the checkpoints `(name, position, version)` inside `tx`, in one statement.
pub(super) async fn write(tx: &mut Tx, moved: &[(&str, i64, i64)]) -> Result<(), sqlx::Error> {
    if moved.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..moved.len())
        .map(|n| format!("(${}, ${}, ${})", 3 * n + 1, 3 * n + 2, 3 * n + 3))
        .collect();
    let sql = format!(
        "INSERT INTO projection_checkpoints (name, position, version) VALUES {} \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, version = excluded.version",
        rows.join(", ")
    );
    let params: Vec<Param> = moved
        .iter()
        .flat_map(|(name, position, version)| {
            [
                Param::from(*name),
                Param::from(*position),
                Param::from(*version),
            ]
        })
        .collect();
    tx.execute(&sql, &params).await.map(|_| ())
}

/// Best effort: a failure that cannot be recorded is still logged and in the statuses.
pub(super) async fn record_failure(backend: &Backend, name: &str, failed_at: i64, error: &str) {
    let sql = "INSERT INTO projection_failures (name, failed_at, error) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET failed_at = excluded.failed_at,
               error = excluded.error";
    if let Err(error) = execute(backend, sql, params![name, failed_at, error]).await {
        tracing::warn!(projection = name, %error, "cannot record the projector's failure");
    }
}

pub(super) async fn clear_failure(backend: &Backend, name: &str) {
    let sql = "DELETE FROM projection_failures WHERE name = $1";
    if let Err(error) = execute(backend, sql, params![name]).await {
        tracing::warn!(projection = name, %error, "cannot clear the projector's failure");
    }
}

async fn execute(
    backend: &Backend,
    sql: &str,
    params: &[crate::database::Param],
) -> Result<(), sqlx::Error> {
    let mut tx = Tx::begin(backend, "").await?;
    tx.execute(sql, params).await?;
    tx.commit().await
}

/// The last failure recorded for a projector that has not moved on since: the position that
/// failed and why.
pub async fn recorded_failure(
    store: &EventStore,
    name: &str,
) -> Result<Option<(i64, String)>, ProjectionError> {
    let mut tx = Tx::begin(store.read_model_backend(), "").await?;
    tx.execute(FAILURES, &[]).await?;
    let found = tx
        .fetch_optional(
            "SELECT failed_at, error FROM projection_failures WHERE name = $1",
            params![name],
        )
        .await?;
    tx.commit().await?;
    Ok(found)
}

/// The checkpoint name of a projection's fresh tables while it is rebuilt.
pub fn rebuild_name(name: &str) -> String {
    format!("{name}{REBUILD_SUFFIX}")
}

/// A projection's checkpoint and version as stored, if it has run.
pub async fn checkpoint(
    store: &EventStore,
    name: &str,
) -> Result<Option<(i64, i64)>, ProjectionError> {
    let mut tx = Tx::begin(store.read_model_backend(), "").await?;
    tx.execute(CHECKPOINTS, &[]).await?;
    let found = tx
        .fetch_optional(
            "SELECT position, version FROM projection_checkpoints WHERE name = $1",
            params![name],
        )
        .await?;
    tx.commit().await?;
    Ok(found)
}
