//! `GET /v1/ws`: the WebSocket of API.md. The handler only authenticates and upgrades; the
//! session is a loop over any `Sink` and `Stream` of messages (STYLE.md habit 7), so a test can
//! drive it with channels.
//!
//! A subscription replays what its topic holds after the client's `after` from the store, says
//! `subscribed`, and then follows the live hub, skipping what it already sent — so a client that
//! reconnects with the last position it saw gets every later event exactly once (invariant 7).
//! Frames to a client go through a bounded queue: a client that reads too slowly is closed with
//! 1013 instead of being buffered without bound, and reconnects with `after`.
//!
//! Typing and signal frames go to the conversation's other sessions on every node, and close
//! orders reach a token's sockets on every node (`crate::live`, over NATS by `crate::peers`);
//! a session's socket counts for presence and the customer time-out on every node
//! (`crate::nodes`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use domain::Event;
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{json, Map, Value};
use store::event::StoredEvent;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::access;
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::limits;
use crate::live::{CloseOrder, Relay};
use crate::openapi::{self, Route, Routes};
use crate::state::AppState;

/// The largest frame a client may send (API.md, Limits); a larger one closes the socket with
/// 1009.
pub const CLIENT_FRAME_LIMIT: usize = 64 * 1024;
/// What the transport reads at most before giving up on a client without a close frame: room
/// enough to read a frame over the limit and answer it with 1009.
const TRANSPORT_LIMIT: usize = 16 * CLIENT_FRAME_LIMIT;
/// What a socket's reader allocates up front. tungstenite's default (128 KiB, allocated at the
/// upgrade) made an idle socket cost the server 139 KiB; clients send small frames, and a
/// bigger one grows the buffer as it arrives. Writes are not buffered (`write_buffer_size(0)`):
/// every frame is flushed as it is sent.
const READ_BUFFER: usize = 4 * 1024;
/// Frames queued for a client; past them, senders wait for it to read.
const OUTGOING_FRAMES: usize = 512;
/// A client that reads nothing of a full queue for this long is cut off.
const SLOW_AFTER: Duration = Duration::from_secs(10);
/// How often the server pings, and re-checks that the token still works.
const PING_EVERY: Duration = Duration::from_secs(20);

/// Close codes of RFC 6455.
const GOING_AWAY: u16 = 1001;
const POLICY_VIOLATION: u16 = 1008;
const MESSAGE_TOO_BIG: u16 = 1009;
const TRY_AGAIN_LATER: u16 = 1013;

static SESSIONS: AtomicU64 = AtomicU64::new(1);

pub fn routes() -> Routes {
    Routes::new("websocket").route(openapi::websocket(Route::get("/v1/ws", upgrade)))
}

async fn upgrade(
    State(state): State<AppState>,
    caller: Caller,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // A plain GET (no upgrade headers) is answered like any other bad request: problem+json.
    let ws = ws.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(TRANSPORT_LIMIT)
        .max_frame_size(TRANSPORT_LIMIT)
        .on_upgrade(move |socket: WebSocket| {
            let (sink, stream) = socket.split();
            run(state, caller, stream, sink)
        }))
}

/// The topics of API.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Topic {
    Activity,
    Queue(Uuid),
    Conversation(Uuid),
}

impl Topic {
    fn parse(raw: &str) -> Option<Topic> {
        if raw == "activity" {
            return Some(Topic::Activity);
        }
        if let Some(id) = raw.strip_prefix("queue:") {
            return id.parse().ok().map(Topic::Queue);
        }
        raw.strip_prefix("conversation:")
            .and_then(|id| id.parse().ok())
            .map(Topic::Conversation)
    }

    fn name(&self) -> String {
        match self {
            Topic::Activity => "activity".to_owned(),
            Topic::Queue(id) => format!("queue:{id}"),
            Topic::Conversation(id) => format!("conversation:{id}"),
        }
    }
}

/// Why a session ends early.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The client reads too slowly.
    Slow,
    /// The token stopped working (logout, removal, password change).
    Revoked,
    /// The server is stopping.
    GoingAway,
    /// The client sent a frame over `CLIENT_FRAME_LIMIT`.
    TooBig,
}

/// The bounded way out to the client.
#[derive(Clone)]
struct Out {
    frames: mpsc::Sender<Message>,
    end: watch::Sender<Option<End>>,
}

impl Out {
    /// Queues a frame, waiting for room while the client drains what came before. A client
    /// that leaves the queue full for `SLOW_AFTER` reads too slowly: its session ends (1013).
    async fn send(&self, frame: &Value) -> bool {
        let message = Message::Text(frame.to_string().into());
        match tokio::time::timeout(SLOW_AFTER, self.frames.send(message)).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                let _ = self.end.send(Some(End::Slow));
                false
            }
        }
    }

    async fn error(&self, topic: Option<&str>, status: u16, detail: &str) -> bool {
        self.send(&json!({ "type": "error", "topic": topic, "status": status, "detail": detail }))
            .await
    }
}

/// What a session knows of its caller.
#[derive(Clone)]
struct Who {
    caller: Caller,
    kind: &'static str,
    id: Uuid,
    name: String,
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

/// Runs one client's session until it closes, is revoked, or reads too slowly.
pub async fn run<R, S>(state: AppState, caller: Caller, mut incoming: R, mut outgoing: S)
where
    R: Stream<Item = Result<Message, axum::Error>> + Unpin + Send + 'static,
    S: Sink<Message> + Unpin + Send + 'static,
{
    let session = SESSIONS.fetch_add(1, Ordering::Relaxed);
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
    let (frames, mut queued) = mpsc::channel::<Message>(OUTGOING_FRAMES);
    let (end, mut ended) = watch::channel(None);
    let out = Out { frames, end };

    // The writer: drains the queue, and on an early end says why with a close frame. Every
    // write is bounded in time, so a client that never reads cannot hold the task forever.
    let mut writer_end = ended.clone();
    let mut writer = tokio::spawn(async move {
        let reason = loop {
            tokio::select! {
                // An early end is said first, even when the queue has closed at the same time.
                biased;
                changed = writer_end.changed() => {
                    if changed.is_err() {
                        // Every sender is gone: flush what is queued and stop.
                        while let Some(frame) = queued.recv().await {
                            if !matches!(tokio::time::timeout(SLOW_AFTER, outgoing.send(frame)).await, Ok(Ok(()))) {
                                return;
                            }
                            frames_out.inc();
                        }
                        return;
                    }
                    match *writer_end.borrow() {
                        Some(reason) => break reason,
                        None => continue,
                    }
                }
                frame = queued.recv() => match frame {
                    Some(frame) => match tokio::time::timeout(SLOW_AFTER, outgoing.send(frame)).await {
                        Ok(Ok(())) => frames_out.inc(),
                        Ok(Err(_)) => return,
                        Err(_) => break End::Slow,
                    },
                    None => return,
                },
            }
        };
        if matches!(reason, End::Slow) {
            slow_closes.inc();
        }
        let (code, text) = match reason {
            End::Slow => (TRY_AGAIN_LATER, "reading too slowly; reconnect with after"),
            End::Revoked => (POLICY_VIOLATION, "the token no longer works"),
            End::GoingAway => (GOING_AWAY, "the server is restarting; reconnect with after"),
            End::TooBig => (MESSAGE_TOO_BIG, "a frame is at most 64 KiB"),
        };
        let frame = CloseFrame {
            code,
            reason: text.into(),
        };
        let _ = tokio::time::timeout(SLOW_AFTER, outgoing.send(Message::Close(Some(frame)))).await;
    });

    match &caller {
        Caller::Agent(agent) => state.presence.connected(agent.agent_id),
        // An open socket is a waiting customer's sign of life: it does not time out.
        Caller::Customer(customer) => {
            crate::sweeper::activity().socket_opened(customer.conversation_id)
        }
    }
    let mut subscriptions: HashMap<Topic, JoinHandle<()>> = HashMap::new();
    let mut relays = state.live.relays.subscribe();
    let mut closes = state.live.closer.subscribe();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let token_hash = caller.key().to_owned();

    loop {
        tokio::select! {
            frame = incoming.next() => {
                if matches!(frame, Some(Ok(Message::Text(_) | Message::Binary(_)))) {
                    frames_in.inc();
                }
                match frame {
                    Some(Ok(Message::Text(text))) if text.len() > CLIENT_FRAME_LIMIT => {
                        let _ = out.end.send(Some(End::TooBig));
                        break;
                    }
                    Some(Ok(Message::Binary(bytes))) if bytes.len() > CLIENT_FRAME_LIMIT => {
                        let _ = out.end.send(Some(End::TooBig));
                        break;
                    }
                    Some(Ok(Message::Text(text))) => {
                        handle(&state, &who, session, &out, &mut subscriptions, text.as_str()).await;
                    }
                    Some(Ok(Message::Binary(_))) => {
                        out.error(None, 400, "frames are JSON text").await;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                }
            }
            relay = relays.recv() => match relay {
                Ok(relay) => {
                    let mine = subscriptions.contains_key(&Topic::Conversation(relay.conversation_id));
                    if mine && relay.from_session != session {
                        let _ = out.frames.try_send(Message::Text(relay.frame.as_str().into()));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            order = closes.recv() => {
                let revoked = match order {
                    Ok(CloseOrder::All) => {
                        let _ = out.end.send(Some(End::GoingAway));
                        break;
                    }
                    Ok(CloseOrder::Token(hash)) => hash == token_hash,
                    Ok(CloseOrder::Agent { agent_id, keep }) => {
                        who.kind == "agent" && who.id == agent_id && keep.as_deref() != Some(token_hash.as_str())
                    }
                    Ok(CloseOrder::Recheck { agent_id }) if who.kind == "agent" && who.id == agent_id => {
                        // The change was committed before its order was sent (on this node or
                        // another): the read models the check asks must hold it first.
                        if let Ok(head) = state.store.head().await {
                            state.wait_for_read_models(head).await;
                        }
                        !recheck(&state, &who, &out, &mut subscriptions).await
                    }
                    Ok(CloseOrder::Recheck { .. }) => false,
                    // Orders were dropped while this session lagged: one of them may have been
                    // meant for it, so check everything it holds instead of trusting the channel.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        !recheck(&state, &who, &out, &mut subscriptions).await
                    }
                    Err(broadcast::error::RecvError::Closed) => false,
                };
                if revoked {
                    let _ = out.end.send(Some(End::Revoked));
                    break;
                }
            }
            _ = ping.tick() => {
                if out.frames.try_send(Message::Ping(Vec::new().into())).is_err() {
                    let _ = out.end.send(Some(End::Slow));
                    break;
                }
                // Removal from every organization, or the customer's day after the end; and, in
                // case an order never reached this process, each subscription's access.
                if !recheck(&state, &who, &out, &mut subscriptions).await {
                    let _ = out.end.send(Some(End::Revoked));
                    break;
                }
            }
            _ = ended.changed() => break,
            // The writer gave up on a client that does not read.
            _ = &mut writer => break,
        }
    }

    for (_, task) in subscriptions.drain() {
        task.abort();
    }
    match &caller {
        Caller::Agent(agent) => state.presence.disconnected(agent.agent_id),
        Caller::Customer(customer) => {
            crate::sweeper::activity().socket_closed(customer.conversation_id)
        }
    }
    drop(out);
    if !writer.is_finished() {
        let _ = (&mut writer).await;
    }
    // The closing handshake: after our close frame, read until the client's own (or a while),
    // so that closing the connection does not reset it before the client has read our reason.
    let _ = tokio::time::timeout(SLOW_AFTER, async {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
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

/// Checks the session again: `false` when its token no longer works (the session ends);
/// otherwise every subscription the caller may no longer follow ends, with an error frame
/// (404, as for a topic it could never see), and the rest go on.
async fn recheck(
    state: &AppState,
    who: &Who,
    out: &Out,
    subscriptions: &mut HashMap<Topic, JoinHandle<()>>,
) -> bool {
    if !still_valid(state, who).await {
        return false;
    }
    let topics: Vec<Topic> = subscriptions.keys().copied().collect();
    for topic in topics {
        // 503 (the store is away) is no reason to end a subscription.
        if let Err(status @ (403 | 404)) = authorize(state, who, topic).await {
            if let Some(task) = subscriptions.remove(&topic) {
                task.abort();
            }
            out.error(
                Some(&topic.name()),
                status,
                "this topic is no longer yours to follow",
            )
            .await;
        }
    }
    true
}

/// One frame from the client.
async fn handle(
    state: &AppState,
    who: &Who,
    session: u64,
    out: &Out,
    subscriptions: &mut HashMap<Topic, JoinHandle<()>>,
    text: &str,
) {
    let Ok(frame) = serde_json::from_str::<Map<String, Value>>(text) else {
        out.error(None, 400, "a frame is a JSON object").await;
        return;
    };
    match frame.get("type").and_then(Value::as_str) {
        Some("subscribe") => {
            let Some(name) = frame.get("topic").and_then(Value::as_str) else {
                out.error(None, 400, "subscribe names a topic").await;
                return;
            };
            let after = match frame.get("after") {
                None | Some(Value::Null) => None,
                Some(value) => match value.as_i64() {
                    Some(after) if after >= 0 => Some(after),
                    _ => {
                        out.error(
                            Some(name),
                            400,
                            "after is a position (a whole number) or null",
                        )
                        .await;
                        return;
                    }
                },
            };
            let Some(topic) = Topic::parse(name) else {
                out.error(Some(name), 404, "no such topic").await;
                return;
            };
            let plan = match authorize(state, who, topic).await {
                Ok(plan) => plan,
                Err(status) => {
                    out.error(Some(name), status, "no such topic").await;
                    return;
                }
            };
            if let Some(previous) = subscriptions.remove(&topic) {
                previous.abort();
            }
            let task = tokio::spawn(follow(
                state.clone(),
                who.clone(),
                topic,
                plan,
                after,
                out.clone(),
            ));
            subscriptions.insert(topic, task);
        }
        Some("unsubscribe") => {
            let topic = frame
                .get("topic")
                .and_then(Value::as_str)
                .and_then(Topic::parse);
            if let Some(task) = topic.and_then(|topic| subscriptions.remove(&topic)) {
                task.abort();
            }
        }
        Some(kind @ ("typing" | "signal")) => {
            // Each costs a read and a broadcast: limited per socket before either, whatever
            // the caller.
            let rate = if kind == "typing" {
                limits::TYPING_FRAMES
            } else {
                limits::SIGNAL_FRAMES
            };
            if let Err(ApiError::RateLimited {
                retry_after_seconds,
            }) = limits::enforce_socket(state, rate, session)
            {
                let detail =
                    format!("too many {kind} frames; try again in {retry_after_seconds} s");
                out.error(None, 429, &detail).await;
                return;
            }
            let Some(conversation_id) = frame
                .get("conversation")
                .and_then(Value::as_str)
                .and_then(|id| id.parse().ok())
            else {
                out.error(None, 400, "name the conversation").await;
                return;
            };
            if access::conversation(state, &who.caller, conversation_id)
                .await
                .is_err()
            {
                out.error(None, 404, "no such conversation").await;
                return;
            }
            let relayed = if kind == "typing" {
                json!({
                    "type": "typing",
                    "conversation": conversation_id,
                    "author": { "kind": who.kind, "id": who.id, "name": who.name },
                })
            } else {
                let Some(data) = frame.get("data").filter(|data| data.is_object()) else {
                    out.error(None, 400, "a signal carries a data object").await;
                    return;
                };
                json!({
                    "type": "signal",
                    "conversation": conversation_id,
                    "from": { "kind": who.kind, "id": who.id },
                    "data": data,
                })
            };
            state.live.relay(Relay {
                conversation_id,
                from_session: session,
                frame: Arc::new(relayed.to_string()),
            });
        }
        _ => {
            out.error(None, 400, "unknown frame type").await;
        }
    }
}

/// What following a topic reads, decided once at subscription.
#[derive(Debug, Clone)]
enum Plan {
    Activity,
    Queue {
        queue_id: Uuid,
    },
    Conversation {
        conversation_id: Uuid,
        customer: bool,
    },
}

/// Whether `who` may follow `topic`: 404 as over HTTP for what it may not see.
async fn authorize(state: &AppState, who: &Who, topic: Topic) -> Result<Plan, u16> {
    match (topic, &who.caller) {
        (Topic::Activity, Caller::Agent(_)) => Ok(Plan::Activity),
        (Topic::Queue(queue_id), Caller::Agent(agent)) => {
            let queue = crate::consistency::found(state, || async {
                Ok(projections::queues::read::queue(state.backend(), queue_id).await?)
            })
            .await
            .map_err(|_| 503u16)?;
            let queue = queue.ok_or(404u16)?;
            access::member(state, agent, queue.organization_id)
                .await
                .map_err(|_| 404u16)?;
            Ok(Plan::Queue { queue_id })
        }
        (Topic::Conversation(conversation_id), caller) => {
            access::conversation(state, caller, conversation_id)
                .await
                .map_err(|_| 404u16)?;
            Ok(Plan::Conversation {
                conversation_id,
                customer: matches!(caller, Caller::Customer(_)),
            })
        }
        (_, Caller::Customer(_)) => Err(404),
    }
}

/// The queue events of API.md's `queue:ID` topic, and auto routing's offers.
const QUEUE_TOPIC: [&str; 14] = domain::event_types![
    "QueueOpened",
    "QueueClosed",
    "QueueSettingsChanged",
    "QueueHandlerAdded",
    "QueueHandlerRemoved",
    "CustomerJoinedQueue",
    "CustomerLeftQueue",
    "CustomerPicked",
    "ConversationTransferred",
    "MessageLeft",
    "CustomerOffered",
    "OfferAccepted",
    "OfferDeclined",
    "OfferExpired",
];

fn event_frame(topic: &str, event: &StoredEvent, body: Value) -> Value {
    json!({ "type": "event", "topic": topic, "position": event.position, "event": body })
}

/// The stored event's fields, flat, plus `type`, `position` and `at`: an `event` frame's
/// `event` for agents, and the body of the event's JetStream message (`crate::outbox`).
pub fn full_body(event: &StoredEvent) -> Value {
    let mut body = match &event.payload {
        Value::Object(map) => map.clone(),
        other => {
            let mut map = Map::new();
            map.insert("payload".into(), other.clone());
            map
        }
    };
    body.insert("type".into(), Value::String(event.event_type.clone()));
    body.insert("position".into(), json!(event.position));
    body.insert("at".into(), json!(event.recorded_at));
    Value::Object(body)
}

/// An event of a `conversation:` topic as its reader sees it: the customer's allow-list, or
/// everything for an agent — except an event of a type this version does not know (a newer
/// node's, during a rolling upgrade), which is skipped and logged.
fn conversation_body(event: &StoredEvent, customer: bool) -> Option<Value> {
    if !domain::event::is_known(&event.event_type) {
        tracing::warn!(
            position = event.position,
            event_type = %event.event_type,
            "not sending an event of a type this version does not know (written by a newer node?)"
        );
        return None;
    }
    if customer {
        customer_body(event)
    } else {
        Some(full_body(event))
    }
}

fn conversation_of(event: &StoredEvent) -> Option<Uuid> {
    event
        .payload
        .get("conversation_id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
}

/// A customer's view of an event of its conversation: the allow-list of API.md — messages,
/// the agent's name on pick, the end, a transfer (as waiting again), calls — never notes,
/// tags or metadata, and nothing of other customers. Built from the decoded event, so each
/// field it shows is one the event has.
fn customer_body(event: &StoredEvent) -> Option<Value> {
    use domain::conversation::ConversationEvent as C;
    use domain::queue::QueueEvent as Q;
    let decoded = match Event::decode_ref(&event.aggregate_type, &event.payload) {
        Ok(decoded) => decoded,
        Err(error) => {
            tracing::error!(position = event.position, %error, "undecodable event; not sent to the customer");
            return None;
        }
    };
    let mut body = match decoded {
        Event::Conversation(C::MessageSent {
            conversation_id,
            message_id,
            seq,
            author,
            text,
            attachments,
            ..
        }) => json!({
            "conversation_id": conversation_id,
            "message_id": message_id,
            "seq": seq,
            "author": author,
            "text": text,
            "attachments": attachments,
        }),
        // Handed over to a teammate: the customer learns its new agent's name, as on a pick.
        Event::Queue(Q::CustomerPicked {
            conversation_id,
            agent_name,
            ..
        })
        | Event::Conversation(C::HandoffAccepted {
            conversation_id,
            agent_name,
            ..
        }) => json!({
            "conversation_id": conversation_id,
            "agent": { "name": agent_name },
        }),
        Event::Queue(Q::ConversationTransferred {
            conversation_id,
            queue_position,
            ..
        }) => json!({
            "conversation_id": conversation_id,
            "status": "waiting",
            "queue_position": queue_position,
        }),
        Event::Conversation(C::ConversationEnded {
            conversation_id,
            reason,
            ..
        }) => json!({
            "conversation_id": conversation_id,
            "reason": reason,
        }),
        Event::Conversation(C::ConversationReopened {
            conversation_id, ..
        }) => json!({
            "conversation_id": conversation_id,
            "status": "active",
        }),
        Event::Conversation(
            C::CallStarted {
                conversation_id,
                call_id,
                by,
                ..
            }
            | C::CallEnded {
                conversation_id,
                call_id,
                by,
                ..
            },
        ) => json!({
            "conversation_id": conversation_id,
            "call_id": call_id,
            "by": { "kind": by.kind },
        }),
        _ => return None,
    };
    if let Value::Object(map) = &mut body {
        map.insert("type".into(), Value::String(event.event_type.clone()));
        map.insert("at".into(), json!(event.recorded_at));
    }
    Some(body)
}

/// Replays a topic after `after`, says `subscribed`, then follows the hub.
async fn follow(state: AppState, who: Who, topic: Topic, plan: Plan, after: Option<i64>, out: Out) {
    let name = topic.name();
    // Subscribe to the hub before replaying, so nothing committed during the replay is lost;
    // what the replay already sent is skipped by position.
    let mut live = state.live.hub.subscribe();
    let mut last = after.unwrap_or(0);
    let mut queue_place: Option<(Uuid, i64)> = None;
    let Some(covered) = replay(&state, &who, &plan, &name, &mut last, &out).await else {
        return;
    };
    last = last.max(covered);
    if !out
        .send(&json!({ "type": "subscribed", "topic": name, "position": last }))
        .await
    {
        return;
    }
    if let Plan::Conversation {
        conversation_id,
        customer: true,
    } = plan
    {
        if !queue_frame(&state, conversation_id, &mut queue_place, &out).await {
            return;
        }
    }
    loop {
        let event = match live.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Behind the hub: read what was missed from the store, never skip it.
                match replay(&state, &who, &plan, &name, &mut last, &out).await {
                    Some(covered) => last = last.max(covered),
                    None => return,
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if event.position <= last {
            continue;
        }
        let sent = match &plan {
            Plan::Activity => {
                if projections::activity::TYPES.contains(&event.event_type.as_str()) {
                    state.wait_for_read_models(event.position).await;
                    if activity_page(&state, &who, &name, &mut last, &out)
                        .await
                        .is_none()
                    {
                        return;
                    }
                }
                last = last.max(event.position);
                true
            }
            Plan::Queue { queue_id } => {
                last = event.position;
                if event.aggregate_type == "queue"
                    && event.aggregate_id == queue_id.to_string()
                    && QUEUE_TOPIC.contains(&event.event_type.as_str())
                {
                    out.send(&event_frame(&name, &event, full_body(&event)))
                        .await
                } else {
                    true
                }
            }
            Plan::Conversation {
                conversation_id,
                customer,
            } => {
                last = event.position;
                let mut ok = true;
                // An agent's workload names conversations too, but is not the conversation's
                // history (a replay does not read it): never sent here.
                let mine = event.aggregate_type != "workload"
                    && conversation_of(&event) == Some(*conversation_id);
                if mine {
                    if let Some(body) = conversation_body(&event, *customer) {
                        ok = out.send(&event_frame(&name, &event, body)).await;
                    }
                }
                // A waiting customer hears of its place whenever its line moves, or it moves
                // to another line (a transfer, or waiting again after a pick). Other queues'
                // events cannot change its place: they are not looked at.
                let my_line = queue_place
                    .is_some_and(|(queue_id, _)| event.aggregate_id == queue_id.to_string());
                if ok && *customer && event.aggregate_type == "queue" && (mine || my_line) {
                    state.wait_for_read_models(event.position).await;
                    ok = queue_frame(&state, *conversation_id, &mut queue_place, &out).await;
                }
                ok
            }
        };
        if !sent {
            return;
        }
    }
}

/// Sends what the topic holds after `last` from the store; returns the position covered.
async fn replay(
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

/// Every event of one conversation after `after`: its own stream and what the queues it went
/// through recorded of it, in log order.
async fn conversation_history(
    state: &AppState,
    conversation_id: Uuid,
    after: i64,
) -> Option<Vec<StoredEvent>> {
    let id = conversation_id.to_string();
    let own = state.store.load_stream("conversation", &id).await.ok()?;
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
            .load_stream_since("queue", &queue, after)
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
async fn activity_page(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(event_type: &str) -> StoredEvent {
        let conversation = Uuid::new_v4();
        StoredEvent {
            position: 7,
            event_id: Uuid::new_v4(),
            aggregate_type: "conversation".into(),
            aggregate_id: conversation.to_string(),
            sequence: 2,
            event_type: event_type.into(),
            event_version: "1".into(),
            payload: json!({"type": event_type, "conversation_id": conversation, "text": "hi"}),
            actor: None,
            recorded_at: chrono::Utc::now(),
            idempotency_key: None,
        }
    }

    /// A newer node's event type (a rolling upgrade) reaches nobody through an older node; a
    /// known one reaches the agent whole.
    #[test]
    fn an_event_of_an_unknown_type_is_not_sent() {
        assert!(conversation_body(&stored("MessageRecalledByTimeTravel"), false).is_none());
        assert!(conversation_body(&stored("MessageRecalledByTimeTravel"), true).is_none());
        let known = conversation_body(&stored("NoteAdded"), false).unwrap();
        assert_eq!(known["type"], "NoteAdded");
        assert!(
            conversation_body(&stored("NoteAdded"), true).is_none(),
            "notes never reach a customer"
        );
    }

    /// A customer sees its message's allow-listed fields, read from the decoded event: not
    /// the organization, nor anything the stored payload holds beside them.
    #[test]
    fn a_customer_sees_the_allow_list_of_a_message() {
        use domain::conversation::ConversationEvent;
        use domain::values::Author;
        let (conversation_id, message_id) = (Uuid::new_v4(), Uuid::new_v4());
        let event = Event::Conversation(ConversationEvent::MessageSent {
            conversation_id,
            organization_id: Uuid::new_v4(),
            message_id,
            seq: 3,
            author: Author::customer(conversation_id, "Ada"),
            text: "hello".into(),
            attachments: Vec::new(),
        });
        let mut message = stored("MessageSent");
        message.payload = event.payload().unwrap();
        message.payload["unknown_extra"] = json!("kept out");
        let body = conversation_body(&message, true).unwrap();
        assert_eq!(
            body,
            json!({
                "type": "MessageSent",
                "at": message.recorded_at,
                "conversation_id": conversation_id,
                "message_id": message_id,
                "seq": 3,
                "author": {"kind": "customer", "id": conversation_id, "name": "Ada"},
                "text": "hello",
                "attachments": [],
            })
        );
    }
}
