//! Invitations: an operator or owner invites an email with a role, the invited person accepts
//! (and becomes a member) or the inviter's peers withdraw it. Only what is pending is kept.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AcceptingAccount, Organization, OrganizationCommand, OrganizationError, OrganizationEvent as E,
};
use crate::values::{Email, Role};

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitation {
    pub email: Email,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

impl Organization {
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

    /// Decides `command`, one of: `CreateInvitation`, `AcceptInvitation`, `RevokeInvitation`.
    pub(super) async fn handle_invitation(
        &mut self,
        command: OrganizationCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), OrganizationError> {
        use OrganizationCommand as C;
        match command {
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
            _ => unreachable!("`handle` gives `handle_invitation` only the commands above"),
        }
        Ok(())
    }
}
