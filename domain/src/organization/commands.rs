use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Email, Name, Role};

/// `by` is the agent who gives the command; `None` is the operator's command line
/// (`jono admin create-org`), which is trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum OrganizationCommand {
    /// Sign-up creates an organization with its owner; `jono admin create-org` creates one
    /// without, and invites the owner.
    CreateOrganization {
        organization_id: Uuid,
        name: Name,
        owner_id: Option<Uuid>,
    },
    /// The token itself is a secret and never reaches the log; `expires_at` is 7 days out.
    CreateInvitation {
        invitation_id: Uuid,
        email: Email,
        role: Role,
        expires_at: DateTime<Utc>,
        by: Option<Uuid>,
    },
    /// `email` is the accepting account's; `now` is the gateway's clock.
    AcceptInvitation {
        invitation_id: Uuid,
        agent_id: Uuid,
        email: Email,
        now: DateTime<Utc>,
    },
    ChangeMemberRole {
        agent_id: Uuid,
        role: Role,
        by: Option<Uuid>,
    },
    RemoveMember {
        agent_id: Uuid,
        by: Option<Uuid>,
    },
}
