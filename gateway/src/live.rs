//! The live side shared by every WebSocket of this process:
//!
//! - [`Hub`]: one task follows the durable feed and hands each event to the subscriptions it
//!   concerns: those of its conversation, those of its queue, and those that read everything
//!   (`activity`). A subscription wakes for its own events only, not for every event of the
//!   process. Sessions replay history from the store and then continue from the hub, skipping
//!   what they already sent (invariant 7).
//! - [`Relays`]: ephemeral frames (typing, WebRTC signalling) between the sessions of a
//!   conversation's participants; never stored.
//! - [`Closer`]: ends the sockets of a token at logout, of an agent at a password change.
//!
//! Relays and close orders given through [`Live::relay`] and [`Live::close`] also go to the
//! other nodes over core NATS when the deployment has it (`crate::peers`), without waiting for
//! it: a request never waits on NATS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use store::event::StoredEvent;
use store::follow::{pause, Follower};
use store::log::EventStore;
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

/// How many events the hub holds for an `activity` subscription that is momentarily behind; a
/// subscription further behind re-reads the store (it never skips).
const HUB_CAPACITY: usize = 4096;
/// The same for one conversation's subscriptions: a conversation's own events are few, and
/// each channel's ring is allocated whole, so a thousand subscribed conversations stay small.
const CONVERSATION_CAPACITY: usize = 256;
/// The same for one queue's subscriptions (`queue:ID`, and the customers waiting in its line).
const QUEUE_CAPACITY: usize = 1024;

/// What a subscription hears from the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Every event (the `activity` topic filters them through its read model).
    All,
    /// The events of this conversation's topic: see [`conversation_of`].
    Conversation(Uuid),
    /// The events of this queue's stream.
    Queue(Uuid),
}

impl Route {
    /// The keyed routes `event` goes to (besides [`Route::All`]).
    fn of(event: &StoredEvent) -> [Option<Route>; 2] {
        let conversation = conversation_of(event).map(Route::Conversation);
        let queue = (event.aggregate_type == "queue")
            .then(|| event.aggregate_id.parse().ok())
            .flatten()
            .map(Route::Queue);
        [conversation, queue]
    }

    fn capacity(self) -> usize {
        match self {
            Route::All => HUB_CAPACITY,
            Route::Conversation(_) => CONVERSATION_CAPACITY,
            Route::Queue(_) => QUEUE_CAPACITY,
        }
    }
}

/// The conversation whose topic carries `event`: an event of the conversation's own stream, or
/// one its queue recorded of it (`conversation_id`) — the same two sources its replay reads
/// (`ws::replay`), so a live subscriber and one that reconnects get the same events. Other
/// streams' events that name a conversation are not its history: an agent's workload, an
/// organization's block of its visitor.
pub fn conversation_of(event: &StoredEvent) -> Option<Uuid> {
    matches!(event.aggregate_type.as_str(), "conversation" | "queue")
        .then(|| event.payload.get("conversation_id"))
        .flatten()
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
}

#[derive(Clone)]
pub struct Hub {
    routes: Arc<Mutex<Routes>>,
}

/// The hub's channels, and how far it has handed events out. One lock for both, so a
/// subscription knows exactly which events it will hear.
struct Routes {
    all: broadcast::Sender<Arc<StoredEvent>>,
    keyed: HashMap<Route, broadcast::Sender<Arc<StoredEvent>>>,
    /// The position of the last event handed out: every later one reaches a subscription made
    /// now.
    passed: i64,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            routes: Arc::new(Mutex::new(Routes {
                all: broadcast::channel(HUB_CAPACITY).0,
                keyed: HashMap::new(),
                passed: 0,
            })),
        }
    }
}

/// A subscription to one route; its channel goes when its last subscription does.
pub struct Subscription {
    route: Route,
    receiver: Option<broadcast::Receiver<Arc<StoredEvent>>>,
    routes: Arc<Mutex<Routes>>,
    /// The hub's position when it was made: every event after it is heard.
    pub from: i64,
}

impl Subscription {
    pub fn route(&self) -> Route {
        self.route
    }

    /// The next event of the route, as `broadcast::Receiver::recv` says it (`Lagged` when
    /// this subscription fell more than its channel holds behind).
    pub async fn recv(&mut self) -> Result<Arc<StoredEvent>, broadcast::error::RecvError> {
        match &mut self.receiver {
            Some(receiver) => receiver.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        if self.route == Route::All {
            return;
        }
        let mut routes = lock(&self.routes);
        if routes
            .keyed
            .get(&self.route)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            routes.keyed.remove(&self.route);
        }
    }
}

/// The routes' lock: held for a map lookup or one batch's sends, never across an await; a
/// panic while holding it left nothing half-done that matters (a channel is or is not there).
fn lock(routes: &Mutex<Routes>) -> MutexGuard<'_, Routes> {
    routes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Hub {
    /// Hears every later event of `route`.
    pub fn subscribe(&self, route: Route) -> Subscription {
        let mut routes = lock(&self.routes);
        let receiver = match route {
            Route::All => routes.all.subscribe(),
            keyed => routes
                .keyed
                .entry(keyed)
                .or_insert_with(|| broadcast::channel(keyed.capacity()).0)
                .subscribe(),
        };
        Subscription {
            route,
            receiver: Some(receiver),
            routes: self.routes.clone(),
            from: routes.passed,
        }
    }

    /// How many keyed routes have subscriptions now.
    #[cfg(test)]
    fn routes(&self) -> usize {
        lock(&self.routes).keyed.len()
    }

    /// Hands out `events`, in log order, each to the routes it concerns.
    fn hand_out(&self, events: Vec<StoredEvent>) {
        let mut routes = lock(&self.routes);
        for event in events {
            let position = event.position;
            let event = Arc::new(event);
            for route in Route::of(&event).into_iter().flatten() {
                if let Some(sender) = routes.keyed.get(&route) {
                    // No receiver is not an error: the last one is just being dropped.
                    let _ = sender.send(event.clone());
                }
            }
            if routes.all.receiver_count() > 0 {
                let _ = routes.all.send(event);
            }
            routes.passed = position;
        }
    }

    /// Follows the feed from its head at start until `shutdown`, handing out every event.
    pub async fn run(self, store: EventStore, mut shutdown: watch::Receiver<bool>) {
        let head = loop {
            match store.head().await {
                Ok(head) => break head,
                Err(error) => {
                    tracing::warn!(%error, "the live hub cannot read the head; retrying");
                    if pause(&mut shutdown, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };
        lock(&self.routes).passed = head;
        let mut feed = Follower::new("live hub", &store, head).batch(1_000);
        while let Some(batch) = feed.next_batch(&mut shutdown).await {
            self.hand_out(batch);
        }
    }
}

/// An ephemeral frame for the other sessions of one conversation.
#[derive(Debug, Clone)]
pub struct Relay {
    pub conversation_id: Uuid,
    /// The sending session, which does not get its own frame back.
    pub from_session: u64,
    pub frame: Arc<String>,
}

#[derive(Clone)]
pub struct Relays {
    frames: broadcast::Sender<Relay>,
}

impl Default for Relays {
    fn default() -> Self {
        Self {
            frames: broadcast::channel(1024).0,
        }
    }
}

impl Relays {
    pub fn subscribe(&self) -> broadcast::Receiver<Relay> {
        self.frames.subscribe()
    }

    pub fn send(&self, relay: Relay) {
        let _ = self.frames.send(relay);
    }
}

/// An order to close sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseOrder {
    /// Every socket opened with this token (logout).
    Token(String),
    /// Every socket of this agent but those of `keep` (a password change keeps its own).
    Agent {
        agent_id: Uuid,
        keep: Option<String>,
    },
    /// This agent's access changed (removed from an organization): each of its sockets checks
    /// every subscription again and ends exactly those it may no longer follow.
    Recheck { agent_id: Uuid },
    /// Every socket: the server is stopping.
    All,
}

#[derive(Clone)]
pub struct Closer {
    orders: broadcast::Sender<CloseOrder>,
}

impl Default for Closer {
    fn default() -> Self {
        Self {
            orders: broadcast::channel(256).0,
        }
    }
}

impl Closer {
    pub fn subscribe(&self) -> broadcast::Receiver<CloseOrder> {
        self.orders.subscribe()
    }

    pub fn close(&self, order: CloseOrder) {
        let _ = self.orders.send(order);
    }
}

/// Everything live, in one piece of the state.
#[derive(Clone)]
pub struct Live {
    pub hub: Hub,
    pub relays: Relays,
    pub closer: Closer,
    /// This process among the nodes of a deployment (`crate::nodes`, `crate::peers`).
    pub node_id: Uuid,
    /// What is to cross to the other nodes, when there is NATS (`crate::peers::run` drains it).
    pub peers: Option<mpsc::Sender<Crossing>>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            hub: Hub::default(),
            relays: Relays::default(),
            closer: Closer::default(),
            node_id: Uuid::new_v4(),
            peers: None,
        }
    }
}

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Crossing {
    Relay {
        conversation_id: Uuid,
        frame: Arc<String>,
    },
    Close(CloseOrder),
}

impl Live {
    /// An ephemeral frame for the other sessions of a conversation, on every node.
    pub fn relay(&self, relay: Relay) {
        self.cross(Crossing::Relay {
            conversation_id: relay.conversation_id,
            frame: relay.frame.clone(),
        });
        self.relays.send(relay);
    }

    /// An order to close sockets, on every node (`CloseOrder::All` stays on this one: it is
    /// this server stopping).
    pub fn close(&self, order: CloseOrder) {
        if order != CloseOrder::All {
            self.cross(Crossing::Close(order.clone()));
        }
        self.closer.close(order);
    }

    /// Hands `crossing` to the NATS task without waiting: when it is behind (NATS away), the
    /// crossing is dropped. An ephemeral frame may be; a close order missed is caught by each
    /// socket's own check of its token (`ws`, every ping).
    fn cross(&self, crossing: Crossing) {
        if let Some(peers) = &self.peers {
            if peers.try_send(crossing).is_err() {
                tracing::debug!("NATS is behind; a crossing frame was dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(position: i64, aggregate_type: &str, aggregate_id: Uuid, about: Uuid) -> StoredEvent {
        StoredEvent {
            position,
            event_id: Uuid::new_v4(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.to_string(),
            sequence: position,
            event_type: "SomethingHappened".into(),
            event_version: "1".into(),
            payload: json!({ "conversation_id": about }),
            actor: None,
            recorded_at: chrono::Utc::now(),
            idempotency_key: None,
        }
    }

    fn heard(subscription: &mut Subscription) -> Vec<i64> {
        let receiver = subscription.receiver.as_mut().expect("a receiver");
        std::iter::from_fn(|| receiver.try_recv().ok().map(|event| event.position)).collect()
    }

    /// Each subscription wakes for its own events only: its conversation's (not an agent's
    /// workload or an organization's block naming it: a replay would not read those), its
    /// queue's stream, or everything; a route's channel goes with its last subscription.
    #[test]
    fn each_event_reaches_the_routes_it_concerns_and_no_other() {
        let hub = Hub::default();
        let (mine, other, queue) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut conversation = hub.subscribe(Route::Conversation(mine));
        let mut line = hub.subscribe(Route::Queue(queue));
        let mut everything = hub.subscribe(Route::All);
        assert_eq!((conversation.from, hub.routes()), (0, 2));
        hub.hand_out(vec![
            event(1, "conversation", mine, mine),
            event(2, "conversation", other, other),
            event(3, "queue", queue, mine),
            event(4, "queue", queue, other),
            event(5, "queue", Uuid::new_v4(), other),
            event(6, "workload", Uuid::new_v4(), mine),
            event(7, "organization", Uuid::new_v4(), mine),
        ]);
        assert_eq!(heard(&mut conversation), [1, 3]);
        assert_eq!(heard(&mut line), [3, 4]);
        assert_eq!(heard(&mut everything), [1, 2, 3, 4, 5, 6, 7]);
        // A subscription made now hears what follows position 7.
        let late = hub.subscribe(Route::Conversation(mine));
        assert_eq!(late.from, 7);
        drop((conversation, line));
        assert_eq!(hub.routes(), 1, "the conversation still has a subscription");
        drop(late);
        assert_eq!(hub.routes(), 0);
    }
}
