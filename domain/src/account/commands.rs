use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{DisplayName, Email};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum AccountCommand {
    /// Sign-up, or accepting an invitation without an account. `agent_id` must be
    /// `ids::account_id(&email)`.
    CreateAccount {
        agent_id: Uuid,
        email: Email,
        name: DisplayName,
    },
}
