//! The customer time-out (API.md, Limits): a waiting customer who showed no sign of life for
//! the configured time leaves its queue (`CustomerLeftQueue` with `reason: "timeout"`). The
//! signs are this node's, and on Postgres every node's: a customer is never dropped for what
//! this node cannot see.

use chrono::{DateTime, Utc};
use domain::queue::{LeaveReason, QueueCommand};

use super::watch::Watch;
use super::{activity, execute, SweeperConfig};
use crate::state::AppState;

/// Times out the silent waiting customers, as of `now`; `started` is when this sweeper began
/// watching (nobody was heard from before it).
pub(super) async fn time_out(
    state: &AppState,
    watch: &mut Watch,
    config: &SweeperConfig,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    let activity = activity();
    if let Ok(timeout) = chrono::Duration::from_std(config.customer_timeout) {
        activity.forget_before(now - timeout);
    }
    let mut signs = activity.signs();
    if let Some(cluster) = state.store.cluster() {
        // Every node's signs, or no time-out this tick: a customer is not dropped for what
        // this node cannot see.
        match cluster.customer_signs(&watch.waiting()).await {
            Ok(shared) => signs = signs.merge(shared),
            Err(error) => {
                tracing::warn!(%error, "cannot read the nodes' signs of life; no time-outs this tick");
                return;
            }
        }
    }
    for (queue_id, conversation_id) in
        watch.timed_out(now, config.customer_timeout, started, &signs)
    {
        let leave = QueueCommand::LeaveQueue {
            conversation_id,
            reason: LeaveReason::Timeout,
            by: None,
        };
        match execute(state, queue_id, leave).await {
            Ok(()) => {
                tracing::info!(%queue_id, %conversation_id, "a silent customer timed out of the queue");
                watch.forget(conversation_id);
            }
            Err(error) => {
                tracing::warn!(%queue_id, %conversation_id, %error, "timing a customer out failed; retrying");
            }
        }
    }
}
