//! `jono admin create-org`: an organization with an owner invitation, whatever the sign-up
//! setting. Prints the invitation's console link `/invite/TOKEN`.

use chrono::{Duration, Utc};
use domain::organization::{Organization, OrganizationCommand};
use domain::values::{Email, Name, Role};
use store::command::{CommandContext, Commands};
use store::log::EventStore;
use uuid::Uuid;

use super::Failure;
use crate::secrets::{self, InvitationToken};

pub async fn create_org(
    store: &EventStore,
    name: &str,
    owner_email: &str,
) -> Result<String, Failure> {
    let name = Name::parse(name).map_err(|error| Failure(error.to_string()))?;
    let email = Email::parse(owner_email).map_err(|error| Failure(error.to_string()))?;
    let commands = Commands::new(store.clone());
    let ctx = CommandContext {
        actor: Some(serde_json::json!({"kind": "admin"})),
        idempotency: None,
    };
    let organization_id = Uuid::new_v4();
    let id = organization_id.to_string();
    let create = OrganizationCommand::CreateOrganization {
        organization_id,
        name,
        owner_id: None,
    };
    commands
        .execute::<Organization>(&id, create, &(), &ctx)
        .await
        .map_err(|error| Failure(error.to_string()))?;
    let invitation_id = Uuid::new_v4();
    let expires_at = Utc::now() + Duration::days(domain::organization::INVITATION_DAYS);
    let invite = OrganizationCommand::CreateInvitation {
        invitation_id,
        email,
        role: Role::Owner,
        expires_at,
        now: Utc::now(),
        by: None,
    };
    commands
        .execute::<Organization>(&id, invite, &(), &ctx)
        .await
        .map_err(|error| Failure(error.to_string()))?;
    let token = secrets::new_token();
    let record = InvitationToken {
        invitation_id,
        organization_id,
        expires_at,
    };
    secrets::store_invitation_token(store.backend(), &token, &record)
        .await
        .map_err(|error| Failure(format!("cannot store the invitation: {error}")))?;
    Ok(format!("/invite/{token}"))
}
