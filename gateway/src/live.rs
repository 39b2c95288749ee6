//! The live side shared by every WebSocket of this process:
//!
//! - [`Hub`]: one task follows the durable feed and broadcasts each event once to every
//!   session (a session filters what is its). Sessions replay history from the store and then
//!   continue from the hub, skipping what they already sent (invariant 7).
//! - [`Relays`]: ephemeral frames (typing, WebRTC signalling) between the sessions of a
//!   conversation's participants; never stored.
//! - [`Closer`]: ends the sockets of a token at logout, of an agent at a password change.
//!
//! Relays and close orders given through [`Live::relay`] and [`Live::close`] also go to the
//! other nodes over core NATS when the deployment has it (`crate::peers`), without waiting for
//! it: a request never waits on NATS.

use std::sync::Arc;
use std::time::Duration;

use store::event::StoredEvent;
use store::follow::{pause, Follower};
use store::log::EventStore;
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

/// How many events the hub holds for a session that is momentarily behind; a session further
/// behind re-reads the store (it never skips).
const HUB_CAPACITY: usize = 4096;

#[derive(Clone)]
pub struct Hub {
    events: broadcast::Sender<Arc<StoredEvent>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            events: broadcast::channel(HUB_CAPACITY).0,
        }
    }
}

impl Hub {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.events.subscribe()
    }

    /// Follows the feed from its head at start until `shutdown`, broadcasting every event.
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
        let mut feed = Follower::new("live hub", &store, head).batch(1_000);
        while let Some(batch) = feed.next_batch(&mut shutdown).await {
            for event in batch {
                // No receiver is not an error: nobody is listening right now.
                let _ = self.events.send(Arc::new(event));
            }
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
