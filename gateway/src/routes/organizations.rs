//! Organizations: invitations (and accepting them), members and their roles.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use domain::organization::{AcceptingAccount, Organization, OrganizationCommand};
use domain::values::{DisplayName, Email, Password, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access;
use crate::auth::{AgentCaller, Caller, MaybeCaller};
use crate::client::DeviceOf;
use crate::consistency;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body, PageQuery, Params};
use crate::idempotency::IdempotencyKey;
use crate::live::CloseOrder;
use crate::mail::{self, Mail};
use crate::openapi::{Route, Routes};
use crate::routes::accounts::{create_account, find_account};
use crate::routes::wire;
use crate::secrets::{self, InvitationToken};
use crate::state::AppState;
use crate::workflow::{self, context};

pub fn routes() -> Routes {
    Routes::new("organizations")
        .route(
            Route::post("/v1/orgs/{org}/invitations", invite)
                .id("invite")
                .summary("Invite someone")
                .describe("Operators; owners for the roles operator and owner.")
                .body::<Invite>()
                .returns::<InvitationCreated>(
                    201,
                    "The invitation and its token (7 days); with email set up, the link is also \
                     sent to the address (`emailed`).",
                ),
        )
        .route(
            Route::get("/v1/orgs/{org}/invitations", pending_invitations)
                .id("invitations")
                .summary("The invitations still open")
                .describe(
                    "Operators. Neither accepted, withdrawn nor expired, oldest first; never the \
                     token.",
                )
                .paged("the last invitation's `invitation_id`")
                .returns::<Vec<InvitationView>>(200, "A page of invitations."),
        )
        .route(
            Route::delete("/v1/orgs/{org}/invitations/{invitation}", revoke_invitation)
                .id("revokeInvitation")
                .summary("Withdraw an invitation")
                .describe(
                    "Operators; owners for an operator's or an owner's invitation. Its token \
                     stops working at once. 404 for an unknown, accepted or withdrawn invitation.",
                )
                .no_content("Withdrawn."),
        )
        .route(
            Route::post("/v1/invitations/{token}/accept", accept)
                .id("acceptInvitation")
                .summary("Accept an invitation")
                .optional_token()
                .describe(
                    "`{name, password}` for a new account. For an email that has an account: that \
                     account's bearer token and an empty body (401 without one, 403 with another \
                     account's; with email set up, 403 too while the account has not confirmed \
                     its address). 404 for an unknown, used or expired token.",
                )
                .optional_body::<Accept>()
                .returns::<InvitationAccepted>(201, "A member of the organization, with a token."),
        )
        .route(
            Route::get("/v1/orgs/{org}/members", members)
                .id("members")
                .summary("The organization's members")
                .paged("the last member's `agent_id`")
                .returns::<Vec<Member>>(200, "Its members."),
        )
        .route(
            Route::put("/v1/orgs/{org}/members/{agent}", change_role)
                .id("changeRole")
                .summary("Change a member's role")
                .describe("Operators; owners for the roles operator and owner.")
                .body::<ChangeRole>()
                .returns::<Member>(200, "The member."),
        )
        .route(
            Route::delete("/v1/orgs/{org}/members/{agent}", remove_member)
                .id("removeMember")
                .summary("Remove a member")
                .describe(
                    "The agent's access ends at once, its WebSockets included. The last owner \
                     cannot be removed (409).",
                )
                .no_content("Removed."),
        )
}

/// An invitation still open, as `GET /v1/orgs/{org}/invitations` lists it (the token is a
/// secret: it is shown once, when the invitation is made).
#[derive(Debug, Serialize, JsonSchema)]
pub struct InvitationView {
    pub invitation_id: uuid::Uuid,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    /// Who invited; `null` for the operator's command line.
    pub invited_by: Option<uuid::Uuid>,
}

/// Operators: the invitations neither accepted, withdrawn nor expired, oldest first.
async fn pending_invitations(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    Params(page): Params<PageQuery>,
) -> Result<Json<Vec<InvitationView>>, ApiError> {
    let organization_id = path_id(&org)?;
    let page = page.parse::<uuid::Uuid>()?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let pending = projections::directory::read::pending_invitations(
        state.backend(),
        organization_id,
        Utc::now(),
    )
    .await?;
    let views = page
        .of(pending, |invitation| invitation.id)
        .into_iter()
        .map(|invitation| InvitationView {
            invitation_id: invitation.id,
            role: invitation.role,
            email: invitation.email,
            expires_at: invitation.expires_at,
            invited_by: invitation.invited_by,
        })
        .collect();
    Ok(Json(views))
}

/// Operators (owners for an operator's or an owner's invitation; the organization decides):
/// the invitation's token stops working at once.
async fn revoke_invitation(
    State(state): State<AppState>,
    Path((org, invitation)): Path<(String, String)>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    let organization_id = path_id(&org)?;
    let invitation_id = path_id(&invitation)?;
    access::member(&state, &agent, organization_id).await?;
    let revoke = OrganizationCommand::RevokeInvitation {
        invitation_id,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    workflow::run::<Organization>(&state, organization_id, revoke, &ctx).await?;
    secrets::delete_invitation_tokens(state.backend(), invitation_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// `POST /v1/orgs/{org}/invitations`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "InvitationRequest")]
pub struct Invite {
    #[schemars(email)]
    pub email: String,
    // Read as text so that an unknown role is the domain's own 422.
    #[schemars(with = "Role")]
    pub role: String,
}

#[derive(Serialize, JsonSchema)]
pub struct InvitationCreated {
    pub invitation_id: Uuid,
    /// Good for 7 days; handed over out of band, e.g. as the console link `/invite/TOKEN`.
    pub token: String,
    // In whole seconds, as it always was.
    #[serde(serialize_with = "wire::seconds")]
    pub expires_at: DateTime<Utc>,
    /// Whether the link was sent to the invited address too (the deployment sends email).
    pub emailed: bool,
}

async fn invite(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<Invite>,
) -> Result<impl IntoResponse, ApiError> {
    let organization_id = path_id(&org)?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let email = Email::parse(&body.email).map_err(invalid)?;
    let role = Role::parse(&body.role).map_err(invalid)?;
    let invitation_id = uuid::Uuid::new_v4();
    let expires_at = Utc::now() + chrono::Duration::days(domain::organization::INVITATION_DAYS);
    let invite = OrganizationCommand::CreateInvitation {
        invitation_id,
        email: email.clone(),
        role,
        expires_at,
        now: Utc::now(),
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    workflow::run::<Organization>(&state, organization_id, invite, &ctx).await?;
    let token = secrets::new_token();
    let record = InvitationToken {
        invitation_id,
        organization_id,
        expires_at,
    };
    secrets::store_invitation_token(state.backend(), &token, &record).await?;
    // With email set up the link goes to the address too (the token stays out of the log: it
    // is in the outbox's row only until the message is delivered).
    let emailed = match &state.settings.mail {
        Some(mailer) => {
            let organization =
                projections::directory::read::organization(state.backend(), organization_id)
                    .await?
                    .map_or_else(String::new, |organization| organization.name);
            let mail = Mail::Invitation {
                organization,
                role: role.as_str().to_owned(),
                link: mailer.link(&format!("/invite/{token}")),
                expires_at,
            };
            mail::queue(&state, mailer, email.as_str(), &mail).await?;
            true
        }
        None => false,
    };
    Ok((
        StatusCode::CREATED,
        Json(InvitationCreated {
            invitation_id,
            token,
            expires_at,
            emailed,
        }),
    ))
}

/// `{name, password}` for a new account; an empty body (`{}`) with the bearer token of the
/// account that has the invitation's email.
#[derive(Deserialize, Default, JsonSchema)]
#[schemars(rename = "AcceptInvitationRequest")]
pub struct Accept {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 10))]
    pub password: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct InvitationAccepted {
    pub agent_id: Uuid,
    pub organization_id: Uuid,
    /// An agent token.
    pub token: String,
}

/// A new person accepts with `{name, password}` and gets an account; someone who has one
/// accepts with its bearer token and an empty body.
async fn accept(
    State(state): State<AppState>,
    Path(token): Path<String>,
    MaybeCaller(caller): MaybeCaller,
    DeviceOf(device): DeviceOf,
    Body(body): Body<Accept>,
) -> Result<impl IntoResponse, ApiError> {
    // The invitation and the accounts are read as they are now (made or accepted a moment
    // ago by another caller).
    consistency::catch_up(&state).await?;
    let record = secrets::find_invitation_token(state.backend(), &token)
        .await?
        .ok_or(ApiError::NotFound)?;
    let now = Utc::now();
    if record.expires_at <= now {
        return Err(ApiError::NotFound);
    }
    let invitation =
        projections::directory::read::invitation(state.backend(), record.invitation_id)
            .await?
            .ok_or(ApiError::NotFound)?;
    if invitation.accepted {
        return Err(ApiError::NotFound);
    }
    let email =
        Email::parse(&invitation.email).map_err(|error| ApiError::Internal(error.to_string()))?;
    let organization_id = record.organization_id;
    let mut accepting = AcceptingAccount::New;
    let agent_id = match (caller, body.name, body.password) {
        (Some(Caller::Agent(agent)), None, None) => {
            let account = projections::directory::read::account(state.backend(), agent.agent_id)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            if account.email != email.as_str() {
                return Err(ApiError::Forbidden(
                    "this invitation is for another email address".into(),
                ));
            }
            let confirmed = crate::routes::email::email_confirmed(&state, agent.agent_id).await?;
            accepting = if confirmed {
                AcceptingAccount::Confirmed
            } else {
                AcceptingAccount::Unconfirmed
            };
            agent.agent_id
        }
        (Some(Caller::Customer(_)), None, None) => {
            return Err(ApiError::Forbidden("this needs an agent's token".into()))
        }
        (caller, Some(name), Some(password)) => {
            let name = DisplayName::parse(name).map_err(invalid)?;
            let password = Password::parse(password).map_err(invalid)?;
            if let Some((invited, _)) = find_account(&state, &email).await? {
                // An existing account accepts with its own token (API.md: 401 without one,
                // 403 with another account's).
                return Err(match caller {
                    None => ApiError::Unauthorized,
                    Some(Caller::Agent(agent)) if agent.agent_id == invited => ApiError::Conflict(
                        "this account exists: accept with its token and an empty body".into(),
                    ),
                    Some(_) => {
                        ApiError::Forbidden("this invitation is for another email address".into())
                    }
                });
            }
            let name_text = name.as_str().to_owned();
            let agent_id = create_account(&state, &email, name, password).await?;
            // Its address is still to be confirmed for any later invitation: holding this
            // link shows the address only to the inviter's word (who is shown the token too).
            crate::routes::email::send_confirmation(&state, agent_id, &email, &name_text).await?;
            agent_id
        }
        (None, None, None) => return Err(ApiError::Unauthorized),
        _ => {
            return Err(ApiError::BadRequest(
                "send {name, password}, or an empty body with your token".into(),
            ))
        }
    };
    let accept = OrganizationCommand::AcceptInvitation {
        invitation_id: record.invitation_id,
        agent_id,
        email,
        now,
        account: accepting,
        confirmation_required: state.settings.mail.is_some(),
    };
    workflow::run::<Organization>(&state, organization_id, accept, &context(None, None)).await?;
    // A session for the organization's new member (an existing account gets a fresh one too).
    let token = secrets::issue_agent_token(state.backend(), agent_id, &device, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(InvitationAccepted {
            agent_id,
            organization_id,
            token,
        }),
    ))
}

/// Presence as teammates see it.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    Online,
    Away,
    Offline,
}

#[derive(Serialize, JsonSchema)]
pub struct Member {
    pub agent_id: Uuid,
    pub name: String,
    pub role: Role,
    /// Whether the agent is present: it has a WebSocket open, or declared its status with
    /// `PUT /v1/me/status` in the last five minutes.
    pub online: bool,
    pub status: PresenceStatus,
}

impl Member {
    /// The read model's member with its presence (`presence::statuses`).
    fn new(
        member: projections::directory::read::Member,
        (online, status): (bool, &'static str),
    ) -> Result<Self, ApiError> {
        Ok(Self {
            agent_id: member.agent_id,
            name: member.name,
            role: member.role,
            online,
            status: wire::parse(status)?,
        })
    }
}

/// A page of the organization's members, in the order they joined; the cursor is the last
/// member's `agent_id`.
async fn members(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    Params(page): Params<PageQuery>,
) -> Result<Json<Vec<Member>>, ApiError> {
    let organization_id = path_id(&org)?;
    let page = page.parse::<uuid::Uuid>()?;
    access::member(&state, &agent, organization_id).await?;
    let members = projections::directory::read::members(state.backend(), organization_id).await?;
    let members = page.of(members, |member| member.agent_id);
    let ids: Vec<uuid::Uuid> = members.iter().map(|member| member.agent_id).collect();
    let statuses = crate::presence::statuses(&state, &ids).await?;
    let members = members
        .into_iter()
        .map(|member| {
            let presence = statuses
                .get(&member.agent_id)
                .copied()
                .unwrap_or((false, "offline"));
            Member::new(member, presence)
        })
        .collect::<Result<_, _>>()?;
    Ok(Json(members))
}

// `PUT /v1/orgs/{org}/members/{agent}`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "ChangeRoleRequest")]
pub struct ChangeRole {
    // Read as text so that an unknown role is the domain's own 422.
    #[schemars(with = "Role")]
    pub role: String,
}

async fn change_role(
    State(state): State<AppState>,
    Path((org, target)): Path<(String, String)>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<ChangeRole>,
) -> Result<impl IntoResponse, ApiError> {
    let organization_id = path_id(&org)?;
    let target = path_id(&target)?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let role = Role::parse(&body.role).map_err(invalid)?;
    let change = OrganizationCommand::ChangeMemberRole {
        agent_id: target,
        role,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    let executed = workflow::run::<Organization>(
        &state,
        organization_id,
        change,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    // The answer shows the new role: it waits for the read model to have it.
    state
        .wait_for_read_models(workflow::last_position(&executed))
        .await;
    let member = projections::directory::read::members(state.backend(), organization_id)
        .await?
        .into_iter()
        .find(|member| member.agent_id == target)
        .ok_or(ApiError::NotFound)?;
    let presence = crate::presence::statuses(&state, &[member.agent_id])
        .await?
        .get(&member.agent_id)
        .copied()
        .unwrap_or((false, "offline"));
    Ok(Json(Member::new(member, presence)?))
}

async fn remove_member(
    State(state): State<AppState>,
    Path((org, target)): Path<(String, String)>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    let organization_id = path_id(&org)?;
    let target = path_id(&target)?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let remove = OrganizationCommand::RemoveMember {
        agent_id: target,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    workflow::run::<Organization>(
        &state,
        organization_id,
        remove,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    // Its sockets end this organization's subscriptions at once (and close, if it was its
    // last organization: its tokens end with it); the others go on.
    state.live.close(CloseOrder::Recheck { agent_id: target });
    Ok(StatusCode::NO_CONTENT)
}
