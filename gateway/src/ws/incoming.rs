//! What a client's frame asks of its session: to subscribe to a topic (from a position), to
//! unsubscribe, or to pass a typing or signal frame to the conversation's other sessions. Each
//! mistake is answered with an `error` frame; the session goes on.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::follow::follow;
use super::session::Session;
use super::topics::{authorize, Topic};
use crate::access;
use crate::error::ApiError;
use crate::limits;
use crate::live::Relay;

impl Session {
    /// One frame from the client.
    pub(super) async fn handle(&mut self, text: &str) {
        let Ok(frame) = serde_json::from_str::<Map<String, Value>>(text) else {
            self.out.error(None, 400, "a frame is a JSON object").await;
            return;
        };
        match frame.get("type").and_then(Value::as_str) {
            Some("subscribe") => self.subscribe(&frame).await,
            Some("unsubscribe") => self.unsubscribe(&frame),
            Some(kind @ ("typing" | "signal")) => self.relay(kind, &frame).await,
            _ => {
                self.out.error(None, 400, "unknown frame type").await;
            }
        }
    }

    /// Starts following a topic after the frame's `after`, in place of any earlier
    /// subscription to it.
    async fn subscribe(&mut self, frame: &Map<String, Value>) {
        let out = &self.out;
        let Some(name) = frame.get("topic").and_then(Value::as_str) else {
            out.error(None, 400, "subscribe names a topic").await;
            return;
        };
        let Ok(after) = after(frame) else {
            out.error(
                Some(name),
                400,
                "after is a position (a whole number) or null",
            )
            .await;
            return;
        };
        let Some(topic) = Topic::parse(name) else {
            out.error(Some(name), 404, "no such topic").await;
            return;
        };
        let plan = match authorize(&self.state, &self.who, topic).await {
            Ok(plan) => plan,
            Err(status) => {
                out.error(Some(name), status, "no such topic").await;
                return;
            }
        };
        if let Some(previous) = self.subscriptions.remove(&topic) {
            previous.abort();
        }
        let task = tokio::spawn(follow(
            self.state.clone(),
            self.who.clone(),
            topic,
            plan,
            after,
            self.out.clone(),
        ));
        self.subscriptions.insert(topic, task);
    }

    fn unsubscribe(&mut self, frame: &Map<String, Value>) {
        let topic = frame
            .get("topic")
            .and_then(Value::as_str)
            .and_then(Topic::parse);
        if let Some(task) = topic.and_then(|topic| self.subscriptions.remove(&topic)) {
            task.abort();
        }
    }

    /// A typing or signal frame, passed to the conversation's other sessions on every node.
    async fn relay(&self, kind: &str, frame: &Map<String, Value>) {
        let (state, who, out) = (&self.state, &self.who, &self.out);
        // Each costs a read and a broadcast: limited per socket before either, whatever
        // the caller.
        let rate = if kind == "typing" {
            limits::TYPING_FRAMES
        } else {
            limits::SIGNAL_FRAMES
        };
        if let Err(ApiError::RateLimited {
            retry_after_seconds,
        }) = limits::enforce_socket(state, rate, self.id)
        {
            let detail = format!("too many {kind} frames; try again in {retry_after_seconds} s");
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
            from_session: self.id,
            frame: Arc::new(relayed.to_string()),
        });
    }
}

/// A subscription's `after`: absent or null (from the start), or a position.
fn after(frame: &Map<String, Value>) -> Result<Option<i64>, ()> {
    match frame.get("after") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64() {
            Some(after) if after >= 0 => Ok(Some(after)),
            _ => Err(()),
        },
    }
}
