//! Snapshots: an aggregate's state after events 1..V of its stream, kept in a table beside the
//! log so that a command whose stream this process has not cached folds only the events after
//! V (invariant 10). A snapshot is a cache of the log, never a truth: it is tagged with the
//! aggregate's fold version (`domain::Snapshot`) and read only under the same one, and a missing
//! or unreadable snapshot means a replay from the start. The table is not append-only; the log
//! still is.

use crate::error::StoreError;
use crate::log::{Backend, EventStore};
use crate::{postgres, sqlite};

/// One stored snapshot: the state, as the aggregate serializes it, after event `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSnapshot {
    pub version: i64,
    pub state: serde_json::Value,
}

impl EventStore {
    /// The newest snapshot of a stream taken under fold version `fold_version`, if any.
    pub async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        fold_version: u32,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        match self.backend() {
            Backend::Sqlite(_, readers) => {
                sqlite::load_snapshot(readers, aggregate_type, aggregate_id, fold_version).await
            }
            Backend::Postgres(pool) => {
                postgres::load_snapshot(pool, aggregate_type, aggregate_id, fold_version).await
            }
        }
    }

    /// Keeps `snapshot` of a stream under `fold_version`, unless one at a later version is
    /// there already (two processes may both take one).
    pub async fn save_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        fold_version: u32,
        snapshot: &StoredSnapshot,
    ) -> Result<(), StoreError> {
        match self.backend() {
            Backend::Sqlite(pool, _) => {
                sqlite::save_snapshot(pool, aggregate_type, aggregate_id, fold_version, snapshot)
                    .await
            }
            Backend::Postgres(pool) => {
                postgres::save_snapshot(pool, aggregate_type, aggregate_id, fold_version, snapshot)
                    .await
            }
        }
    }
}
