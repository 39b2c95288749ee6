//! One client's session: who is calling, the loop that waits on whatever wakes the session (a
//! frame from the client, a relay from another session, a close order, the ping) and the
//! re-check of its token and subscriptions; its end, which says why and lets the client read it.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::Message;
use futures::{Sink, Stream, StreamExt};
use prometheus::IntCounter;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::outgoing::{self, End, Out, SLOW_AFTER};
use super::topics::{authorize, Topic};
use super::CLIENT_FRAME_LIMIT;
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::live::{CloseOrder, Relay};
use crate::state::AppState;

/// How often the server pings, and re-checks that the token still works.
const PING_EVERY: Duration = Duration::from_secs(20);

static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// What a session knows of its caller.
#[derive(Clone)]
pub(super) struct Who {
    pub(super) caller: Caller,
    pub(super) kind: &'static str,
    pub(super) id: Uuid,
    pub(super) name: String,
}

/// Counts an open session in `jono_websockets_open` for as long as it lives.
struct OpenSocket(prometheus::IntGauge);

impl OpenSocket {
    fn new(state: &AppState, kind: &'static str) -> Self {
        let gauge = state.metrics.websockets_open.with_label_values(&[kind]);
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the steps of one session share.
pub(super) struct Session {
    pub(super) state: AppState,
    pub(super) who: Who,
    /// This session's number in the process: a relay never comes back to its sender.
    pub(super) id: u64,
    pub(super) out: Out,
    pub(super) subscriptions: HashMap<Topic, JoinHandle<()>>,
    token_hash: String,
    frames_in: IntCounter,
}

/// Runs one client's session until it closes, is revoked, or reads too slowly.
pub async fn run<R, S>(state: AppState, caller: Caller, mut incoming: R, outgoing: S)
where
    R: Stream<Item = Result<Message, axum::Error>> + Unpin + Send + 'static,
    S: Sink<Message> + Unpin + Send + 'static,
{
    let id = SESSIONS.fetch_add(1, Ordering::Relaxed);
    let who = match describe(&state, &caller).await {
        Ok(who) => who,
        Err(_) => return,
    };
    let _open = OpenSocket::new(&state, who.kind);
    let frames_in = state
        .metrics
        .websocket_frames
        .with_label_values(&[who.kind, "in"]);
    let frames_out = state
        .metrics
        .websocket_frames
        .with_label_values(&[who.kind, "out"]);
    let slow_closes = state
        .metrics
        .websocket_slow_closes
        .with_label_values(&[who.kind]);
    let (out, mut ended, mut writer) = outgoing::open(outgoing, frames_out, slow_closes);

    arrived(&state, &caller);
    let mut relays = state.live.relays.subscribe();
    let mut closes = state.live.closer.subscribe();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut session = Session {
        token_hash: caller.key().to_owned(),
        state,
        who,
        id,
        out,
        subscriptions: HashMap::new(),
        frames_in,
    };

    loop {
        let flow = tokio::select! {
            frame = incoming.next() => session.on_frame(frame).await,
            relay = relays.recv() => session.on_relay(relay),
            order = closes.recv() => session.on_close_order(order).await,
            _ = ping.tick() => session.on_ping().await,
            _ = ended.changed() => ControlFlow::Break(()),
            // The writer gave up on a client that does not read.
            _ = &mut writer => ControlFlow::Break(()),
        };
        if flow.is_break() {
            break;
        }
    }

    session.leave(&caller);
    if !writer.is_finished() {
        let _ = (&mut writer).await;
    }
    closing_handshake(&mut incoming).await;
}

/// The caller's socket counts: an agent is connected, a customer shows a sign of life.
fn arrived(state: &AppState, caller: &Caller) {
    match caller {
        Caller::Agent(agent) => state.presence.connected(agent.agent_id),
        // An open socket is a waiting customer's sign of life: it does not time out.
        Caller::Customer(customer) => {
            crate::sweeper::activity().socket_opened(customer.conversation_id)
        }
    }
}

/// The closing handshake: after our close frame, read until the client's own (or a while),
/// so that closing the connection does not reset it before the client has read our reason.
async fn closing_handshake<R>(incoming: &mut R)
where
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let _ = tokio::time::timeout(SLOW_AFTER, async {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

impl Session {
    /// A frame from the client, or the end of its stream.
    async fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> ControlFlow<()> {
        if matches!(frame, Some(Ok(Message::Text(_) | Message::Binary(_)))) {
            self.frames_in.inc();
        }
        match frame {
            Some(Ok(Message::Text(text))) if text.len() > CLIENT_FRAME_LIMIT => {
                self.out.close(End::TooBig);
                return ControlFlow::Break(());
            }
            Some(Ok(Message::Binary(bytes))) if bytes.len() > CLIENT_FRAME_LIMIT => {
                self.out.close(End::TooBig);
                return ControlFlow::Break(());
            }
            Some(Ok(Message::Text(text))) => {
                self.handle(text.as_str()).await;
            }
            Some(Ok(Message::Binary(_))) => {
                self.out.error(None, 400, "frames are JSON text").await;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    }

    /// Another session's typing or signal frame: passed on when it is of a conversation this
    /// session follows (best effort: a full queue drops it).
    fn on_relay(&self, relay: Result<Relay, broadcast::error::RecvError>) -> ControlFlow<()> {
        match relay {
            Ok(relay) => {
                let mine = self
                    .subscriptions
                    .contains_key(&Topic::Conversation(relay.conversation_id));
                if mine && relay.from_session != self.id {
                    let _ = self
                        .out
                        .frames
                        .try_send(Message::Text(relay.frame.as_str().into()));
                }
                ControlFlow::Continue(())
            }
            Err(broadcast::error::RecvError::Lagged(_)) => ControlFlow::Continue(()),
            Err(broadcast::error::RecvError::Closed) => ControlFlow::Break(()),
        }
    }

    /// A close order (from this node or another): the session ends when it is meant for it.
    async fn on_close_order(
        &mut self,
        order: Result<CloseOrder, broadcast::error::RecvError>,
    ) -> ControlFlow<()> {
        let who = &self.who;
        let revoked = match order {
            Ok(CloseOrder::All) => {
                self.out.close(End::GoingAway);
                return ControlFlow::Break(());
            }
            Ok(CloseOrder::Token(hash)) => hash == self.token_hash,
            Ok(CloseOrder::Agent { agent_id, keep }) => {
                who.kind == "agent"
                    && who.id == agent_id
                    && keep.as_deref() != Some(self.token_hash.as_str())
            }
            Ok(CloseOrder::Recheck { agent_id }) if who.kind == "agent" && who.id == agent_id => {
                // The change was committed before its order was sent (on this node or
                // another): the read models the check asks must hold it first.
                if let Ok(head) = self.state.store.head().await {
                    self.state.wait_for_read_models(head).await;
                }
                !self.recheck().await
            }
            Ok(CloseOrder::Recheck { .. }) => false,
            // Orders were dropped while this session lagged: one of them may have been
            // meant for it, so check everything it holds instead of trusting the channel.
            Err(broadcast::error::RecvError::Lagged(_)) => !self.recheck().await,
            Err(broadcast::error::RecvError::Closed) => false,
        };
        if revoked {
            self.out.close(End::Revoked);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// The ping: a client whose queue has no room for it reads too slowly; and the re-check.
    async fn on_ping(&mut self) -> ControlFlow<()> {
        if self
            .out
            .frames
            .try_send(Message::Ping(Vec::new().into()))
            .is_err()
        {
            self.out.close(End::Slow);
            return ControlFlow::Break(());
        }
        // Removal from every organization, or the customer's day after the end; and, in
        // case an order never reached this process, each subscription's access.
        if !self.recheck().await {
            self.out.close(End::Revoked);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// Checks the session again: `false` when its token no longer works (the session ends);
    /// otherwise every subscription the caller may no longer follow ends, with an error frame
    /// (404, as for a topic it could never see), and the rest go on.
    async fn recheck(&mut self) -> bool {
        if !still_valid(&self.state, &self.who).await {
            return false;
        }
        let topics: Vec<Topic> = self.subscriptions.keys().copied().collect();
        for topic in topics {
            // 503 (the store is away) is no reason to end a subscription.
            if let Err(status @ (403 | 404)) = authorize(&self.state, &self.who, topic).await {
                if let Some(task) = self.subscriptions.remove(&topic) {
                    task.abort();
                }
                self.out
                    .error(
                        Some(&topic.name()),
                        status,
                        "this topic is no longer yours to follow",
                    )
                    .await;
            }
        }
        true
    }

    /// Ends the subscriptions, and the socket's count for presence or the customer time-out;
    /// the way out closes with the session, which lets the writer finish.
    fn leave(mut self, caller: &Caller) {
        for (_, task) in self.subscriptions.drain() {
            task.abort();
        }
        match caller {
            Caller::Agent(agent) => self.state.presence.disconnected(agent.agent_id),
            Caller::Customer(customer) => {
                crate::sweeper::activity().socket_closed(customer.conversation_id)
            }
        }
    }
}

async fn describe(state: &AppState, caller: &Caller) -> Result<Who, ApiError> {
    Ok(match caller {
        Caller::Agent(agent) => {
            let name = projections::directory::read::account(state.backend(), agent.agent_id)
                .await?
                .map(|account| account.name)
                .unwrap_or_default();
            Who {
                caller: caller.clone(),
                kind: "agent",
                id: agent.agent_id,
                name,
            }
        }
        Caller::Customer(customer) => {
            let conversation = projections::conversations::read::conversation(
                state.backend(),
                customer.conversation_id,
            )
            .await?;
            let name = conversation
                .and_then(|c| {
                    c.customer
                        .metadata
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "Customer".to_owned());
            Who {
                caller: caller.clone(),
                kind: "customer",
                id: customer.conversation_id,
                name,
            }
        }
    })
}

/// Whether the session's token still opens what it opened: it was not revoked or left idle,
/// the agent is still in an organization, the customer's conversation did not end a day ago.
async fn still_valid(state: &AppState, who: &Who) -> bool {
    match crate::secrets::token_hash_alive(state.backend(), who.caller.key()).await {
        Ok(false) => return false,
        Ok(true) => {}
        Err(_) => return true, // The store is down; don't cut everyone off for it.
    }
    match &who.caller {
        Caller::Agent(agent) => {
            projections::directory::read::memberships_of(state.backend(), agent.agent_id)
                .await
                .map(|memberships| !memberships.is_empty())
                .unwrap_or(true)
        }
        Caller::Customer(customer) => projections::conversations::read::conversation(
            state.backend(),
            customer.conversation_id,
        )
        .await
        .map(|conversation| {
            conversation
                .and_then(|c| c.ended_at)
                .is_none_or(|ended| chrono::Utc::now() - ended <= auth::CUSTOMER_TOKEN_AFTER_END)
        })
        .unwrap_or(true),
    }
}
