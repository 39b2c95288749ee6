//! A customer's view of its conversation's events (invariant 8): an allow-list, built from the
//! decoded event, kept in one place so that what a customer may see is read in one function.

use domain::Event;
use serde_json::{json, Value};
use store::event::StoredEvent;

/// A customer's view of an event of its conversation: the allow-list of API.md — messages,
/// the agent's name on pick, the end, a transfer (as waiting again), calls — never notes,
/// tags or metadata, and nothing of other customers. Built from the decoded event, so each
/// field it shows is one the event has.
pub(super) fn customer_body(event: &StoredEvent) -> Option<Value> {
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
