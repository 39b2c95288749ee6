//! Where a command's aggregate comes from, and where it goes after an append: the process's
//! cache (`recent`), else the stream's snapshot, with every event stored after either folded in;
//! after the append, back into the cache, and into a new snapshot when one is due.

use cqrs_es::Aggregate;
use domain::Snapshot;

use super::{decode, CommandError, Commands, Found};
use crate::error::StoreError;
use crate::metrics::Loaded;
use crate::snapshot::StoredSnapshot;

impl Commands {
    /// The aggregate of a stream and the stream's version, as it is now: its snapshot (if
    /// any) and the events after it. For reads outside a command; commands also use the
    /// process's cache ([`Commands::execute`]).
    pub async fn load<A: Snapshot>(
        &self,
        aggregate_id: &str,
    ) -> Result<(A, i64), CommandError<A::Error>> {
        let (aggregate, version) = self.snapshot::<A>(aggregate_id).await;
        let later = self
            .store
            .load_stream_after(A::TYPE, aggregate_id, version)
            .await?;
        let found = fold::<A>(aggregate, version, later, true)?;
        Ok((found.aggregate, found.version))
    }

    /// The aggregate of a stream for a command to decide on, taken out of the cache (under the
    /// stream's turn, so no other command of this process holds it), or else from the
    /// snapshot, with every event stored after it folded in.
    pub(super) async fn current<A: Snapshot>(
        &self,
        aggregate_id: &str,
        recently: Recently,
    ) -> Result<Found<A>, CommandError<A::Error>> {
        let metrics = self.store.metrics();
        let Some((aggregate, version)) = self.recent.take::<A>(A::TYPE, aggregate_id) else {
            let (aggregate, version) = self.snapshot::<A>(aggregate_id).await;
            metrics.record_load(if version > 0 {
                Loaded::Snapshot
            } else {
                Loaded::Log
            });
            let later = self
                .store
                .load_stream_after(A::TYPE, aggregate_id, version)
                .await?;
            return fold::<A>(aggregate, version, later, true);
        };
        metrics.record_load(Loaded::Cache);
        // What this process appended last is usually all there is: then the later events come
        // from memory. One it has not heard of yet fails the append's expected-version check,
        // and the next attempt starts from the snapshot and the database.
        let (later, from_memory) = match recently {
            Recently::FromMemory => {
                self.store
                    .load_stream_after_recent(A::TYPE, aggregate_id, version)
                    .await?
            }
            Recently::FromDatabase => (
                self.store
                    .load_stream_after(A::TYPE, aggregate_id, version)
                    .await?,
                false,
            ),
        };
        metrics.record_aggregate_catch_up(from_memory);
        fold::<A>(aggregate, version, later, !from_memory)
    }

    /// Whether the stream has moved past `version` in the database: another process wrote to
    /// it since what this process's memory held.
    pub(super) async fn moved_on<A: Aggregate>(
        &self,
        aggregate_id: &str,
        version: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.store.stream_version(A::TYPE, aggregate_id).await? != version)
    }

    /// The stream's snapshot under `A`'s fold version and the version it folds, or an empty
    /// aggregate at 0 when there is none or it cannot be read (the log has it all).
    async fn snapshot<A: Snapshot>(&self, aggregate_id: &str) -> (A, i64) {
        let stored = self
            .store
            .load_snapshot(A::TYPE, aggregate_id, A::SNAPSHOT_VERSION)
            .await;
        let read = match stored {
            Ok(Some(snapshot)) => serde_json::from_value::<A>(snapshot.state)
                .map(|aggregate| Some((aggregate, snapshot.version)))
                .map_err(|e| e.to_string()),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        match read {
            Ok(Some(found)) => found,
            Ok(None) => (A::default(), 0),
            Err(reason) => {
                tracing::warn!(
                    aggregate = A::TYPE,
                    aggregate_id,
                    %reason,
                    "snapshot unreadable; replaying the stream"
                );
                (A::default(), 0)
            }
        }
    }

    /// After a successful append: keeps `aggregate` (the fold up to `version`) for the next
    /// command, and writes it as a snapshot, in a task of its own, when the stream has grown by
    /// `snapshot_every` events since `based_on` (the version of the last snapshot or cache entry
    /// this load started from, or of the last multiple of `snapshot_every` passed).
    pub(super) fn appended<A: Snapshot>(
        &self,
        aggregate_id: &str,
        aggregate: A,
        based_on: i64,
        version: i64,
    ) {
        let every = self.snapshot_every;
        let due = version - based_on >= every || based_on / every != version / every;
        if due && version > 0 {
            match serde_json::to_value(&aggregate) {
                Ok(state) => {
                    let store = self.store.clone();
                    let id = aggregate_id.to_owned();
                    tokio::spawn(async move {
                        let snapshot = StoredSnapshot { version, state };
                        match store
                            .save_snapshot(A::TYPE, &id, A::SNAPSHOT_VERSION, &snapshot)
                            .await
                        {
                            Ok(()) => store.metrics().record_snapshot_written(),
                            // Only work saved is lost: the next load folds more of the log.
                            Err(error) => {
                                tracing::warn!(aggregate = A::TYPE, aggregate_id = %id, %error, "snapshot not written");
                            }
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(aggregate = A::TYPE, aggregate_id, %error, "snapshot not serializable");
                }
            }
        }
        self.recent.keep(A::TYPE, aggregate_id, aggregate, version);
    }
}

/// Where a cached aggregate's later events may come from.
#[derive(Clone, Copy)]
pub(super) enum Recently {
    /// This process's newest commits, when they hold them all (a single stream's command,
    /// which confirms a decision that appends nothing with [`Commands::moved_on`]).
    FromMemory,
    /// The database (commands over several streams).
    FromDatabase,
}

/// `aggregate`, the fold of its stream up to `version`, with `later` (the stream's events after
/// it, in order) folded in.
fn fold<A: Aggregate>(
    mut aggregate: A,
    version: i64,
    later: Vec<crate::event::StoredEvent>,
    confirmed: bool,
) -> Result<Found<A>, CommandError<A::Error>> {
    let mut found = Found {
        aggregate: A::default(),
        version,
        folded: 0,
        confirmed,
    };
    for event in later {
        aggregate.apply(decode::<A>(&event)?);
        found.version = event.sequence;
        found.folded += 1;
    }
    found.aggregate = aggregate;
    Ok(found)
}
