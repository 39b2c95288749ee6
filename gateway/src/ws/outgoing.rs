//! The bounded way out to a client: why a session may end early, the queue its frames wait in,
//! and the writer task that drains it — so that a client that reads too slowly costs the server
//! a bounded queue and a bounded wait, never unbounded memory.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures::{Sink, SinkExt};
use prometheus::IntCounter;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Frames queued for a client; past them, senders wait for it to read.
const OUTGOING_FRAMES: usize = 512;
/// A client that reads nothing of a full queue for this long is cut off.
pub(super) const SLOW_AFTER: Duration = Duration::from_secs(10);

/// Close codes of RFC 6455.
const GOING_AWAY: u16 = 1001;
const POLICY_VIOLATION: u16 = 1008;
const MESSAGE_TOO_BIG: u16 = 1009;
const TRY_AGAIN_LATER: u16 = 1013;

/// Why a session ends early.
#[derive(Debug, Clone, Copy)]
pub(super) enum End {
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
pub(super) struct Out {
    pub(super) frames: mpsc::Sender<Message>,
    pub(super) end: watch::Sender<Option<End>>,
}

impl Out {
    /// Queues a frame, waiting for room while the client drains what came before. A client
    /// that leaves the queue full for `SLOW_AFTER` reads too slowly: its session ends (1013).
    pub(super) async fn send(&self, frame: &Value) -> bool {
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

    pub(super) async fn error(&self, topic: Option<&str>, status: u16, detail: &str) -> bool {
        self.send(&json!({ "type": "error", "topic": topic, "status": status, "detail": detail }))
            .await
    }

    /// Ends the session early, for `reason` (said to the client by the writer).
    pub(super) fn close(&self, reason: End) {
        let _ = self.end.send(Some(reason));
    }
}

/// Opens the way out to `outgoing`: the queue, the early end the session and the writer watch,
/// and the writer (which counts each frame it writes in `frames_out`, and each slow client's
/// close in `slow_closes`).
pub(super) fn open<S>(
    outgoing: S,
    frames_out: IntCounter,
    slow_closes: IntCounter,
) -> (Out, watch::Receiver<Option<End>>, JoinHandle<()>)
where
    S: Sink<Message> + Unpin + Send + 'static,
{
    let (frames, queued) = mpsc::channel::<Message>(OUTGOING_FRAMES);
    let (end, ended) = watch::channel(None);
    let writer = tokio::spawn(write(
        queued,
        ended.clone(),
        outgoing,
        frames_out,
        slow_closes,
    ));
    (Out { frames, end }, ended, writer)
}

/// The writer: drains the queue, and on an early end says why with a close frame. Every
/// write is bounded in time, so a client that never reads cannot hold the task forever.
async fn write<S>(
    mut queued: mpsc::Receiver<Message>,
    mut writer_end: watch::Receiver<Option<End>>,
    mut outgoing: S,
    frames_out: IntCounter,
    slow_closes: IntCounter,
) where
    S: Sink<Message> + Unpin + Send + 'static,
{
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
    let _ = tokio::time::timeout(
        SLOW_AFTER,
        outgoing.send(Message::Close(Some(close_frame(reason)))),
    )
    .await;
}

/// The close frame that tells the client why its session ended.
fn close_frame(reason: End) -> CloseFrame {
    let (code, text) = match reason {
        End::Slow => (TRY_AGAIN_LATER, "reading too slowly; reconnect with after"),
        End::Revoked => (POLICY_VIOLATION, "the token no longer works"),
        End::GoingAway => (GOING_AWAY, "the server is restarting; reconnect with after"),
        End::TooBig => (MESSAGE_TOO_BIG, "a frame is at most 64 KiB"),
    };
    CloseFrame {
        code,
        reason: text.into(),
    }
}
