use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum WorkloadEvent {
    /// Stored with the `CustomerPicked` that gave the agent the conversation, in one append.
    ConversationTaken {
        organization_id: Uuid,
        agent_id: Uuid,
        conversation_id: Uuid,
        queue_id: Uuid,
        at: DateTime<Utc>,
    },
    ConversationReleased {
        organization_id: Uuid,
        agent_id: Uuid,
        conversation_id: Uuid,
    },
}

impl DomainEvent for WorkloadEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ConversationTaken { .. } => "ConversationTaken",
            Self::ConversationReleased { .. } => "ConversationReleased",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
