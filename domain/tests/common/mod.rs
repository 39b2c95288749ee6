//! Small builders shared by the domain's given/when/then tests: ids, authors, and the events
//! that bring an aggregate to the state a test starts from.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::Aggregate;
use domain::conversation::{AttachmentRef, ConversationEvent, ConversationKind};
use domain::metadata::CustomerMetadata;
use domain::queue::{QueueEvent, QueueSettings};
use domain::values::{Author, FileName, Name, WelcomeMessage};
use uuid::Uuid;

/// A fixed id from a small number, so that failures print readable ids.
pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub const ORG: Uuid = Uuid::from_u128(0x0_0a);
pub const OTHER_ORG: Uuid = Uuid::from_u128(0x0_0b);
pub const QUEUE: Uuid = Uuid::from_u128(0x0_1a);
pub const OTHER_QUEUE: Uuid = Uuid::from_u128(0x0_1b);
pub const CONVERSATION: Uuid = Uuid::from_u128(0x0_2a);
pub const AGENT: Uuid = Uuid::from_u128(0x0_3a);
pub const OTHER_AGENT: Uuid = Uuid::from_u128(0x0_3b);
pub const THIRD_AGENT: Uuid = Uuid::from_u128(0x0_3c);
/// Causation ids of transfers (`TransferIn`, `ConversationTransferred`, `Requeue`).
pub const TRANSFER: Uuid = Uuid::from_u128(0x0_4a);
pub const OTHER_TRANSFER: Uuid = Uuid::from_u128(0x0_4b);

pub fn name(text: &str) -> Name {
    Name::parse(text).expect("a valid test value")
}

pub fn welcome(text: &str) -> WelcomeMessage {
    WelcomeMessage::parse(text).expect("a valid test value")
}

pub fn metadata(value: serde_json::Value) -> CustomerMetadata {
    CustomerMetadata::parse(value).expect("a valid test value")
}

pub fn agent(agent_id: Uuid) -> Author {
    Author::agent(agent_id, "Aino")
}

pub fn customer(conversation_id: Uuid) -> Author {
    Author::customer(conversation_id, "Ann")
}

pub fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

/// Folds events into a fresh aggregate, as the store does when it loads one.
pub fn fold<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> A {
    let mut aggregate = A::default();
    for event in events {
        aggregate.apply(event);
    }
    aggregate
}

// ---- queue ----

pub fn queue_created() -> QueueEvent {
    QueueEvent::QueueCreated {
        queue_id: QUEUE,
        organization_id: ORG,
        name: name("Support"),
    }
}

pub fn queue_opened() -> QueueEvent {
    QueueEvent::QueueOpened {
        queue_id: QUEUE,
        organization_id: ORG,
        by: None,
    }
}

pub fn queue_closed() -> QueueEvent {
    QueueEvent::QueueClosed {
        queue_id: QUEUE,
        organization_id: ORG,
        by: None,
    }
}

pub fn handler_added(agent_id: Uuid) -> QueueEvent {
    QueueEvent::QueueHandlerAdded {
        queue_id: QUEUE,
        organization_id: ORG,
        agent_id,
        by: None,
    }
}

pub fn settings_changed(settings: QueueSettings) -> QueueEvent {
    QueueEvent::QueueSettingsChanged {
        queue_id: QUEUE,
        organization_id: ORG,
        settings,
        by: None,
    }
}

/// A created, open queue with `AGENT` as its handler.
pub fn open_queue() -> Vec<QueueEvent> {
    vec![queue_created(), queue_opened(), handler_added(AGENT)]
}

pub fn joined(conversation_id: Uuid, queue_position: usize) -> QueueEvent {
    QueueEvent::CustomerJoinedQueue {
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id,
        queue_position,
        welcome_message: None,
        metadata: CustomerMetadata::default(),
        customer: None,
    }
}

pub fn picked(conversation_id: Uuid, agent_id: Uuid) -> QueueEvent {
    QueueEvent::CustomerPicked {
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id,
        agent_id,
        agent_name: "Aino".into(),
    }
}

/// `conversation_id` arrived in `QUEUE` from `from_queue_id` by the transfer `transfer_id`.
pub fn transferred_in(transfer_id: Uuid, conversation_id: Uuid, from_queue_id: Uuid) -> QueueEvent {
    QueueEvent::ConversationTransferred {
        transfer_id,
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id,
        from_queue_id,
        from_agent_id: None,
        queue_position: 1,
        by: None,
    }
}

// ---- conversation ----

pub fn customer_started(conversation_id: Uuid) -> ConversationEvent {
    ConversationEvent::ConversationStarted {
        conversation_id,
        organization_id: ORG,
        kind: ConversationKind::Customer,
        queue_id: Some(QUEUE),
        name: None,
        participants: Vec::new(),
        by: None,
    }
}

pub fn channel_started(conversation_id: Uuid) -> ConversationEvent {
    ConversationEvent::ConversationStarted {
        conversation_id,
        organization_id: ORG,
        kind: ConversationKind::Channel,
        queue_id: None,
        name: Some(name("Team")),
        participants: Vec::new(),
        by: Some(AGENT),
    }
}

pub fn direct_started(conversation_id: Uuid, a: Uuid, b: Uuid) -> ConversationEvent {
    let mut participants = vec![a, b];
    participants.sort();
    ConversationEvent::ConversationStarted {
        conversation_id,
        organization_id: ORG,
        kind: ConversationKind::Direct,
        queue_id: None,
        name: None,
        participants,
        by: Some(a),
    }
}

pub fn assigned(conversation_id: Uuid, agent_id: Uuid, queue_id: Uuid) -> ConversationEvent {
    ConversationEvent::AgentAssigned {
        conversation_id,
        organization_id: ORG,
        queue_id,
        agent_id,
    }
}

/// The conversation followed the transfer `transfer_id` and waits in `queue_id`.
pub fn requeued(conversation_id: Uuid, queue_id: Uuid, transfer_id: Uuid) -> ConversationEvent {
    ConversationEvent::ConversationRequeued {
        conversation_id,
        organization_id: ORG,
        queue_id,
        transfer_id,
    }
}

pub fn ended(conversation_id: Uuid, was_waiting: bool) -> ConversationEvent {
    ConversationEvent::ConversationEnded {
        conversation_id,
        organization_id: ORG,
        queue_id: Some(QUEUE),
        agent_id: None,
        was_waiting,
        reason: domain::conversation::EndReason::Ended,
        by: Author::system(),
        at: None,
    }
}

pub fn attachment(n: u128, size: u64) -> AttachmentRef {
    AttachmentRef {
        attachment_id: id(n),
        name: FileName::parse(format!("file-{n}.png")).expect("a valid test value"),
        size,
        content_type: "image/png".into(),
        sha256: "00".repeat(32),
    }
}

pub fn uploaded(conversation_id: Uuid, attachment: AttachmentRef) -> ConversationEvent {
    ConversationEvent::AttachmentUploaded {
        conversation_id,
        organization_id: ORG,
        attachment,
        by: customer(conversation_id),
    }
}
