//! Tenancy (invariant 8): every route asks here whether its caller may see or do a thing.
//! Anything in an organization the caller is not a member of, and any conversation it may not
//! see, is answered 404 — never revealing that it exists; a member whose role is too low gets
//! 403.
//!
//! The answers come from the read models, which may lag the log (`consistency`): a yes waits
//! for the last change of the organization's members and roles, so a removed member or a
//! lowered role is refused at once; a no is checked again at the log's position, so what was
//! made a moment ago (a conversation, a membership) is found. An agent's standings in all its
//! organizations are read once per request, when its token is checked ([`standings`]), and
//! that request's checks answer from them: one read and one position per request, not two more
//! per check.
//!
//! A member of an organization that requires two-factor authentication acts there only with a
//! second factor: the organization decides (`OrganizationCommand::AdmitMember`), asked when the
//! read model says the organization requires one and the account has none.

use std::sync::Arc;

use cqrs_es::Aggregate;
use domain::conversation::ConversationKind;
use domain::organization::{Organization, OrganizationCommand};
use domain::values::Role;
use projections::conversations::read::Conversation;
use projections::directory::read::{AgentSession, Standing};
use uuid::Uuid;

use crate::auth::{AgentCaller, Caller};
use crate::consistency;
use crate::error::ApiError;
use crate::second_factor;
use crate::state::AppState;
use crate::workflow::{self, context};

/// An agent's standing in each of its organizations, as its request saw them when it was
/// authenticated ([`standings`]): that request's access checks answer from them.
#[derive(Debug, Clone, Default)]
pub struct Standings(Arc<[(Uuid, Standing)]>);

impl Standings {
    fn of(&self, organization_id: Uuid) -> Option<Standing> {
        self.0
            .iter()
            .find(|(id, _)| *id == organization_id)
            .map(|(_, standing)| *standing)
    }
}

/// The caller's role in `organization_id`; 404 for a non-member. From the standings its
/// request read when it was authenticated, which had every change of the organization answered
/// before then; otherwise (an organization it was not known to be in, a caller kept beyond its
/// request) read again, once the read models show the organization's last change.
pub async fn member(
    state: &AppState,
    agent: &AgentCaller,
    organization_id: Uuid,
) -> Result<Role, ApiError> {
    let standing = match agent.standings.of(organization_id) {
        Some(standing) => standing,
        None => {
            consistency::wait_for_stream(state, Organization::TYPE, &organization_id.to_string())
                .await?;
            consistency::found(state, || async {
                Ok(standings_of(state, agent.agent_id)
                    .await?
                    .of(organization_id))
            })
            .await?
            .ok_or(ApiError::NotFound)?
        }
    };
    if standing.two_factor_required {
        admit(state, agent.agent_id, organization_id).await?;
    }
    Ok(standing.role)
}

async fn standings_of(state: &AppState, agent_id: Uuid) -> Result<Standings, ApiError> {
    let standings = projections::directory::read::standings_of(state.backend(), agent_id).await?;
    Ok(Standings(standings.into()))
}

/// 403 saying what to do for a member without a second factor in an organization that
/// requires one.
async fn admit(state: &AppState, agent_id: Uuid, organization_id: Uuid) -> Result<(), ApiError> {
    if second_factor::enabled(state.backend(), agent_id).await? {
        return Ok(());
    }
    let admit = OrganizationCommand::AdmitMember {
        agent_id,
        two_factor: false,
    };
    workflow::run::<Organization>(state, organization_id, admit, &context(None, None)).await?;
    Ok(())
}

/// The agent's standing in each of its organizations, from its session as `authenticate`
/// read it after the read models had reached `reached`; `None` when it belongs to none (its
/// token works only while it does). A no is asked again once the read models have reached the
/// log's position (a membership accepted a moment ago); a yes stands once they show the last
/// change of each of those organizations' members and roles (a removal from the last one ends
/// the token at once, a lowered role counts on the next request).
pub async fn standings(
    state: &AppState,
    reached: i64,
    session: AgentSession,
) -> Result<Option<Standings>, ApiError> {
    let agent_id = session.token.agent_id;
    if session.standings.is_empty() {
        // Read again after the read models reached the log's position: they show every
        // change of every organization answered before this request.
        consistency::catch_up(state).await?;
        let again = standings_of(state, agent_id).await?;
        return Ok((!again.0.is_empty()).then_some(again));
    }
    if session.organizations_changed <= reached {
        // Read after the read models had those changes already: the standings stand.
        return Ok(Some(Standings(session.standings.into())));
    }
    state
        .wait_for_read_models(session.organizations_changed)
        .await;
    let again = standings_of(state, agent_id).await?;
    // Only the organizations whose last change was waited for; one the agent joined meanwhile
    // is read again by the check that asks about it.
    let checked: Arc<[(Uuid, Standing)]> = again
        .0
        .iter()
        .filter(|(id, _)| session.standings.iter().any(|(known, _)| known == id))
        .copied()
        .collect();
    Ok((!again.0.is_empty()).then_some(Standings(checked)))
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
    if let Caller::Customer(customer) = caller {
        // A customer opens only its own conversation, which its token's check has read.
        if customer.conversation_id != conversation_id {
            return Err(ApiError::NotFound);
        }
        if let Some(conversation) = &customer.conversation {
            return Ok(Conversation::clone(conversation));
        }
    }
    let conversation = consistency::found(state, || async {
        Ok(state.conversations.get(conversation_id).await?)
    })
    .await?
    .ok_or(ApiError::NotFound)?;
    match caller {
        Caller::Customer(customer) if customer.conversation_id == conversation_id => {
            Ok(conversation)
        }
        Caller::Customer(_) => Err(ApiError::NotFound),
        Caller::Agent(agent) => {
            member(state, agent, conversation.organization_id).await?;
            if conversation.kind == ConversationKind::Direct
                && !conversation.participants.contains(&agent.agent_id)
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
