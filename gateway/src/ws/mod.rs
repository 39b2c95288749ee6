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
//!
//! The rooms:
//! - `session`: one connection's loop — who is calling, what wakes the session (a client
//!   frame, a relay, a close order, the ping), the periodic re-check, and its end.
//! - `outgoing`: the bounded way out to the client, its writer, and the close frames that say
//!   why a session ended.
//! - `incoming`: what a client's frame asks: subscribe, unsubscribe, typing and signals.
//! - `topics`: the topics, and whether a caller may follow one (404 as over HTTP).
//! - `follow`: a subscription's task: replay, `subscribed`, then the live hub; a waiting
//!   customer's `queue` frames.
//! - `replay`: what a topic holds after a position, read from the store and the read models.
//! - `frames`: `event` frames and the agent's view of an event (also a JetStream message's
//!   body).
//! - `customer`: the customer's allow-listed view of its conversation's events.

mod customer;
mod follow;
mod frames;
mod incoming;
mod outgoing;
mod replay;
mod session;
mod topics;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::StreamExt;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::openapi::{self, Route, Routes};
use crate::state::AppState;

pub use customer::CustomerEvent;
pub use frames::full_body;
pub use session::run;

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
            run(state, caller.kept(), stream, sink)
        }))
}
