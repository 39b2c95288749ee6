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
        /// The address is known to be the person's already (an identity provider vouched for
        /// it): the account is created confirmed.
        #[serde(default)]
        email_confirmed: bool,
    },
    /// The person showed that the address is theirs: they opened a link sent to it (an address
    /// confirmation, a password reset). The link itself is a secret and never reaches the log.
    ConfirmEmail { agent_id: Uuid },
}
