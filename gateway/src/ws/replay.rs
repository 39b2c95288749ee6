//! What a topic holds after a position, read from the store (a queue's stream; a
//! conversation's own stream and what its queues recorded of it) or, for `activity`, from the
//! activity read model: the replay before `subscribed`, and the catch-up of a subscription
//! that fell behind the live hub.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
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
            let history = ConversationHistory::read(state, *conversation_id).await?;
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

/// How many of a queue's events precede a conversation's first event in the append that
/// creates it: the queue decides first and the conversation's start follows, in one append
/// (`workflow::join`: `CustomerJoinedQueue`; `workflow::left_message`: `MessageLeft`).
const QUEUE_EVENTS_BEFORE_START: i64 = 1;

/// The conversation's own events that open and close the stretches its queues can hold
/// events of it in, and that name those queues.
const LIFECYCLE: [&str; 5] = domain::event_types![
    "ConversationStarted",
    "AgentAssigned",
    "ConversationRequeued",
    "ConversationEnded",
    "ConversationReopened",
];

/// Where one conversation's events are: its own stream, and the queues it went through in the
/// stretches of the log it was open in ([`open_periods`]). A conversation's replay reads only
/// those, so what it costs is the conversation's own life, never its queues' history before,
/// between or after it.
struct ConversationHistory {
    id: Uuid,
    queues: BTreeSet<String>,
    periods: Vec<Period>,
}

/// A stretch of positions `(from, upto]`; `upto` `None`: to the log's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Period {
    from: i64,
    upto: Option<i64>,
}

impl ConversationHistory {
    async fn read(state: &AppState, conversation_id: Uuid) -> Option<ConversationHistory> {
        let lifecycle = state
            .store
            .load_stream_of_types("conversation", &conversation_id.to_string(), &LIFECYCLE)
            .await
            .ok()?;
        let queues = lifecycle
            .iter()
            .filter_map(|event| event.payload.get("queue_id").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        Some(ConversationHistory {
            id: conversation_id,
            queues,
            periods: open_periods(&lifecycle),
        })
    }

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
        for period in &self.periods {
            let from = after.max(period.from);
            let until = period.upto.map_or(upto, |end| end.min(upto));
            if until <= from {
                continue;
            }
            for queue in &self.queues {
                let mut read = from;
                loop {
                    // Only what names this conversation: the queue's other customers' events
                    // in the same stretch are passed over in the database.
                    let events = state
                        .store
                        .load_stream_window_naming(
                            "queue",
                            queue,
                            (read, until),
                            REPLAY_PAGE,
                            self.id,
                        )
                        .await
                        .ok()?;
                    let next = next_page(&events);
                    all.extend(events.into_iter().map(|e| (e.position, e)));
                    match next {
                        Some(next) => read = next,
                        None => break,
                    }
                }
            }
        }
        Some((all.into_values().collect(), reached))
    }
}

/// The stretches of the log in which a conversation's queues can hold events of it, from its
/// lifecycle events in log order: from the append that started it (its queue's event comes
/// first in it) or from a reopening, to its end; the last to the log's end while it is open.
///
/// A queue records a conversation only while it waits in the queue's line and as it leaves it
/// (joined, offered, picked, left, transferred in), and the conversation's own stream follows
/// the queue, never goes before it: `AgentAssigned` after the pick, `ConversationRequeued`
/// after the transfer in, and a waiting conversation ends only once its line let it go
/// (`ConversationError::StillWaiting`). So an ended conversation is in no line until it is
/// reopened, and its queues hold nothing of it between an end and the next reopening.
fn open_periods(lifecycle: &[StoredEvent]) -> Vec<Period> {
    let mut periods = Vec::new();
    let mut open: Option<i64> = None;
    for event in lifecycle {
        match event.event_type.as_str() {
            "ConversationStarted" if open.is_none() => {
                open = Some(event.position - QUEUE_EVENTS_BEFORE_START - 1);
            }
            "ConversationReopened" if open.is_none() => open = Some(event.position),
            "ConversationEnded" => {
                if let Some(from) = open.take() {
                    periods.push(Period {
                        from,
                        upto: Some(event.position),
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(from) = open {
        periods.push(Period { from, upto: None });
    }
    periods
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(position: i64, event_type: &str) -> StoredEvent {
        StoredEvent {
            position,
            event_id: Uuid::new_v4(),
            aggregate_type: "conversation".into(),
            aggregate_id: "c".into(),
            sequence: position,
            event_type: event_type.into(),
            event_version: "1".into(),
            payload: Value::Null,
            actor: None,
            recorded_at: chrono::Utc::now(),
            idempotency_key: None,
        }
    }

    #[test]
    fn a_conversation_is_open_from_its_queues_first_event_to_each_end_and_from_each_reopening() {
        let lifecycle = [
            at(10, "ConversationStarted"),
            at(14, "AgentAssigned"),
            at(30, "ConversationRequeued"),
            at(41, "ConversationEnded"),
            at(60, "ConversationReopened"),
            at(61, "ConversationReopened"),
            at(75, "ConversationEnded"),
            at(76, "ConversationEnded"),
            at(90, "ConversationReopened"),
        ];
        assert_eq!(
            open_periods(&lifecycle),
            vec![
                // The join, one event before the start, is inside: positions are exclusive.
                Period {
                    from: 8,
                    upto: Some(41)
                },
                Period {
                    from: 60,
                    upto: Some(75)
                },
                Period {
                    from: 90,
                    upto: None
                },
            ]
        );
        assert_eq!(open_periods(&[]), Vec::new());
    }
}
