//! The frames that carry events: an `event` frame, the agent's view of an event (its stored
//! fields, flat — also the body of its JetStream message), and which view a reader of a
//! `conversation:` topic gets.

use serde_json::{json, Map, Value};
use store::event::StoredEvent;

use super::customer::customer_body;

pub(super) fn event_frame(topic: &str, event: &StoredEvent, body: Value) -> Value {
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
pub(super) fn conversation_body(event: &StoredEvent, customer: bool) -> Option<Value> {
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

#[cfg(test)]
mod tests {
    use domain::Event;
    use uuid::Uuid;

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
