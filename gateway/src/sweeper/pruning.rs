//! Housekeeping of what expires beside the log: kept answers past their 24 hours
//! (`Idempotency-Key`), and on Postgres the shared tables' stale rows of nodes and signs of
//! life. Done at most every [`PRUNE_EVERY`], and tried again on the next tick when it fails.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::SweeperConfig;
use crate::state::AppState;

/// Kept answers past their 24 hours are forgotten this often (they answer no key meanwhile).
pub(super) const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Prunes, and notes when in `pruned` if it worked.
pub(super) async fn prune(state: &AppState, config: &SweeperConfig, pruned: &mut Option<Instant>) {
    let pruning = async {
        crate::secrets::prune_responses(state.backend(), Utc::now().timestamp())
            .await
            .map_err(|error| error.to_string())?;
        if let Some(cluster) = state.store.cluster() {
            cluster
                .forget_stale(config.customer_timeout.max(PRUNE_EVERY))
                .await
                .map_err(|error| error.to_string())?;
        }
        Ok::<(), String>(())
    };
    match pruning.await {
        Ok(()) => *pruned = Some(Instant::now()),
        Err(error) => tracing::warn!(%error, "cannot prune the kept answers; trying again"),
    }
}
