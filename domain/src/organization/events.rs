use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{BlockReason, Email, Name, RetentionDays, Role, VisitorKey};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum OrganizationEvent {
    OrganizationCreated {
        organization_id: Uuid,
        name: Name,
        owner_id: Option<Uuid>,
    },
    /// `email` is personal data. The token is not here: it is a secret.
    InvitationCreated {
        organization_id: Uuid,
        invitation_id: Uuid,
        email: Email,
        role: Role,
        expires_at: DateTime<Utc>,
        invited_by: Option<Uuid>,
        /// When it was made: every pending invitation that had expired by then is forgotten
        /// (absent in events written before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_at: Option<DateTime<Utc>>,
    },
    InvitationAccepted {
        organization_id: Uuid,
        invitation_id: Uuid,
        agent_id: Uuid,
    },
    InvitationRevoked {
        organization_id: Uuid,
        invitation_id: Uuid,
        revoked_by: Option<Uuid>,
    },
    MemberAdded {
        organization_id: Uuid,
        agent_id: Uuid,
        role: Role,
    },
    MemberRoleChanged {
        organization_id: Uuid,
        agent_id: Uuid,
        role: Role,
        previous: Role,
    },
    MemberRemoved {
        organization_id: Uuid,
        agent_id: Uuid,
    },
    /// `reason` is the agent's words and may hold personal data; `visitor` is a keyed hash,
    /// never an address.
    CustomerBlocked {
        organization_id: Uuid,
        block_id: Uuid,
        conversation_id: Uuid,
        visitor: Option<VisitorKey>,
        until: DateTime<Utc>,
        reason: Option<BlockReason>,
        blocked_by: Uuid,
        blocked_at: DateTime<Utc>,
    },
    CustomerBlockLifted {
        organization_id: Uuid,
        block_id: Uuid,
        lifted_by: Option<Uuid>,
    },
    TwoFactorRequirementSet {
        organization_id: Uuid,
        required: bool,
        set_by: Option<Uuid>,
    },
    /// Customers' personal data is erased `retention_days` after their conversation ended
    /// (`None`: kept until someone erases it).
    RetentionSet {
        organization_id: Uuid,
        retention_days: Option<RetentionDays>,
        set_by: Option<Uuid>,
    },
    MemberSessionsEnded {
        organization_id: Uuid,
        agent_id: Uuid,
        ended_by: Uuid,
    },
    /// The client secret is not here: it is a secret.
    SsoConfigured {
        organization_id: Uuid,
        issuer: String,
        client_id: String,
        required: bool,
        set_by: Option<Uuid>,
    },
    /// `event_types` in the order of `WEBHOOK_EVENT_TYPES`, without repeats.
    WebhookEndpointAdded {
        organization_id: Uuid,
        endpoint_id: Uuid,
        url: String,
        event_types: Vec<String>,
        added_by: Option<Uuid>,
    },
    WebhookEndpointRemoved {
        organization_id: Uuid,
        endpoint_id: Uuid,
        removed_by: Option<Uuid>,
    },
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::OrganizationCreated { .. } => "OrganizationCreated",
            Self::InvitationCreated { .. } => "InvitationCreated",
            Self::InvitationAccepted { .. } => "InvitationAccepted",
            Self::InvitationRevoked { .. } => "InvitationRevoked",
            Self::MemberAdded { .. } => "MemberAdded",
            Self::MemberRoleChanged { .. } => "MemberRoleChanged",
            Self::MemberRemoved { .. } => "MemberRemoved",
            Self::CustomerBlocked { .. } => "CustomerBlocked",
            Self::CustomerBlockLifted { .. } => "CustomerBlockLifted",
            Self::TwoFactorRequirementSet { .. } => "TwoFactorRequirementSet",
            Self::MemberSessionsEnded { .. } => "MemberSessionsEnded",
            Self::RetentionSet { .. } => "RetentionSet",
            Self::SsoConfigured { .. } => "SsoConfigured",
            Self::WebhookEndpointAdded { .. } => "WebhookEndpointAdded",
            Self::WebhookEndpointRemoved { .. } => "WebhookEndpointRemoved",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
