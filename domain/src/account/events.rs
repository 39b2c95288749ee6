use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{DisplayName, Email};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum AccountEvent {
    /// `email` and `name` are personal data.
    AccountCreated {
        agent_id: Uuid,
        email: Email,
        name: DisplayName,
    },
    /// The account's address is the person's: a link sent to it was opened, or an identity
    /// provider vouched for it. With email set up, only such an account accepts invitations.
    EmailConfirmed { agent_id: Uuid },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountCreated { .. } => "AccountCreated",
            Self::EmailConfirmed { .. } => "EmailConfirmed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
