//! What a topic holds after a position, read from the store (a queue's stream; a
//! conversation's own stream and what its queues recorded of it) or, for `activity`, from the
//! activity read model: the replay before `subscribed`, and the catch-up of a subscription
//! that fell behind the live hub.

use std::collections::BTreeMap;

use store::event::StoredEvent;
use uuid::Uuid;

use super::frames::{conversation_body, event_frame, full_body};
use super::outgoing::Out;
use super::session::Who;
use super::topics::{Plan, QUEUE_TOPIC};
use crate::state::AppState;

/// Sends what the topic holds after `last` from the store; returns the position covered.
pub(super) async fn replay(
    state: &AppState,
    who: &Who,
    plan: &Plan,
    name: &str,
    last: &mut i64,
    out: &Out,
) -> Option<i64> {
    let head = state.store.head().await.ok()?;
    match plan {
        Plan::Activity => {
            state.wait_for_read_models(head).await;
            activity_page(state, who, name, last, out).await?;
        }
        Plan::Queue { queue_id } => {
            let id = queue_id.to_string();
            let mut read = *last;
            loop {
                let events = state
                    .store
                    .load_stream_window("queue", &id, read, Some(head), Some(REPLAY_PAGE))
                    .await
                    .ok()?;
                for event in events
                    .iter()
                    .filter(|e| QUEUE_TOPIC.contains(&e.event_type.as_str()))
                {
                    if !out.send(&event_frame(name, event, full_body(event))).await {
                        return None;
                    }
                    *last = (*last).max(event.position);
                }
                match next_page(&events) {
                    Some(next) => read = next,
                    None => break,
                }
            }
        }
        Plan::Conversation {
            conversation_id,
            customer,
        } => {
            let mut after = *last;
            let history = ConversationHistory {
                id: *conversation_id,
            };
            loop {
                let (events, reached) = history.page(state, after, head).await?;
                for event in &events {
                    if let Some(body) = conversation_body(event, *customer) {
                        if !out.send(&event_frame(name, event, body)).await {
                            return None;
                        }
                    }
                    *last = (*last).max(event.position);
                }
                match reached {
                    Some(reached) => after = reached,
                    None => break,
                }
            }
        }
    }
    Some(head)
}

/// How many events a replay reads from one stream at a time: what it holds in memory.
const REPLAY_PAGE: u32 = 500;

/// Where the next page of a stream begins after `events`, one page of it: their last position
/// when they fill the page; `None` when the stream had no more.
fn next_page(events: &[StoredEvent]) -> Option<i64> {
    events
        .last()
        .filter(|_| events.len() == REPLAY_PAGE as usize)
        .map(|event| event.position)
}

/// Where one conversation's events are: its own stream, and what the queues it went through
/// recorded of it (found by an index: `EventStore::load_queue_events_naming`). A conversation's
/// replay reads only those, so what it costs is the conversation's own life, never its queues'
/// other customers.
struct ConversationHistory {
    id: Uuid,
}

impl ConversationHistory {
    /// The conversation's events after `after` up to `head`, in log order: a page of its own
    /// stream with what its queues recorded of it up to the page's last position; and that
    /// position when more may follow (`None`: the replay is done).
    async fn page(
        &self,
        state: &AppState,
        after: i64,
        head: i64,
    ) -> Option<(Vec<StoredEvent>, Option<i64>)> {
        let own = state
            .store
            .load_stream_window(
                "conversation",
                &self.id.to_string(),
                after,
                Some(head),
                Some(REPLAY_PAGE),
            )
            .await
            .ok()?;
        let reached = next_page(&own);
        let upto = reached.unwrap_or(head);
        let mut all: BTreeMap<i64, StoredEvent> =
            own.into_iter().map(|e| (e.position, e)).collect();
        let mut read = after;
        loop {
            let recorded = state
                .store
                .load_queue_events_naming(self.id, (read, upto), REPLAY_PAGE)
                .await
                .ok()?;
            let next = next_page(&recorded);
            all.extend(recorded.into_iter().map(|e| (e.position, e)));
            match next {
                Some(next) => read = next,
                None => break,
            }
        }
        Some((all.into_values().collect(), reached))
    }
}

/// Sends the activity read model's rows after `last` for the session's agent: the same
/// selection as `GET /v1/activity` (its organizations; direct chats only its own).
pub(super) async fn activity_page(
    state: &AppState,
    who: &Who,
    name: &str,
    last: &mut i64,
    out: &Out,
) -> Option<()> {
    const PAGE: i64 = 500;
    let two_factor = crate::second_factor::enabled(state.backend(), who.id)
        .await
        .ok()?;
    loop {
        let rows = projections::activity::read::activity_for(
            state.backend(),
            who.id,
            two_factor,
            *last,
            PAGE,
        )
        .await
        .ok()?;
        // The read model chooses what the agent sees; the frames carry the events themselves,
        // flat, plus `at` (API.md), as every other topic's do.
        let positions: Vec<i64> = rows.iter().map(|row| row.position).collect();
        let events = state.store.read_positions(&positions).await.ok()?;
        for event in &events {
            if !out.send(&event_frame(name, event, full_body(event))).await {
                return None;
            }
            *last = (*last).max(event.position);
        }
        if let Some(row) = rows.last() {
            *last = (*last).max(row.position);
        }
        if (rows.len() as i64) < PAGE {
            return Some(());
        }
    }
}
