//! Members' roles: who may change whom (operators manage agents, only owners manage operators
//! and owners), and the last owner stays.

use cqrs_es::event_sink::EventSink;

use super::{Organization, OrganizationCommand, OrganizationError, OrganizationEvent as E};
use crate::values::Role;

impl Organization {
    fn owners(&self) -> usize {
        self.members
            .values()
            .filter(|role| **role == Role::Owner)
            .count()
    }

    /// Decides `command`, one of: `ChangeMemberRole`, `RemoveMember`.
    pub(super) async fn handle_membership(
        &mut self,
        command: OrganizationCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), OrganizationError> {
        use OrganizationCommand as C;
        match command {
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
            _ => unreachable!("`handle` gives `handle_membership` only the commands above"),
        }
        Ok(())
    }
}
