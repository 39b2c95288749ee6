//! What crosses between the `jono serve` nodes of a deployment over core NATS besides the log:
//! ephemeral frames (typing, WebRTC signalling) and close orders (logout, password change,
//! removal, a block). Each node publishes what its requests and sockets give out
//! ([`crate::live::Live::relay`], [`crate::live::Live::close`]) and hands what the others
//! publish to its own sessions, exactly as if it came from one of its own.
//!
//! Subjects: `jono.live.relay` (body: the sending node, the conversation, the frame as its
//! sessions send it) and `jono.live.close` (the node and the order). One subject each, the body
//! naming the conversation or the token: every node has sessions of every kind.
//!
//! NATS is a fast path, not a dependency: requests hand their crossings to this task without
//! waiting, a publication waits at most [`PUBLISH_WAIT`], and while NATS is away frames are
//! dropped (they are ephemeral) and close orders are caught by each socket's own check of its
//! token at every ping. The client reconnects by itself (and subscribes again), so frames cross
//! again once NATS is back. The log never goes this way: every node follows it from Postgres.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::live::{CloseOrder, Crossing, Live, Relay};

/// Ephemeral frames between nodes.
pub const RELAY_SUBJECT: &str = "jono.live.relay";
/// Close orders between nodes.
pub const CLOSE_SUBJECT: &str = "jono.live.close";
/// Crossings waiting for this task; past them, more are dropped.
pub const QUEUED: usize = 1024;
/// The longest a publication may wait for the client (NATS away, its buffer full).
const PUBLISH_WAIT: Duration = Duration::from_millis(100);

#[derive(Debug, Serialize, Deserialize)]
struct RelayMessage {
    node: Uuid,
    conversation_id: Uuid,
    frame: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CloseMessage {
    node: Uuid,
    order: WireOrder,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireOrder {
    Token {
        token_hash: String,
    },
    Agent {
        agent_id: Uuid,
        keep: Option<String>,
    },
    Recheck {
        agent_id: Uuid,
    },
}

impl WireOrder {
    fn from_order(order: CloseOrder) -> Option<Self> {
        Some(match order {
            CloseOrder::Token(token_hash) => WireOrder::Token { token_hash },
            CloseOrder::Agent { agent_id, keep } => WireOrder::Agent { agent_id, keep },
            CloseOrder::Recheck { agent_id } => WireOrder::Recheck { agent_id },
            CloseOrder::All => return None,
        })
    }

    fn into_order(self) -> CloseOrder {
        match self {
            WireOrder::Token { token_hash } => CloseOrder::Token(token_hash),
            WireOrder::Agent { agent_id, keep } => CloseOrder::Agent { agent_id, keep },
            WireOrder::Recheck { agent_id } => CloseOrder::Recheck { agent_id },
        }
    }
}

/// The subject and body of a crossing from `node`.
fn encode(node: Uuid, crossing: Crossing) -> Option<(&'static str, Vec<u8>)> {
    let (subject, body) = match crossing {
        Crossing::Relay {
            conversation_id,
            frame,
        } => (
            RELAY_SUBJECT,
            serde_json::to_vec(&RelayMessage {
                node,
                conversation_id,
                frame: frame.as_str().to_owned(),
            }),
        ),
        Crossing::Close(order) => (
            CLOSE_SUBJECT,
            serde_json::to_vec(&CloseMessage {
                node,
                order: WireOrder::from_order(order)?,
            }),
        ),
    };
    body.ok().map(|body| (subject, body))
}

/// Hands a message of another node to this node's sessions; its own come back from NATS too,
/// and are skipped (they were handed over when given).
fn deliver(live: &Live, subject: &str, payload: &[u8]) {
    match subject {
        RELAY_SUBJECT => match serde_json::from_slice::<RelayMessage>(payload) {
            Ok(message) if message.node != live.node_id => live.relays.send(Relay {
                conversation_id: message.conversation_id,
                // No session of this process has number 0: every one of them gets it.
                from_session: 0,
                frame: Arc::new(message.frame),
            }),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "an unreadable relay from NATS"),
        },
        CLOSE_SUBJECT => match serde_json::from_slice::<CloseMessage>(payload) {
            Ok(message) if message.node != live.node_id => {
                live.closer.close(message.order.into_order())
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "an unreadable close order from NATS"),
        },
        _ => {}
    }
}

/// A channel for [`Live::peers`] and its receiving end for [`run`].
pub fn channel() -> (mpsc::Sender<Crossing>, mpsc::Receiver<Crossing>) {
    mpsc::channel(QUEUED)
}

/// Publishes this node's crossings and delivers the other nodes' until `shutdown`. An absent
/// NATS server is retried in the background, never fatal.
pub async fn run(
    live: Live,
    url: String,
    mut outgoing: mpsc::Receiver<Crossing>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match async_nats::ConnectOptions::new()
        .name("jono-live")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .connect(url.as_str())
        .await
    {
        Ok(client) => client,
        Err(error) => {
            // Only a malformed address gets here; `jono serve` checked it at start.
            tracing::error!(%error, "frames cannot cross nodes: the NATS address is not usable");
            return;
        }
    };
    // Queued by the client until it is connected, and made again after each reconnection.
    let subscribed = tokio::select! {
        subscribed = client.subscribe("jono.live.>") => subscribed,
        _ = shutdown.changed() => return,
    };
    let mut incoming = match subscribed {
        Ok(incoming) => incoming,
        Err(error) => {
            tracing::error!(%error, "cannot subscribe to the other nodes' frames");
            return;
        }
    };
    loop {
        tokio::select! {
            crossing = outgoing.recv() => {
                let Some(crossing) = crossing else { return };
                let Some((subject, body)) = encode(live.node_id, crossing) else { continue };
                match tokio::time::timeout(PUBLISH_WAIT, client.publish(subject, body.into())).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::debug!(%error, "a frame did not cross to the other nodes"),
                    Err(_) => tracing::debug!("NATS is away; a frame did not cross to the other nodes"),
                }
            }
            message = incoming.next() => match message {
                Some(message) => deliver(&live, message.subject.as_str(), &message.payload),
                None => {
                    tracing::error!("the subscription to the other nodes' frames ended");
                    return;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_orders_cross_as_they_were_given_and_a_stop_stays_home() {
        let node = Uuid::new_v4();
        let other = Live::default();
        let mut closes = other.closer.subscribe();
        let orders = [
            CloseOrder::Token("hash".into()),
            CloseOrder::Agent {
                agent_id: Uuid::new_v4(),
                keep: Some("kept".into()),
            },
            CloseOrder::Recheck {
                agent_id: Uuid::new_v4(),
            },
        ];
        for order in orders.clone() {
            let (subject, body) = encode(node, Crossing::Close(order)).unwrap();
            deliver(&other, subject, &body);
        }
        for order in orders {
            assert_eq!(closes.try_recv().unwrap(), order);
        }
        assert!(encode(node, Crossing::Close(CloseOrder::All)).is_none());
    }

    #[test]
    fn a_relay_reaches_every_session_of_another_node_and_not_its_own_node_twice() {
        let sender = Live::default();
        let other = Live::default();
        let conversation_id = Uuid::new_v4();
        let crossing = Crossing::Relay {
            conversation_id,
            frame: Arc::new("{\"type\":\"typing\"}".into()),
        };
        let (subject, body) = encode(sender.node_id, crossing).unwrap();
        let mut theirs = other.relays.subscribe();
        deliver(&other, subject, &body);
        let relay = theirs.try_recv().unwrap();
        assert_eq!(relay.conversation_id, conversation_id);
        assert_eq!(relay.from_session, 0);
        assert_eq!(relay.frame.as_str(), "{\"type\":\"typing\"}");
        let mut own = sender.relays.subscribe();
        deliver(&sender, subject, &body);
        assert!(own.try_recv().is_err());
    }
}
