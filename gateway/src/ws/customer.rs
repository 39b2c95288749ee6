//! A customer's view of its conversation's events (invariant 8): an allow-list, built from the
//! decoded event, kept in one place so that what a customer may see is read in one type,
//! [`CustomerEvent`], which the OpenAPI document also gives (the console's types come from it).

use chrono::{DateTime, Utc};
use domain::conversation::{AttachmentRef, EndReason};
use domain::values::{Author, AuthorKind};
use domain::Event;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use store::event::StoredEvent;
use uuid::Uuid;

use crate::routes::conversations::wire::AgentName;

/// An event of a customer's own conversation, as its customer's topic carries it: the
/// allow-list of API.md — messages, the agent's name on pick, the end, a transfer (as waiting
/// again), calls — never notes, tags or metadata, and nothing of other customers.
#[derive(Serialize, JsonSchema)]
pub struct CustomerEvent {
    #[serde(flatten)]
    pub event: CustomerEventBody,
    /// When the event was recorded.
    pub at: DateTime<Utc>,
}

/// The fields of each event a customer sees, by its `type`.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "type")]
pub enum CustomerEventBody {
    MessageSent {
        conversation_id: Uuid,
        message_id: Uuid,
        seq: u64,
        author: Author,
        text: String,
        attachments: Vec<AttachmentRef>,
    },
    /// Picked: the customer learns its agent's name.
    CustomerPicked {
        conversation_id: Uuid,
        agent: AgentName,
    },
    /// Handed over to a teammate: the customer learns its new agent's name, as on a pick.
    HandoffAccepted {
        conversation_id: Uuid,
        agent: AgentName,
    },
    /// Moved to another queue's line: waiting again.
    ConversationTransferred {
        conversation_id: Uuid,
        status: Waiting,
        queue_position: u64,
    },
    ConversationEnded {
        conversation_id: Uuid,
        reason: EndReason,
    },
    /// Written to after its end, within the queue's reopening window: going on.
    ConversationReopened {
        conversation_id: Uuid,
        status: Active,
    },
    CallStarted {
        conversation_id: Uuid,
        call_id: Uuid,
        by: CallParty,
    },
    CallEnded {
        conversation_id: Uuid,
        call_id: Uuid,
        by: CallParty,
    },
}

/// `waiting`: back in a line.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Waiting {
    Waiting,
}

/// `active`: with an agent again.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Active {
    Active,
}

/// Who started or ended a call, as a customer sees it: only which side.
#[derive(Serialize, JsonSchema)]
pub struct CallParty {
    pub kind: AuthorKind,
}

impl CustomerEventBody {
    /// The customer's view of `event`, or `None` for an event a customer does not see.
    fn of(event: Event) -> Option<Self> {
        use domain::conversation::ConversationEvent as C;
        use domain::queue::QueueEvent as Q;
        Some(match event {
            Event::Conversation(C::MessageSent {
                conversation_id,
                message_id,
                seq,
                author,
                text,
                attachments,
                ..
            }) => Self::MessageSent {
                conversation_id,
                message_id,
                seq,
                author,
                text,
                attachments,
            },
            Event::Queue(Q::CustomerPicked {
                conversation_id,
                agent_name,
                ..
            }) => Self::CustomerPicked {
                conversation_id,
                agent: AgentName { name: agent_name },
            },
            Event::Conversation(C::HandoffAccepted {
                conversation_id,
                agent_name,
                ..
            }) => Self::HandoffAccepted {
                conversation_id,
                agent: AgentName { name: agent_name },
            },
            Event::Queue(Q::ConversationTransferred {
                conversation_id,
                queue_position,
                ..
            }) => Self::ConversationTransferred {
                conversation_id,
                status: Waiting::Waiting,
                queue_position: u64::try_from(queue_position).unwrap_or(u64::MAX),
            },
            Event::Conversation(C::ConversationEnded {
                conversation_id,
                reason,
                ..
            }) => Self::ConversationEnded {
                conversation_id,
                reason,
            },
            Event::Conversation(C::ConversationReopened {
                conversation_id, ..
            }) => Self::ConversationReopened {
                conversation_id,
                status: Active::Active,
            },
            Event::Conversation(C::CallStarted {
                conversation_id,
                call_id,
                by,
                ..
            }) => Self::CallStarted {
                conversation_id,
                call_id,
                by: CallParty { kind: by.kind },
            },
            Event::Conversation(C::CallEnded {
                conversation_id,
                call_id,
                by,
                ..
            }) => Self::CallEnded {
                conversation_id,
                call_id,
                by: CallParty { kind: by.kind },
            },
            _ => return None,
        })
    }
}

/// The customer's view of a stored event of its conversation, as a frame's `event`; `None`
/// for an event outside the allow-list (or one that does not decode, logged).
pub(super) fn customer_body(event: &StoredEvent) -> Option<Value> {
    let decoded = match Event::decode_ref(&event.aggregate_type, &event.payload) {
        Ok(decoded) => decoded,
        Err(error) => {
            tracing::error!(position = event.position, %error, "undecodable event; not sent to the customer");
            return None;
        }
    };
    let view = CustomerEvent {
        event: CustomerEventBody::of(decoded)?,
        at: event.recorded_at,
    };
    match serde_json::to_value(view) {
        Ok(body) => Some(body),
        Err(error) => {
            tracing::error!(position = event.position, %error, "a customer's event did not serialize");
            None
        }
    }
}
