//! `Organization`: its members with their roles (owner ⊇ operator ⊇ agent) and its invitations.
//! The rules of who may grant what live here, because this stream knows every member's role:
//! operators manage agents, only owners manage operators and owners, and the last owner stays.
//! Operators withdraw invitations not yet accepted. It also holds the organization's running
//! blocks of abusive visitors: any member may block the customer of a conversation, operators
//! lift blocks, and a blocked visitor cannot join. An owner may require a second factor of
//! every member (a member without one is refused until it has one) and end a member's sessions.
//! Operators register the endpoints its events are delivered to (webhooks; the deliveries
//! themselves are the gateway's operational work, not the log's).

mod commands;
mod errors;
mod events;

pub use commands::{AcceptingAccount, OrganizationCommand};
pub use errors::OrganizationError;
pub use events::OrganizationEvent;

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Email, Name, RetentionDays, Role, VisitorKey};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Organization {
    pub id: Option<Uuid>,
    pub name: Option<Name>,
    pub members: BTreeMap<Uuid, Role>,
    /// Invitations still pending: an accepted one moves to `used_invitations`, a revoked one
    /// is forgotten, and one that expired unaccepted is forgotten when the next is made.
    pub invitations: BTreeMap<Uuid, Invitation>,
    /// The ids of the latest accepted invitations, oldest first, at most
    /// [`RECENT_USED_INVITATIONS`]: accepting or revoking one of them again is `InvitationUsed`.
    #[serde(default)]
    pub used_invitations: VecDeque<Uuid>,
    /// Blocks that may still run: each is forgotten when a later block finds it ran out, or
    /// when it is lifted, so this holds what is live, not every block ever made.
    pub blocks: BTreeMap<Uuid, Block>,
    /// Members must have two-factor authentication to act here.
    #[serde(default)]
    pub two_factor_required: bool,
    /// Its OpenID Connect provider, when an owner set one.
    #[serde(default)]
    pub sso: Option<Sso>,
    /// Its webhook endpoints, oldest first.
    #[serde(default)]
    pub webhooks: Vec<WebhookEndpoint>,
    /// Days customers' personal data is kept after a conversation ends (`None`: until erased).
    #[serde(default)]
    pub retention_days: Option<RetentionDays>,
}

/// Where the organization's events of some types are delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
}

/// The events an endpoint may receive, by their log names: a customer joined, left (or timed
/// out), was picked or transferred; a message was sent; a conversation was rated or ended.
pub const WEBHOOK_EVENT_TYPES: [&str; 9] = crate::event_types![
    "CustomerJoinedQueue",
    "CustomerLeftQueue",
    "CustomerPicked",
    "ConversationTransferred",
    "MessageSent",
    "ConversationRated",
    "ConversationEnded",
    "MessageLeft",
    "ConversationReopened",
];
/// Endpoints per organization.
pub const WEBHOOK_ENDPOINTS_MAX: usize = 10;
/// The longest endpoint URL, in bytes.
pub const WEBHOOK_URL_MAX: usize = 2000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sso {
    pub issuer: String,
    pub client_id: String,
    /// Members sign in through the provider only (owners keep their password).
    pub required: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Block {
    pub visitor: Option<VisitorKey>,
    pub until: DateTime<Utc>,
}

/// How many accepted invitations an organization remembers as used.
///
/// Invitation ids are made by the gateway (`Uuid::new_v4()`), and the gateway already answers
/// an accepted invitation's token with 404 from its read model; what this stream must still
/// decide is a race — two acceptances of one link at once, or a retry — which comes within
/// moments. An older accepted invitation is answered `UnknownInvitation`: API.md answers a
/// used and an unknown invitation alike (404). Remembering every accepted invitation would
/// make the state, and its snapshot, grow with every member the organization ever had.
pub const RECENT_USED_INVITATIONS: usize = 64;

/// How many days an invitation stays open (API.md: the token lasts 7 days).
pub const INVITATION_DAYS: i64 = 7;

/// The shortest and the longest block.
pub const BLOCK_MINUTES: std::ops::RangeInclusive<i64> = 1..=365 * 24 * 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitation {
    pub email: Email,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

impl Organization {
    fn owners(&self) -> usize {
        self.members
            .values()
            .filter(|role| **role == Role::Owner)
            .count()
    }

    /// The role of the one who gives a command: `None` is the operator's command line, which
    /// may do anything; a member has its role; anyone else is refused.
    fn power_of(&self, by: Option<Uuid>) -> Result<Role, OrganizationError> {
        match by {
            None => Ok(Role::Owner),
            Some(agent) => self
                .members
                .get(&agent)
                .copied()
                .ok_or(OrganizationError::NotAMember),
        }
    }

    /// A pending invitation; one accepted lately is `InvitationUsed`, any other `Unknown`.
    fn pending_invitation(&self, invitation_id: Uuid) -> Result<Invitation, OrganizationError> {
        match self.invitations.get(&invitation_id) {
            Some(invitation) => Ok(invitation.clone()),
            None if self.used_invitations.contains(&invitation_id) => {
                Err(OrganizationError::InvitationUsed)
            }
            None => Err(OrganizationError::UnknownInvitation),
        }
    }

    fn require_created(&self) -> Result<Uuid, OrganizationError> {
        self.id.ok_or(OrganizationError::UnknownOrganization)
    }

    /// The latest end of a block of `visitor` still running at `at`.
    pub fn blocked_until(&self, visitor: &VisitorKey, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.blocks
            .values()
            .filter(|block| block.visitor.as_ref() == Some(visitor) && block.until > at)
            .map(|block| block.until)
            .max()
    }
}

impl crate::Snapshot for Organization {
    /// 2: `invitations` holds pending ones only; the latest accepted in `used_invitations`.
    const SNAPSHOT_VERSION: u32 = 2;
}

impl Aggregate for Organization {
    const TYPE: &'static str = "organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = OrganizationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use OrganizationCommand as C;
        use OrganizationEvent as E;
        match command {
            C::CreateOrganization {
                organization_id,
                name,
                owner_id,
            } => {
                if self.id.is_some() {
                    return Err(OrganizationError::AlreadyCreated);
                }
                sink.write(
                    E::OrganizationCreated {
                        organization_id,
                        name,
                        owner_id,
                    },
                    self,
                )
                .await;
                if let Some(agent_id) = owner_id {
                    let role = Role::Owner;
                    sink.write(
                        E::MemberAdded {
                            organization_id,
                            agent_id,
                            role,
                        },
                        self,
                    )
                    .await;
                }
            }
            C::CreateInvitation {
                invitation_id,
                email,
                role,
                expires_at,
                now,
                by,
            } => {
                let organization_id = self.require_created()?;
                if !self.power_of(by)?.may_manage(role) {
                    return Err(OrganizationError::NotAllowed);
                }
                if self.invitations.contains_key(&invitation_id)
                    || self.used_invitations.contains(&invitation_id)
                {
                    return Err(OrganizationError::InvitationExists);
                }
                let event = E::InvitationCreated {
                    organization_id,
                    invitation_id,
                    email,
                    role,
                    expires_at,
                    invited_by: by,
                    created_at: Some(now),
                };
                sink.write(event, self).await;
            }
            C::AcceptInvitation {
                invitation_id,
                agent_id,
                email,
                now,
                account,
                confirmation_required,
            } => {
                let organization_id = self.require_created()?;
                let invitation = self.pending_invitation(invitation_id)?;
                if invitation.expires_at <= now {
                    return Err(OrganizationError::InvitationExpired);
                }
                if invitation.email != email {
                    return Err(OrganizationError::InvitationOfAnotherEmail);
                }
                if self.members.contains_key(&agent_id) {
                    return Err(OrganizationError::AlreadyMember);
                }
                if confirmation_required && account == AcceptingAccount::Unconfirmed {
                    return Err(OrganizationError::EmailNotConfirmed);
                }
                let role = invitation.role;
                let accepted = E::InvitationAccepted {
                    organization_id,
                    invitation_id,
                    agent_id,
                };
                sink.write(accepted, self).await;
                sink.write(
                    E::MemberAdded {
                        organization_id,
                        agent_id,
                        role,
                    },
                    self,
                )
                .await;
            }
            C::RevokeInvitation { invitation_id, by } => {
                let organization_id = self.require_created()?;
                let invitation = self.pending_invitation(invitation_id)?;
                if !self.power_of(by)?.may_manage(invitation.role) {
                    return Err(OrganizationError::NotAllowed);
                }
                let event = E::InvitationRevoked {
                    organization_id,
                    invitation_id,
                    revoked_by: by,
                };
                sink.write(event, self).await;
            }
            C::ChangeMemberRole { agent_id, role, by } => {
                let organization_id = self.require_created()?;
                let power = self.power_of(by)?;
                let current = *self
                    .members
                    .get(&agent_id)
                    .ok_or(OrganizationError::UnknownMember)?;
                if !power.may_manage(current) || !power.may_manage(role) {
                    return Err(OrganizationError::NotAllowed);
                }
                if current == role {
                    return Ok(());
                }
                if current == Role::Owner && self.owners() == 1 {
                    return Err(OrganizationError::LastOwner);
                }
                let event = E::MemberRoleChanged {
                    organization_id,
                    agent_id,
                    role,
                    previous: current,
                };
                sink.write(event, self).await;
            }
            C::RemoveMember { agent_id, by } => {
                let organization_id = self.require_created()?;
                let power = self.power_of(by)?;
                let current = *self
                    .members
                    .get(&agent_id)
                    .ok_or(OrganizationError::UnknownMember)?;
                if !power.may_manage(current) {
                    return Err(OrganizationError::NotAllowed);
                }
                if current == Role::Owner && self.owners() == 1 {
                    return Err(OrganizationError::LastOwner);
                }
                sink.write(
                    E::MemberRemoved {
                        organization_id,
                        agent_id,
                    },
                    self,
                )
                .await;
            }
            C::BlockCustomer {
                block_id,
                conversation_id,
                visitor,
                until,
                reason,
                by,
                at,
            } => {
                let organization_id = self.require_created()?;
                self.power_of(Some(by))?;
                let minutes = (until - at).num_minutes();
                if !BLOCK_MINUTES.contains(&minutes) {
                    return Err(OrganizationError::BlockLength);
                }
                if self.blocks.contains_key(&block_id) {
                    return Err(OrganizationError::BlockExists);
                }
                let event = E::CustomerBlocked {
                    organization_id,
                    block_id,
                    conversation_id,
                    visitor,
                    until,
                    reason,
                    blocked_by: by,
                    blocked_at: at,
                };
                sink.write(event, self).await;
            }
            C::LiftBlock { block_id, by, at } => {
                let organization_id = self.require_created()?;
                if self.power_of(by)? < Role::Operator {
                    return Err(OrganizationError::NotAllowed);
                }
                let block = self
                    .blocks
                    .get(&block_id)
                    .ok_or(OrganizationError::UnknownBlock)?;
                if block.until <= at {
                    return Err(OrganizationError::BlockEnded);
                }
                let event = E::CustomerBlockLifted {
                    organization_id,
                    block_id,
                    lifted_by: by,
                };
                sink.write(event, self).await;
            }
            C::SetTwoFactorRequirement {
                required,
                by,
                own_two_factor,
            } => {
                let organization_id = self.require_created()?;
                if self.power_of(by)? < Role::Owner {
                    return Err(OrganizationError::NotAllowed);
                }
                if required && by.is_some() && !own_two_factor {
                    return Err(OrganizationError::TwoFactorFirst);
                }
                if self.two_factor_required != required {
                    let event = E::TwoFactorRequirementSet {
                        organization_id,
                        required,
                        set_by: by,
                    };
                    sink.write(event, self).await;
                }
            }
            C::SetRetention { retention_days, by } => {
                let organization_id = self.require_created()?;
                if self.power_of(by)? < Role::Operator {
                    return Err(OrganizationError::NotAllowed);
                }
                if self.retention_days != retention_days {
                    let event = E::RetentionSet {
                        organization_id,
                        retention_days,
                        set_by: by,
                    };
                    sink.write(event, self).await;
                }
            }
            C::AdmitMember {
                agent_id,
                two_factor,
            } => {
                self.require_created()?;
                self.power_of(Some(agent_id))?;
                if self.two_factor_required && !two_factor {
                    return Err(OrganizationError::TwoFactorRequired);
                }
            }
            C::EndMemberSessions { agent_id, by } => {
                let organization_id = self.require_created()?;
                if self.power_of(Some(by))? < Role::Owner {
                    return Err(OrganizationError::NotAllowed);
                }
                if !self.members.contains_key(&agent_id) {
                    return Err(OrganizationError::UnknownMember);
                }
                let event = E::MemberSessionsEnded {
                    organization_id,
                    agent_id,
                    ended_by: by,
                };
                sink.write(event, self).await;
            }
            C::ConfigureSso {
                issuer,
                client_id,
                required,
                by,
            } => {
                let organization_id = self.require_created()?;
                if self.power_of(by)? < Role::Owner {
                    return Err(OrganizationError::NotAllowed);
                }
                let issuer = issuer.trim().trim_end_matches('/').to_owned();
                let client_id = client_id.trim().to_owned();
                let url = issuer.starts_with("https://") || issuer.starts_with("http://");
                if !url || client_id.is_empty() || issuer.len() > 500 || client_id.len() > 500 {
                    return Err(OrganizationError::SsoSettings);
                }
                let event = E::SsoConfigured {
                    organization_id,
                    issuer,
                    client_id,
                    required,
                    set_by: by,
                };
                sink.write(event, self).await;
            }
            C::AddWebhookEndpoint {
                endpoint_id,
                url,
                event_types,
                by,
            } => {
                let organization_id = self.require_created()?;
                if self.power_of(by)? < Role::Operator {
                    return Err(OrganizationError::NotAllowed);
                }
                let url = url.trim().to_owned();
                let lower = url.to_ascii_lowercase();
                let http = lower.starts_with("https://") || lower.starts_with("http://");
                let chosen: Vec<String> = WEBHOOK_EVENT_TYPES
                    .iter()
                    .filter(|known| event_types.iter().any(|asked| asked == *known))
                    .map(|known| (*known).to_owned())
                    .collect();
                let unknown = event_types
                    .iter()
                    .any(|asked| !WEBHOOK_EVENT_TYPES.contains(&asked.as_str()));
                if !http
                    || url.len() > WEBHOOK_URL_MAX
                    || url.chars().any(char::is_whitespace)
                    || chosen.is_empty()
                    || unknown
                {
                    return Err(OrganizationError::WebhookSettings);
                }
                if self
                    .webhooks
                    .iter()
                    .any(|endpoint| endpoint.id == endpoint_id || endpoint.url == url)
                {
                    return Err(OrganizationError::WebhookExists);
                }
                if self.webhooks.len() >= WEBHOOK_ENDPOINTS_MAX {
                    return Err(OrganizationError::TooManyWebhooks);
                }
                let event = E::WebhookEndpointAdded {
                    organization_id,
                    endpoint_id,
                    url,
                    event_types: chosen,
                    added_by: by,
                };
                sink.write(event, self).await;
            }
            C::RemoveWebhookEndpoint { endpoint_id, by } => {
                let organization_id = self.require_created()?;
                if self.power_of(by)? < Role::Operator {
                    return Err(OrganizationError::NotAllowed);
                }
                if !self
                    .webhooks
                    .iter()
                    .any(|endpoint| endpoint.id == endpoint_id)
                {
                    return Err(OrganizationError::UnknownWebhook);
                }
                let event = E::WebhookEndpointRemoved {
                    organization_id,
                    endpoint_id,
                    removed_by: by,
                };
                sink.write(event, self).await;
            }
            C::AdmitPasswordLogin { agent_id } => {
                self.require_created()?;
                let role = self.power_of(Some(agent_id))?;
                let required = self.sso.as_ref().is_some_and(|sso| sso.required);
                if required && role < Role::Owner {
                    return Err(OrganizationError::SsoRequired);
                }
            }
            C::AdmitSso => {
                self.require_created()?;
                if self.sso.is_none() {
                    return Err(OrganizationError::SsoNotConfigured);
                }
            }
            C::AdmitVisitor { visitor, at } => {
                self.require_created()?;
                if let Some(until) = self.blocked_until(&visitor, at) {
                    return Err(OrganizationError::VisitorBlocked { until });
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use OrganizationEvent as E;
        match event {
            E::OrganizationCreated {
                organization_id,
                name,
                ..
            } => {
                self.id = Some(organization_id);
                self.name = Some(name);
            }
            E::InvitationCreated {
                invitation_id,
                email,
                role,
                expires_at,
                created_at,
                ..
            } => {
                // What expired unaccepted by now is forgotten (accepting it is 404 either
                // way), so the state holds the invitations that may still be accepted.
                if let Some(now) = created_at {
                    self.invitations
                        .retain(|_, pending| pending.expires_at > now);
                }
                let invitation = Invitation {
                    email,
                    role,
                    expires_at,
                };
                self.invitations.insert(invitation_id, invitation);
            }
            // An accepted invitation is no longer pending: only its id is kept, for a while.
            E::InvitationAccepted { invitation_id, .. } => {
                self.invitations.remove(&invitation_id);
                if self.used_invitations.len() == RECENT_USED_INVITATIONS {
                    self.used_invitations.pop_front();
                }
                self.used_invitations.push_back(invitation_id);
            }
            // A revoked invitation is forgotten: accepting it finds no invitation.
            E::InvitationRevoked { invitation_id, .. } => {
                self.invitations.remove(&invitation_id);
            }
            E::MemberAdded { agent_id, role, .. } | E::MemberRoleChanged { agent_id, role, .. } => {
                self.members.insert(agent_id, role);
            }
            E::MemberRemoved { agent_id, .. } => {
                self.members.remove(&agent_id);
            }
            E::CustomerBlocked {
                block_id,
                visitor,
                until,
                blocked_at,
                ..
            } => {
                self.blocks.retain(|_, block| block.until > blocked_at);
                self.blocks.insert(block_id, Block { visitor, until });
            }
            E::CustomerBlockLifted { block_id, .. } => {
                self.blocks.remove(&block_id);
            }
            E::TwoFactorRequirementSet { required, .. } => {
                self.two_factor_required = required;
            }
            E::RetentionSet { retention_days, .. } => {
                self.retention_days = retention_days;
            }
            E::MemberSessionsEnded { .. } => {}
            E::SsoConfigured {
                issuer,
                client_id,
                required,
                ..
            } => {
                self.sso = Some(Sso {
                    issuer,
                    client_id,
                    required,
                });
            }
            E::WebhookEndpointAdded {
                endpoint_id,
                url,
                event_types,
                ..
            } => {
                self.webhooks.push(WebhookEndpoint {
                    id: endpoint_id,
                    url,
                    event_types,
                });
            }
            E::WebhookEndpointRemoved { endpoint_id, .. } => {
                self.webhooks.retain(|endpoint| endpoint.id != endpoint_id);
            }
        }
    }
}
