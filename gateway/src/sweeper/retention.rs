//! The retention duty: customers' personal data is erased once its organization's
//! `retention_days` have passed since the conversation ended, a bounded batch a tick
//! ([`RETENTION_BATCH`]), through `erasure::erase_conversation`.

use chrono::{DateTime, Utc};
use store::command::CommandContext;

use crate::state::AppState;

/// At most this many conversations are erased for retention in one tick (the rest wait for
/// the next ones), so a long-kept history set to a short retention never stalls the sweeper.
pub const RETENTION_BATCH: i64 = 50;

/// When a conversation that ended before this, in an organization keeping personal data
/// `days` days, is due for erasure.
pub fn retention_cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(days))
}

/// Erases, for each organization with a retention, the customer conversations that ended
/// more than its `retention_days` before `now` and are not erased yet — at most
/// [`RETENTION_BATCH`] in all. They are found in the read models (a lagging one only delays an
/// erasure to a later tick); each erasure is decided by its conversation.
pub(super) async fn erase_due(state: &AppState, now: DateTime<Utc>) {
    let organizations = match projections::directory::read::retentions(state.backend()).await {
        Ok(organizations) => organizations,
        Err(error) => {
            tracing::warn!(%error, "cannot read the organizations' retention; trying again next tick");
            return;
        }
    };
    let ctx = CommandContext {
        actor: Some(serde_json::json!({ "kind": "sweeper" })),
        idempotency: None,
    };
    let mut left = RETENTION_BATCH;
    for (organization_id, days) in organizations {
        if left <= 0 {
            return;
        }
        let cutoff = retention_cutoff(now, days);
        let due = match projections::conversations::read::past_retention(
            state.backend(),
            organization_id,
            cutoff,
            left,
        )
        .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%organization_id, %error, "cannot find what the retention erases; trying again next tick");
                continue;
            }
        };
        for conversation_id in due {
            left -= 1;
            match crate::erasure::erase_conversation(
                state,
                organization_id,
                conversation_id,
                domain::values::Author::system(),
                domain::conversation::ErasureReason::Retention,
                &ctx,
            )
            .await
            {
                Ok(_) => {
                    tracing::info!(%organization_id, %conversation_id, "erased past the organization's retention");
                }
                Err(error) => {
                    tracing::warn!(%organization_id, %conversation_id, %error, "erasing past the retention failed; trying again next tick");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_retention_erases_what_ended_its_days_before_now() {
        // Wednesday 2026-11-25, noon.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(
            retention_cutoff(now, 30),
            Utc.with_ymd_and_hms(2026, 10, 26, 12, 0, 0).unwrap()
        );
        assert_eq!(
            retention_cutoff(now, 1),
            Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
        );
    }
}
