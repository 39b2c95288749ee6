//! A subscription's task: it replays what its topic holds after the client's position, says
//! `subscribed`, and then follows the live hub, skipping what it already sent — every later
//! event exactly once (invariant 7). A waiting customer also hears of its place in line
//! (`queue` frames).

use serde_json::json;
use store::event::StoredEvent;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::frames::{conversation_body, conversation_of, event_frame, full_body};
use super::outgoing::Out;
use super::replay::{activity_page, replay};
use super::session::Who;
use super::topics::{Plan, Topic, QUEUE_TOPIC};
use crate::state::AppState;

/// What a subscription keeps between events.
struct Following {
    state: AppState,
    who: Who,
    /// The topic's name, as its frames say it.
    name: String,
    out: Out,
    /// The last position sent, or passed over as none of the topic's.
    last: i64,
    /// A waiting customer's place last told: its queue, and its place there.
    queue_place: Option<(Uuid, i64)>,
}

/// Replays a topic after `after`, says `subscribed`, then follows the hub.
pub(super) async fn follow(
    state: AppState,
    who: Who,
    topic: Topic,
    plan: Plan,
    after: Option<i64>,
    out: Out,
) {
    let name = topic.name();
    // Subscribe to the hub before replaying, so nothing committed during the replay is lost;
    // what the replay already sent is skipped by position.
    let mut live = state.live.hub.subscribe();
    let mut following = Following {
        state,
        who,
        name,
        out,
        last: after.unwrap_or(0),
        queue_place: None,
    };
    if !following.start(&plan).await {
        return;
    }
    loop {
        let event = match live.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Behind the hub: read what was missed from the store, never skip it.
                if !following.catch_up(&plan).await {
                    return;
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if event.position <= following.last {
            continue;
        }
        let sent = match &plan {
            Plan::Activity => following.activity(&event).await,
            Plan::Queue { queue_id } => following.queue(*queue_id, &event).await,
            Plan::Conversation {
                conversation_id,
                customer,
            } => {
                following
                    .conversation(*conversation_id, *customer, &event)
                    .await
            }
        };
        if !sent {
            return;
        }
    }
}

impl Following {
    /// The replay, `subscribed`, and a waiting customer's place. False when the subscription
    /// cannot go on (the client is gone, or the store cannot be read).
    async fn start(&mut self, plan: &Plan) -> bool {
        if !self.catch_up(plan).await {
            return false;
        }
        if !self
            .out
            .send(&json!({ "type": "subscribed", "topic": self.name, "position": self.last }))
            .await
        {
            return false;
        }
        if let Plan::Conversation {
            conversation_id,
            customer: true,
        } = plan
        {
            if !queue_frame(
                &self.state,
                *conversation_id,
                &mut self.queue_place,
                &self.out,
            )
            .await
            {
                return false;
            }
        }
        true
    }

    /// Sends what the topic holds after `last` from the store, up to the head it read.
    async fn catch_up(&mut self, plan: &Plan) -> bool {
        match replay(
            &self.state,
            &self.who,
            plan,
            &self.name,
            &mut self.last,
            &self.out,
        )
        .await
        {
            Some(covered) => {
                self.last = self.last.max(covered);
                true
            }
            None => false,
        }
    }

    /// A live event, for `activity`: the read model decides what the agent sees, so the
    /// page after `last` is read once it holds the event.
    async fn activity(&mut self, event: &StoredEvent) -> bool {
        if projections::activity::TYPES.contains(&event.event_type.as_str()) {
            self.state.wait_for_read_models(event.position).await;
            if activity_page(
                &self.state,
                &self.who,
                &self.name,
                &mut self.last,
                &self.out,
            )
            .await
            .is_none()
            {
                return false;
            }
        }
        self.last = self.last.max(event.position);
        true
    }

    /// A live event, for `queue:ID`.
    async fn queue(&mut self, queue_id: Uuid, event: &StoredEvent) -> bool {
        self.last = event.position;
        if event.aggregate_type == "queue"
            && event.aggregate_id == queue_id.to_string()
            && QUEUE_TOPIC.contains(&event.event_type.as_str())
        {
            self.out
                .send(&event_frame(&self.name, event, full_body(event)))
                .await
        } else {
            true
        }
    }

    /// A live event, for `conversation:ID`; and a waiting customer's place when it moved.
    async fn conversation(
        &mut self,
        conversation_id: Uuid,
        customer: bool,
        event: &StoredEvent,
    ) -> bool {
        self.last = event.position;
        let mut ok = true;
        // An agent's workload names conversations too, but is not the conversation's
        // history (a replay does not read it): never sent here.
        let mine =
            event.aggregate_type != "workload" && conversation_of(event) == Some(conversation_id);
        if mine {
            if let Some(body) = conversation_body(event, customer) {
                ok = self.out.send(&event_frame(&self.name, event, body)).await;
            }
        }
        // A waiting customer hears of its place whenever its line moves, or it moves
        // to another line (a transfer, or waiting again after a pick). Other queues'
        // events cannot change its place: they are not looked at.
        let my_line = self
            .queue_place
            .is_some_and(|(queue_id, _)| event.aggregate_id == queue_id.to_string());
        if ok && customer && event.aggregate_type == "queue" && (mine || my_line) {
            self.state.wait_for_read_models(event.position).await;
            ok = queue_frame(
                &self.state,
                conversation_id,
                &mut self.queue_place,
                &self.out,
            )
            .await;
        }
        ok
    }
}

/// Tells a waiting customer its place when it changed (`queue` frame).
async fn queue_frame(
    state: &AppState,
    conversation_id: Uuid,
    known: &mut Option<(Uuid, i64)>,
    out: &Out,
) -> bool {
    let Ok(Some(conversation)) =
        projections::conversations::read::conversation(state.backend(), conversation_id).await
    else {
        return true;
    };
    let (Some(queue_id), Some(place)) = (conversation.queue_id, conversation.queue_position) else {
        *known = None;
        return true;
    };
    if *known == Some((queue_id, place)) {
        return true;
    }
    *known = Some((queue_id, place));
    out.send(&json!({
        "type": "queue",
        "conversation": conversation_id,
        "queue_position": place,
        "estimated_wait_seconds": estimate(state, queue_id, place).await,
    }))
    .await
}

/// A placeholder estimate of the wait — a minute a place in line — until estimates learn from
/// the queue's recent waits (the real-time extras issue); the schema says so.
async fn estimate(_state: &AppState, _queue_id: Uuid, place: i64) -> i64 {
    place * 60
}
