//! `Organization`: its members with their roles (owner ⊇ operator ⊇ agent) and its invitations.
//! The rules of who may grant what live here, because this stream knows every member's role:
//! operators manage agents, only owners manage operators and owners, and the last owner stays.
//! Operators withdraw invitations not yet accepted. It also holds the organization's running
//! blocks of abusive visitors: any member may block the customer of a conversation, operators
//! lift blocks, and a blocked visitor cannot join. An owner may require a second factor of
//! every member (a member without one is refused until it has one) and end a member's sessions.
//! Operators register the endpoints its events are delivered to (webhooks; the deliveries
//! themselves are the gateway's operational work, not the log's).
//!
//! This file holds the state, its creation, the retention setting, `handle`'s dispatch and
//! `apply`; the other commands are decided by concept: `invitations.rs`, `members.rs` (roles,
//! the last owner), `blocks.rs`, `sign_in.rs` (second factor, single sign-on, sessions) and
//! `webhooks.rs`.

mod blocks;
mod commands;
mod errors;
mod events;
mod invitations;
mod members;
mod sign_in;
mod webhooks;

pub use blocks::{Block, BLOCK_MINUTES};
pub use commands::{AcceptingAccount, OrganizationCommand};
pub use errors::OrganizationError;
pub use events::OrganizationEvent;
pub use invitations::{Invitation, INVITATION_DAYS, RECENT_USED_INVITATIONS};
pub use sign_in::Sso;
pub use webhooks::{WebhookEndpoint, WEBHOOK_ENDPOINTS_MAX, WEBHOOK_EVENT_TYPES, WEBHOOK_URL_MAX};

use std::collections::{BTreeMap, VecDeque};

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Name, RetentionDays, Role};

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

impl Organization {
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

    fn require_created(&self) -> Result<Uuid, OrganizationError> {
        self.id.ok_or(OrganizationError::UnknownOrganization)
    }

    async fn create(
        &mut self,
        organization_id: Uuid,
        name: Name,
        owner_id: Option<Uuid>,
        sink: &EventSink<Self>,
    ) -> Result<(), OrganizationError> {
        use OrganizationEvent as E;
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
        Ok(())
    }

    async fn set_retention(
        &mut self,
        retention_days: Option<RetentionDays>,
        by: Option<Uuid>,
        sink: &EventSink<Self>,
    ) -> Result<(), OrganizationError> {
        let organization_id = self.require_created()?;
        if self.power_of(by)? < Role::Operator {
            return Err(OrganizationError::NotAllowed);
        }
        if self.retention_days != retention_days {
            let event = OrganizationEvent::RetentionSet {
                organization_id,
                retention_days,
                set_by: by,
            };
            sink.write(event, self).await;
        }
        Ok(())
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
        match command {
            C::CreateOrganization {
                organization_id,
                name,
                owner_id,
            } => self.create(organization_id, name, owner_id, sink).await,
            C::SetRetention { retention_days, by } => {
                self.set_retention(retention_days, by, sink).await
            }
            C::CreateInvitation { .. }
            | C::AcceptInvitation { .. }
            | C::RevokeInvitation { .. } => self.handle_invitation(command, sink).await,
            C::ChangeMemberRole { .. } | C::RemoveMember { .. } => {
                self.handle_membership(command, sink).await
            }
            C::BlockCustomer { .. } | C::LiftBlock { .. } | C::AdmitVisitor { .. } => {
                self.handle_block(command, sink).await
            }
            C::SetTwoFactorRequirement { .. }
            | C::AdmitMember { .. }
            | C::EndMemberSessions { .. }
            | C::ConfigureSso { .. }
            | C::AdmitPasswordLogin { .. }
            | C::AdmitSso => self.handle_sign_in(command, sink).await,
            C::AddWebhookEndpoint { .. } | C::RemoveWebhookEndpoint { .. } => {
                self.handle_webhook(command, sink).await
            }
        }
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
