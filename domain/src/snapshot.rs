//! The version of each aggregate's fold. The store keeps snapshots of aggregates — the state
//! its `apply` gives after events 1..V of a stream — tagged with this version, and ignores a
//! snapshot of another one: a changed `apply`, or a changed shape of the state, never starts
//! from a snapshot that older code took, but from the log.

use cqrs_es::Aggregate;

pub trait Snapshot: Aggregate + 'static {
    /// Bump it whenever `apply`, or the fields of the aggregate, change meaning.
    const SNAPSHOT_VERSION: u32;
}
