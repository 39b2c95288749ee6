//! Runs the domain's follow-ups (`domain::process`) from the durable feed: join → the
//! conversation, pick → its agent, leave → its end, transfer → the target queue, an end or a
//! transfer away from an agent → the agent's workload lets the conversation go. It keeps its
//! place in a checkpoint and moves it only after an event's follow-ups are done, so a crash
//! between a first event and its follow-up repeats the follow-up, which the aggregates make
//! harmless. The gateway runs the same follow-ups at once after its own commands (`follow`),
//! to answer with the work finished; whichever comes second finds it done. It also runs an
//! erasure's clean-up outside the log (`erasure::after_erased`) for each `CustomerErased`, so a
//! crash between the erasure and its clean-up is made good.

use std::time::{Duration, Instant};

use cqrs_es::Aggregate;
use domain::conversation::Conversation;
use domain::process::{follow_ups, FollowUp};
use domain::queue::Queue;
use domain::workload::Workload;
use domain::Event;
use store::command::{CommandContext, CommandError, Commands};
use store::event::StoredEvent;
use store::follow::{pause, Follower};
use tokio::sync::watch;
use tracing::Instrument;

use crate::state::AppState;

/// The checkpoint's name in the store.
pub const CHECKPOINT: &str = store::log::EventStore::PROCESS_MANAGER_CHECKPOINT;
const BATCH: usize = 500;
/// How long the process manager may go without saving its place while events come.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How long a failed step waits before it is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// The conversation's events with follow-ups.
const CONVERSATION_FOLLOW_UPS: [&str; 2] =
    domain::event_types!["ConversationEnded", "HandoffAccepted"];
/// The conversation's event whose clean-up outside the log the process manager repeats.
const ERASED: &str = domain::event::checked("CustomerErased");
/// How often an erasure's clean-up is tried here before it is logged and left.
const CLEAN_UP_ATTEMPTS: u32 = 5;

/// What became of one follow-up.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It appended these events.
    Done(Vec<StoredEvent>),
    /// Its aggregate refused it: the work was already done, or the state moved on.
    Settled,
}

/// Runs every follow-up of `event`, in order. An error means the store is unavailable: the
/// caller tries again later.
pub async fn follow(
    commands: &Commands,
    event_id: uuid::Uuid,
    event: &Event,
) -> Result<Vec<Outcome>, String> {
    let ctx = CommandContext {
        actor: Some(serde_json::json!({"kind": "process_manager"})),
        idempotency: None,
    };
    let mut outcomes = Vec::new();
    for follow_up in follow_ups(event_id, event) {
        let outcome = match follow_up {
            FollowUp::Queue { queue_id, command } => outcome_of(
                commands
                    .execute::<Queue>(&queue_id.to_string(), command, &(), &ctx)
                    .await
                    .map(|executed| executed.events),
            )?,
            FollowUp::Conversation {
                conversation_id,
                command,
            } => outcome_of(
                commands
                    .execute::<Conversation>(&conversation_id.to_string(), command, &(), &ctx)
                    .await
                    .map(|executed| executed.events),
            )?,
            FollowUp::Workload {
                workload_id,
                command,
            } => outcome_of(
                commands
                    .execute::<Workload>(&workload_id.to_string(), command, &(), &ctx)
                    .await
                    .map(|executed| executed.events),
            )?,
            FollowUp::Transfer {
                queue_id,
                transfer_in,
                conversation_id,
                requeue,
            } => outcome_of(
                commands
                    .execute_pair::<Queue, Conversation>(
                        (&queue_id.to_string(), transfer_in),
                        (&conversation_id.to_string(), requeue),
                        (&(), &()),
                        &ctx,
                    )
                    .await
                    .map(|(arrived, requeued)| {
                        arrived.events.into_iter().chain(requeued.events).collect()
                    }),
            )?,
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Runs the follow-ups of `events` and of whatever they append in turn, at once: what a
/// command's caller needs finished before it is answered. Returns the last position written.
pub async fn follow_through(commands: &Commands, events: &[StoredEvent]) -> Result<i64, String> {
    let mut last = events.iter().map(|e| e.position).max().unwrap_or(0);
    let mut work: std::collections::VecDeque<StoredEvent> = events.iter().cloned().collect();
    while let Some(stored) = work.pop_front() {
        let Some(event) = decode(&stored) else {
            continue;
        };
        for outcome in follow(commands, stored.event_id, &event).await? {
            if let Outcome::Done(appended) = outcome {
                last = appended.iter().map(|e| e.position).fold(last, i64::max);
                work.extend(appended);
            }
        }
    }
    Ok(last)
}

/// What a follow-up's command came to: its events, or settled (refused: done before, or the
/// state moved on); an error is the store's.
fn outcome_of<E: std::fmt::Display>(
    result: Result<Vec<StoredEvent>, CommandError<E>>,
) -> Result<Outcome, String> {
    match result {
        Ok(events) if events.is_empty() => Ok(Outcome::Settled),
        Ok(events) => Ok(Outcome::Done(events)),
        Err(CommandError::Rejected(refusal)) => {
            tracing::debug!(%refusal, "follow-up settled");
            Ok(Outcome::Settled)
        }
        Err(error) => Err(error.to_string()),
    }
}

/// Decodes the events the process manager reacts to: queues', and conversations' ends and
/// accepted handoffs (the only events with follow-ups).
fn decode(event: &StoredEvent) -> Option<Event> {
    let reacts = event.aggregate_type == Queue::TYPE
        || (event.aggregate_type == Conversation::TYPE
            && CONVERSATION_FOLLOW_UPS.contains(&event.event_type.as_str()));
    if !reacts {
        return None;
    }
    match Event::decode(&event.aggregate_type, event.payload.clone()) {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            tracing::error!(position = event.position, %error, "undecodable event");
            None
        }
    }
}

/// Follows the feed until `shutdown` changes.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let store = state.store.clone();
    let position = loop {
        match store.get_checkpoint(CHECKPOINT).await {
            Ok(position) => break position.unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, "process manager cannot read its checkpoint; retrying");
                if pause(&mut shutdown, RETRY).await {
                    return;
                }
            }
        }
    };
    state.metrics.process_manager_position.set(position);
    let mut feed = Follower::new("process manager", &store, position).batch(BATCH);
    // The place is saved at most every `SAVE_EVERY` while events come, when the log goes
    // quiet, and at shutdown: a crash repeats the follow-ups since, which the aggregates make
    // harmless, where a save per batch was a commit to the log's file, waiting for its flush.
    let mut saved = position;
    let mut saved_at = Instant::now();
    while let Some(batch) = feed.next_batch(&mut shutdown).await {
        for stored in &batch {
            if !react(&state, stored, &mut shutdown).await {
                return;
            }
        }
        state.metrics.process_manager_position.set(feed.position());
        if feed.position() > saved && (batch.is_empty() || saved_at.elapsed() >= SAVE_EVERY) {
            saved = save(&store, feed.position()).await.unwrap_or(saved);
            saved_at = Instant::now();
        }
    }
    // Shutdown came between batches: everything read was done.
    if feed.position() > saved {
        let _ = save(&store, feed.position()).await;
    }
}

/// Saves the process manager's place; the place saved, or `None` when it could not be.
async fn save(store: &store::log::EventStore, position: i64) -> Option<i64> {
    match store.set_checkpoint(CHECKPOINT, position).await {
        Ok(()) => Some(position),
        Err(error) => {
            tracing::warn!(%error, "process manager cannot save its checkpoint");
            None
        }
    }
}

/// Does what `stored` asks of the process manager, retrying until it is done; false when
/// shutdown came first.
async fn react(
    state: &AppState,
    stored: &StoredEvent,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    // An erasure's clean-up outside the log, again (it ran after the command, unless the
    // process stopped in between): idempotent. A clean-up that keeps failing is logged and left
    // (erasing the conversation again runs it again), so that it never holds up the follow-ups
    // of everything after it.
    if stored.aggregate_type == Conversation::TYPE && stored.event_type == ERASED {
        if let Ok(conversation_id) = stored.aggregate_id.parse() {
            let mut attempts = 0;
            while let Err(error) = crate::erasure::after_erased(state, conversation_id).await {
                attempts += 1;
                if attempts >= CLEAN_UP_ATTEMPTS {
                    tracing::error!(position = stored.position, %conversation_id, %error, "an erasure's clean-up failed; erase the conversation again to retry it");
                    break;
                }
                tracing::warn!(position = stored.position, %error, "an erasure's clean-up failed; retrying");
                if pause(shutdown, RETRY).await {
                    return false;
                }
            }
        }
    }
    let Some(event) = decode(stored) else {
        return true;
    };
    loop {
        match follow(&state.commands, stored.event_id, &event)
            .instrument(tracing::info_span!("follow_up", position = stored.position))
            .await
        {
            Ok(outcomes) => {
                for outcome in outcomes {
                    let counter = match outcome {
                        Outcome::Done(_) => &state.metrics.follow_ups_run,
                        Outcome::Settled => &state.metrics.follow_ups_settled,
                    };
                    counter.inc();
                }
                return true;
            }
            Err(error) => {
                tracing::warn!(position = stored.position, %error, "follow-up failed; retrying");
                if pause(shutdown, RETRY).await {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use domain::organization::{Organization, OrganizationCommand};
    use uuid::Uuid;

    use super::*;

    /// The place is saved at most every `SAVE_EVERY` while events come; what was done before
    /// a shutdown is saved then, so a restart does not repeat it.
    #[tokio::test]
    async fn the_place_reached_is_saved_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        let state = AppState::new(store.clone());
        let (stop, stopped) = watch::channel(false);
        let manager = tokio::spawn(run(state.clone(), stopped));
        let org = Uuid::new_v4();
        let create = OrganizationCommand::CreateOrganization {
            organization_id: org,
            name: domain::values::Name::parse("Acme").unwrap(),
            owner_id: None,
        };
        state
            .commands
            .execute::<Organization>(&org.to_string(), create, &(), &CommandContext::default())
            .await
            .unwrap();
        let head = store.head().await.unwrap();
        for _ in 0..100 {
            if state.metrics.process_manager_position.get() == head {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(state.metrics.process_manager_position.get(), head);
        stop.send(true).unwrap();
        manager.await.unwrap();
        assert_eq!(store.get_checkpoint(CHECKPOINT).await.unwrap(), Some(head));
    }
}
