//! A subscription's task: it replays what its topic holds after the client's position, says
//! `subscribed`, and then follows its route of the live hub (its conversation's or queue's
//! events, or all for `activity`), skipping what it already sent — every later event exactly
//! once (invariant 7). A waiting customer also hears of its place in line (`queue` frames):
//! it follows its line's queue too, for as long as it waits in it.

use serde_json::json;
use store::event::StoredEvent;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::frames::{conversation_body, event_frame, full_body};
use super::outgoing::Out;
use super::replay::{activity_page, replay};
use super::session::Who;
use super::topics::{Plan, Topic, QUEUE_TOPIC};
use crate::live::{conversation_of, Route, Subscription};
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
    /// A waiting customer's line: the queue's events, which move its place.
    line: Option<Subscription>,
}

/// What the hub said next: on the topic's own route, or on a waiting customer's line.
enum Heard {
    Own(Result<std::sync::Arc<StoredEvent>, RecvError>),
    Line(Result<std::sync::Arc<StoredEvent>, RecvError>),
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
    let route = match &plan {
        Plan::Activity => Route::All,
        Plan::Queue { queue_id } => Route::Queue(*queue_id),
        Plan::Conversation {
            conversation_id, ..
        } => Route::Conversation(*conversation_id),
    };
    // Subscribe to the hub before replaying, so nothing committed during the replay is lost;
    // what the replay already sent is skipped by position.
    let mut live = state.live.hub.subscribe(route);
    let mut following = Following {
        state,
        who,
        name,
        out,
        last: after.unwrap_or(0),
        queue_place: None,
        line: None,
    };
    if !following.start(&plan).await {
        return;
    }
    loop {
        let heard = tokio::select! {
            heard = live.recv() => Heard::Own(heard),
            heard = next_of(&mut following.line) => Heard::Line(heard),
        };
        let event = match heard {
            Heard::Own(Ok(event)) => event,
            Heard::Own(Err(RecvError::Lagged(_))) => {
                // Behind the hub: read what was missed from the store, never skip it.
                if !following.catch_up(&plan).await {
                    return;
                }
                continue;
            }
            Heard::Own(Err(RecvError::Closed)) => return,
            Heard::Line(heard) => {
                if !following.line_moved(&plan, heard).await {
                    return;
                }
                continue;
            }
        };
        if event.position <= following.last {
            continue;
        }
        let sent = match &plan {
            Plan::Activity => following.activity(&event).await,
            Plan::Queue { .. } => following.queue(&event).await,
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

/// The next event of a waiting customer's line; never, while it waits in none.
async fn next_of(
    line: &mut Option<Subscription>,
) -> Result<std::sync::Arc<StoredEvent>, RecvError> {
    match line {
        Some(line) => line.recv().await,
        None => std::future::pending().await,
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
            // The replay waited for nothing: the place as the read models hold it now.
            return self.told_place(*conversation_id, 0).await
                && self.follow_line(*conversation_id).await;
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

    /// A live event, for `queue:ID` (its route is the queue's stream).
    async fn queue(&mut self, event: &StoredEvent) -> bool {
        self.last = event.position;
        if QUEUE_TOPIC.contains(&event.event_type.as_str()) {
            self.out
                .send(&event_frame(&self.name, event, full_body(event)))
                .await
        } else {
            true
        }
    }

    /// A live event, for `conversation:ID` (its route is the events that name the
    /// conversation); and a waiting customer's place when it moved.
    async fn conversation(
        &mut self,
        conversation_id: Uuid,
        customer: bool,
        event: &StoredEvent,
    ) -> bool {
        self.last = event.position;
        if let Some(body) = conversation_body(event, customer) {
            if !self.out.send(&event_frame(&self.name, event, body)).await {
                return false;
            }
        }
        // A queue event of the conversation's own moves its customer in or out of a line (a
        // join, a pick, a transfer, waiting again).
        if customer && event.aggregate_type == "queue" {
            return self.told_place(conversation_id, event.position).await
                && self.follow_line(conversation_id).await;
        }
        true
    }

    /// An event of a waiting customer's line, or word that some were missed: its place may
    /// have moved. Its own events in that queue came on its own route, in order: not here.
    /// Other queues' events cannot change its place: they are not heard.
    async fn line_moved(
        &mut self,
        plan: &Plan,
        heard: Result<std::sync::Arc<StoredEvent>, RecvError>,
    ) -> bool {
        let Plan::Conversation {
            conversation_id, ..
        } = plan
        else {
            return true;
        };
        let event = match heard {
            Ok(event) => event,
            // The next event heard tells the place after those missed.
            Err(RecvError::Lagged(_)) => return true,
            Err(RecvError::Closed) => {
                self.line = None;
                return true;
            }
        };
        if conversation_of(&event) == Some(*conversation_id) {
            return true;
        }
        self.told_place(*conversation_id, event.position).await
            && self.follow_line(*conversation_id).await
    }

    /// Follows the line the customer waits in now, if it changed: a new line's events before
    /// the subscription are in the read models once they reach the hub's position then, so
    /// the place is told again from there.
    async fn follow_line(&mut self, conversation_id: Uuid) -> bool {
        loop {
            let waiting_in = self.queue_place.map(|(queue_id, _)| Route::Queue(queue_id));
            if self.line.as_ref().map(Subscription::route) == waiting_in {
                return true;
            }
            self.line = waiting_in.map(|route| self.state.live.hub.subscribe(route));
            let Some(line) = &self.line else {
                return true;
            };
            let from = line.from;
            if !self.told_place(conversation_id, from).await {
                return false;
            }
        }
    }

    /// Tells a waiting customer its place (when it changed) once the read models hold
    /// `position`. False when the client is gone.
    async fn told_place(&mut self, conversation_id: Uuid, position: i64) -> bool {
        self.state.wait_for_read_models(position).await;
        queue_frame(
            &self.state,
            conversation_id,
            &mut self.queue_place,
            &self.out,
        )
        .await
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
