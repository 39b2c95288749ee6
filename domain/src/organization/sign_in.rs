//! Who may act here and how they sign in: a second factor an owner may require of every member,
//! single sign-on through the organization's OpenID Connect provider, and ending a member's
//! sessions.

use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::{Organization, OrganizationCommand, OrganizationError, OrganizationEvent as E};
use crate::values::Role;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sso {
    pub issuer: String,
    pub client_id: String,
    /// Members sign in through the provider only (owners keep their password).
    pub required: bool,
}

impl Organization {
    /// Decides `command`, one of: `SetTwoFactorRequirement`, `AdmitMember`,
    /// `EndMemberSessions`, `ConfigureSso`, `AdmitPasswordLogin`, `AdmitSso`.
    pub(super) async fn handle_sign_in(
        &mut self,
        command: OrganizationCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), OrganizationError> {
        use OrganizationCommand as C;
        match command {
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
            _ => unreachable!("`handle` gives `handle_sign_in` only the commands above"),
        }
        Ok(())
    }
}
