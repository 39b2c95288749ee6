//! Opening hours: queues with a schedule are opened and closed when the schedule changes its
//! mind ([`Watch::due`]); a change that fails is tried again on the next tick.

use chrono::{DateTime, Utc};
use domain::queue::QueueCommand;

use super::execute;
use super::watch::Watch;
use crate::state::AppState;

/// Opens or closes each queue whose schedule asks it now.
pub(super) async fn apply(state: &AppState, watch: &mut Watch, now: DateTime<Utc>) {
    for change in watch.due(now) {
        let command = if change.open {
            QueueCommand::OpenQueue {
                by: None,
                by_operator: false,
            }
        } else {
            QueueCommand::CloseQueue {
                by: None,
                by_operator: false,
            }
        };
        if let Err(error) = execute(state, change.queue_id, command).await {
            tracing::warn!(queue_id = %change.queue_id, %error, "scheduled opening or closing failed; retrying");
            watch.retry(change.queue_id);
        }
    }
}
