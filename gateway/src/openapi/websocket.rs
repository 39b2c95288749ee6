//! The WebSocket's operation (`GET /v1/ws`, declared in `ws.rs`) and the frames it carries,
//! which `ws.rs` writes as JSON values: the document gives their schemas as the operation's
//! `x-websocket-frames`.

use chrono::{DateTime, Utc};
use domain::values::AuthorKind;
use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::Route;
use crate::routes::conversations::wire::MessageAuthor;
use crate::ws::CustomerEvent;

/// The document's side of the `/v1/ws` route.
pub fn websocket(route: Route) -> Route {
    route
        .id("websocket")
        .summary("The WebSocket")
        .describe("Token in the `Authorization` header or in `?token=`. JSON text frames: `x-websocket-frames` gives their schemas. Topics `activity`, `queue:ID` and `conversation:ID`; subscribe with `after` to resume with no gap and no duplicate. A client that reads too slowly is closed (1008 or 1013) and reconnects with `after`.")
        .query("token", json!({"type": "string"}), "The bearer token, for clients that cannot set headers.")
        .responds(101, "Switching to the WebSocket protocol.")
        .extension("x-websocket", json!(true))
        .extension_with("x-websocket-frames", frames)
}

/// The schemas of the frames each way, and of the `event` a customer's topic carries.
fn frames(generator: &mut SchemaGenerator) -> Value {
    let client = generator.subschema_for::<WsClientFrame>().to_value();
    let server = generator.subschema_for::<WsServerFrame>().to_value();
    let customer_event = generator.subschema_for::<CustomerEvent>().to_value();
    json!({"client": client, "server": server, "customer_event": customer_event})
}

/// A frame a client sends over `/v1/ws`.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum WsClientFrame {
    /// Replays the topic after `after` (`null`: from its beginning), then follows it live.
    Subscribe {
        /// `activity`, `queue:ID` or `conversation:ID`.
        topic: String,
        after: Option<u64>,
    },
    Unsubscribe {
        topic: String,
    },
    /// A WebRTC offer, answer or ICE candidate for the conversation's other participants.
    Signal {
        conversation: Uuid,
        data: Map<String, Value>,
    },
    /// Not stored; relayed to the conversation's other participants.
    Typing {
        conversation: Uuid,
    },
}

/// Who a relayed frame is from.
#[derive(Serialize, JsonSchema)]
pub struct Participant {
    pub kind: AuthorKind,
    pub id: Uuid,
}

/// A stored event, flat: its `type`, the fields its JSON Schema in `schemas/events/` gives,
/// and `at`. A customer's topic carries only its allow-list of types and fields: a
/// `CustomerEvent` (`x-websocket-frames.customer_event`).
#[derive(Serialize, JsonSchema)]
pub struct WsEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub at: DateTime<Utc>,
}

/// A frame the server sends over `/v1/ws`.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum WsServerFrame {
    Event {
        topic: String,
        /// The event's place in the global log; it only rises within a topic.
        position: u64,
        event: WsEvent,
    },
    /// Every event of the topic up to `position` has been sent; live events follow.
    Subscribed { topic: String, position: u64 },
    /// A topic that does not exist or that the caller may not see (404), a malformed frame
    /// (400), or typing or signal frames beyond their rate (429).
    Error {
        topic: Option<String>,
        status: u16,
        detail: String,
    },
    Signal {
        conversation: Uuid,
        from: Participant,
        data: Map<String, Value>,
    },
    Typing {
        conversation: Uuid,
        author: MessageAuthor,
    },
    /// To a waiting customer subscribed to its conversation: at subscription and whenever its
    /// place changes.
    Queue {
        conversation: Uuid,
        /// 1 = next.
        queue_position: u64,
        /// A placeholder estimate: one minute (60 seconds) a place in line. It will learn from
        /// the queue's recent waits in the real-time extras issue; until then do not show it as
        /// a promise.
        estimated_wait_seconds: u64,
    },
}
