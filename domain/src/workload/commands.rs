use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::Limit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum WorkloadCommand {
    /// The agent takes `conversation_id` (picked, or an offer accepted, in `queue_id`), if it
    /// has fewer than `capacity` (the queue's `capacity_per_agent`) open.
    Take {
        organization_id: Uuid,
        agent_id: Uuid,
        conversation_id: Uuid,
        queue_id: Uuid,
        capacity: Option<Limit>,
        at: DateTime<Utc>,
    },
    /// The conversation ended, or left the agent by a transfer.
    Release {
        organization_id: Uuid,
        agent_id: Uuid,
        conversation_id: Uuid,
    },
}
