use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Scope;
use crate::values::{CannedKey, CannedText};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum CannedEvent {
    CannedResponseCreated {
        response_id: Uuid,
        scope: Scope,
        key: CannedKey,
        text: CannedText,
        by: Uuid,
    },
    /// The key and text after the change.
    CannedResponseChanged {
        response_id: Uuid,
        scope: Scope,
        key: CannedKey,
        text: CannedText,
        by: Uuid,
    },
    CannedResponseDeleted {
        response_id: Uuid,
        scope: Scope,
        by: Uuid,
    },
}

impl DomainEvent for CannedEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CannedResponseCreated { .. } => "CannedResponseCreated",
            Self::CannedResponseChanged { .. } => "CannedResponseChanged",
            Self::CannedResponseDeleted { .. } => "CannedResponseDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
