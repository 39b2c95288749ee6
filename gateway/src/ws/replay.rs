//! What a topic holds after a position, read from the store (a queue's stream; a
//! conversation's own stream and what its queues recorded of it) or, for `activity`, from the
//! activity read model: the replay before `subscribed`, and the catch-up of a subscription
//! that fell behind the live hub.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use store::event::StoredEvent;
use uuid::Uuid;

use super::frames::{conversation_body, conversation_of, event_frame, full_body};
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
            let events = state
                .store
                .load_stream_since("queue", &queue_id.to_string(), *last)
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
        }
        Plan::Conversation {
            conversation_id,
            customer,
        } => {
            let events = conversation_history(state, *conversation_id, *last).await?;
            for event in &events {
                if let Some(body) = conversation_body(event, *customer) {
                    if !out.send(&event_frame(name, event, body)).await {
                        return None;
                    }
                }
                *last = (*last).max(event.position);
            }
        }
    }
    Some(head)
}

/// How many of a queue's events precede a conversation's first event in the append that
/// creates it: the queue decides first and the conversation's start follows, in one append
/// (`workflow::join`: `CustomerJoinedQueue`; `workflow::left_message`: `MessageLeft`).
const QUEUE_EVENTS_BEFORE_START: i64 = 1;

/// Every event of one conversation after `after`: its own stream and what the queues it went
/// through recorded of it, in log order. A queue's events are read from the append that
/// created the conversation on, never before: what the queue did before concerns others, and
/// reading it made a customer's subscription cost its queue's whole history.
async fn conversation_history(
    state: &AppState,
    conversation_id: Uuid,
    after: i64,
) -> Option<Vec<StoredEvent>> {
    let id = conversation_id.to_string();
    let own = state.store.load_stream("conversation", &id).await.ok()?;
    let before_start = own
        .first()
        .map_or(0, |first| first.position - QUEUE_EVENTS_BEFORE_START - 1);
    let mut queues: HashSet<String> = HashSet::new();
    for event in &own {
        if let Some(queue) = event.payload.get("queue_id").and_then(Value::as_str) {
            queues.insert(queue.to_owned());
        }
    }
    let mut all: BTreeMap<i64, StoredEvent> = own
        .into_iter()
        .filter(|e| e.position > after)
        .map(|e| (e.position, e))
        .collect();
    for queue in queues {
        let events = state
            .store
            .load_stream_since("queue", &queue, after.max(before_start))
            .await
            .ok()?;
        for event in events
            .into_iter()
            .filter(|e| conversation_of(e) == Some(conversation_id))
        {
            all.insert(event.position, event);
        }
    }
    Some(all.into_values().collect())
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
