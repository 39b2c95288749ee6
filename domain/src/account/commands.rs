use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{DisplayName, Email};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum AccountCommand {
    /// Sign-up, or accepting an invitation without an account. `agent_id` is
    /// `ids::account_id(secret, &email)` under the deployment's secret.
    CreateAccount {
        agent_id: Uuid,
        email: Email,
        name: DisplayName,
    },
}
