//! Tenancy (invariant 8): every route asks here whether its caller may see or do a thing.
//! Anything in an organization the caller is not a member of, and any conversation it may not
//! see, is answered 404 — never revealing that it exists; a member whose role is too low gets
//! 403.

use domain::values::Role;
use projections::queries::{self, Conversation};
use uuid::Uuid;

use crate::auth::{AgentCaller, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// The caller's role in `organization_id`; 404 for a non-member.
pub async fn member(
    state: &AppState,
    agent: &AgentCaller,
    organization_id: Uuid,
) -> Result<Role, ApiError> {
    let role = queries::role_of(state.backend(), organization_id, agent.agent_id).await?;
    role.and_then(|role| Role::parse(&role).ok())
        .ok_or(ApiError::NotFound)
}

/// At least `needed` in `organization_id`: 404 for a non-member, 403 for a lesser role.
pub async fn at_least(
    state: &AppState,
    agent: &AgentCaller,
    organization_id: Uuid,
    needed: Role,
) -> Result<Role, ApiError> {
    let role = member(state, agent, organization_id).await?;
    if role >= needed {
        Ok(role)
    } else {
        Err(ApiError::Forbidden(format!(
            "this needs the {} role",
            needed.as_str()
        )))
    }
}

/// A conversation the caller participates in: its customer, any member of its organization
/// for a customer conversation or a channel, the two agents of a direct chat. 404 otherwise.
pub async fn conversation(
    state: &AppState,
    caller: &Caller,
    conversation_id: Uuid,
) -> Result<Conversation, ApiError> {
    let conversation = queries::conversation(state.backend(), conversation_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    match caller {
        Caller::Customer(customer) if customer.conversation_id == conversation_id => {
            Ok(conversation)
        }
        Caller::Customer(_) => Err(ApiError::NotFound),
        Caller::Agent(agent) => {
            member(state, agent, conversation.organization_id).await?;
            if conversation.kind == "direct" && !conversation.participants.contains(&agent.agent_id)
            {
                return Err(ApiError::NotFound);
            }
            Ok(conversation)
        }
    }
}

/// As `conversation`, for agents only: a customer gets 404 for another conversation and 403
/// for its own (it exists for them, but this is not theirs to do).
pub async fn agent_conversation(
    state: &AppState,
    caller: &Caller,
    conversation_id: Uuid,
) -> Result<(AgentCaller, Conversation), ApiError> {
    let conversation = conversation(state, caller, conversation_id).await?;
    match caller {
        Caller::Agent(agent) => Ok((agent.clone(), conversation)),
        Caller::Customer(_) => Err(ApiError::Forbidden("only agents may do this".into())),
    }
}
