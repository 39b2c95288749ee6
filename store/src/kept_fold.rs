//! A duty's fold of the whole log — the sweeper's watch (who waits where, the schedules), the
//! router's (auto queues, open handoffs) — kept in the snapshots' table with the position it
//! reached, so that a process resumes it from there. Before, each duty read the log from its
//! first event at every start: on a 1,000,000-event log the two of them kept both cores busy
//! for about eleven seconds (every payload parsed), during which the server hardly answered.
//!
//! Like an aggregate's snapshot it is a cache of the log, never a truth: tagged with the fold's
//! version and read only under the same one; a missing or unreadable one means a fold from the
//! start. What it holds is bounded by what is live (waiting customers, open handoffs), not by
//! history.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::log::EventStore;
use crate::snapshot::StoredSnapshot;

/// The snapshots' `aggregate_type` of the duties' folds (their `aggregate_id` is the duty's
/// name).
const KIND: &str = "fold";

/// A fold is kept again once the log has moved this far past the last one kept…
const EVERY_EVENTS: i64 = 1_000;
/// …and at most this often: a start then folds at most this long's events, plus a thousand.
const EVERY: Duration = Duration::from_secs(5);

/// Where a duty's fold was last kept.
pub struct KeptFold {
    name: &'static str,
    fold_version: u32,
    kept: i64,
    kept_at: Instant,
}

impl KeptFold {
    /// The fold `name` as last kept under `fold_version`, and the log position it had reached;
    /// a fresh fold at 0 when none was kept (or it cannot be read or decoded: the log is the
    /// truth, and folding it from the start is what happened before).
    pub async fn resume<F: DeserializeOwned + Default>(
        store: &EventStore,
        name: &'static str,
        fold_version: u32,
    ) -> (KeptFold, F, i64) {
        let (fold, position) = match store.load_snapshot(KIND, name, fold_version).await {
            Ok(Some(snapshot)) => match serde_json::from_value(snapshot.state) {
                Ok(fold) => (fold, snapshot.version),
                Err(error) => {
                    tracing::warn!(name, %error, "a kept fold cannot be read; folding the log from the start");
                    (F::default(), 0)
                }
            },
            Ok(None) => (F::default(), 0),
            Err(error) => {
                tracing::warn!(name, %error, "cannot read a kept fold; folding the log from the start");
                (F::default(), 0)
            }
        };
        let kept = KeptFold {
            name,
            fold_version,
            kept: position,
            kept_at: Instant::now(),
        };
        (kept, fold, position)
    }

    /// Keeps `fold`, which has folded the log up to `position`, when the log has moved on far
    /// enough since the last one ([`EVERY_EVENTS`], [`EVERY`]). A failure is logged and tried
    /// again later: the fold goes on in memory.
    pub async fn keep<F: Serialize>(&mut self, store: &EventStore, fold: &F, position: i64) {
        if position < self.kept + EVERY_EVENTS || self.kept_at.elapsed() < EVERY {
            return;
        }
        self.keep_now(store, fold, position).await;
    }

    /// Keeps `fold` at `position` if the log moved at all since the last one (a duty that
    /// stops keeps where it got to).
    pub async fn keep_now<F: Serialize>(&mut self, store: &EventStore, fold: &F, position: i64) {
        if position <= self.kept {
            return;
        }
        let state = match serde_json::to_value(fold) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(name = self.name, %error, "a fold cannot be kept");
                return;
            }
        };
        let snapshot = StoredSnapshot {
            version: position,
            state,
        };
        match store
            .save_snapshot(KIND, self.name, self.fold_version, &snapshot)
            .await
        {
            Ok(()) => {
                self.kept = position;
                self.kept_at = Instant::now();
            }
            Err(error) => tracing::warn!(name = self.name, %error, "a fold cannot be kept"),
        }
    }
}
