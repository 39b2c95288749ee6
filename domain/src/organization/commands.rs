use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{BlockReason, Email, Name, RetentionDays, Role, VisitorKey};

/// The account that accepts an invitation, as far as its address goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AcceptingAccount {
    /// Created by this very acceptance, by whoever holds the invitation's link (which the
    /// invitation's email carried to the address).
    #[default]
    New,
    /// An account whose address is confirmed (`EmailConfirmed`).
    Confirmed,
    /// An account that exists and has not confirmed its address.
    Unconfirmed,
}

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
    /// The token itself is a secret and never reaches the log; `expires_at` is 7 days out;
    /// `now` is the gateway's clock (the invitations that expired by then are forgotten).
    CreateInvitation {
        invitation_id: Uuid,
        email: Email,
        role: Role,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        by: Option<Uuid>,
    },
    /// `email` is the accepting account's; `now` is the gateway's clock. `account` says what
    /// the gateway knows of the accepting account's address, and `confirmation_required`
    /// whether the deployment asks for confirmed addresses (it sends email): then an account
    /// that exists but never showed its address is its person's may not join, so that whoever
    /// signed up first with someone else's email cannot take that person's invitations.
    AcceptInvitation {
        invitation_id: Uuid,
        agent_id: Uuid,
        email: Email,
        now: DateTime<Utc>,
        #[serde(default)]
        account: AcceptingAccount,
        #[serde(default)]
        confirmation_required: bool,
    },
    /// An invitation not yet accepted is withdrawn: its token stops working.
    RevokeInvitation {
        invitation_id: Uuid,
        by: Option<Uuid>,
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
    /// An agent blocks the customer of `conversation_id` (its token, and `visitor`, the key of
    /// the address it joined from, when known) until `until`; `at` is the gateway's clock.
    BlockCustomer {
        block_id: Uuid,
        conversation_id: Uuid,
        visitor: Option<VisitorKey>,
        until: DateTime<Utc>,
        reason: Option<BlockReason>,
        by: Uuid,
        at: DateTime<Utc>,
    },
    /// An operator lifts a block before it runs out.
    LiftBlock {
        block_id: Uuid,
        by: Option<Uuid>,
        at: DateTime<Utc>,
    },
    /// An owner requires (or stops requiring) two-factor authentication of every member;
    /// `own_two_factor` says whether the owner's account has a second factor (it needs one to
    /// require it: it would lock itself out).
    SetTwoFactorRequirement {
        required: bool,
        by: Option<Uuid>,
        own_two_factor: bool,
    },
    /// An operator sets how long customers' personal data is kept after their conversation
    /// ends (`None`: until erased by hand); the retention duty erases what is older.
    SetRetention {
        retention_days: Option<RetentionDays>,
        by: Option<Uuid>,
    },
    /// Asked before a member acts in the organization (`two_factor`: whether its account has a
    /// second factor): refused while the organization requires one the member lacks. Appends
    /// nothing.
    AdmitMember {
        agent_id: Uuid,
        two_factor: bool,
    },
    /// An owner ends every session of a member (the sessions themselves are secrets kept by the
    /// gateway; the log keeps that it was done, and by whom).
    EndMemberSessions {
        agent_id: Uuid,
        by: Uuid,
    },
    /// An owner sets the organization's OpenID Connect provider (its issuer URL and the client
    /// id Jono has there; the client secret is the gateway's, never in the log) and whether
    /// members must sign in through it.
    ConfigureSso {
        issuer: String,
        client_id: String,
        required: bool,
        by: Option<Uuid>,
    },
    /// Asked before a member signs in with a password: refused while the organization requires
    /// single sign-on, except for owners (their recovery path). Appends nothing.
    AdmitPasswordLogin {
        agent_id: Uuid,
    },
    /// Asked before a single sign-on through the organization's provider: refused unless the
    /// provider is set. Appends nothing.
    AdmitSso,
    /// Asked before a visitor joins one of the organization's queues: refused while a block of
    /// its key runs. Appends nothing.
    AdmitVisitor {
        visitor: VisitorKey,
        at: DateTime<Utc>,
    },
    /// An operator registers an endpoint that receives the organization's events of
    /// `event_types` (names from [`super::WEBHOOK_EVENT_TYPES`]). No secret: deliveries are
    /// signed with the deployment's key, kept by the gateway.
    AddWebhookEndpoint {
        endpoint_id: Uuid,
        url: String,
        event_types: Vec<String>,
        by: Option<Uuid>,
    },
    /// An operator removes an endpoint: nothing more is delivered to it.
    RemoveWebhookEndpoint {
        endpoint_id: Uuid,
        by: Option<Uuid>,
    },
}
