//! The agents' own conversations: an organization's channels and the one direct chat of a pair
//! of its members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::conversation::{
    Conversation as ConversationStream, ConversationCommand, ConversationError, ConversationEvent,
};
use domain::ids;
use domain::values::{Name, Role};
use uuid::Uuid;

use super::wire::{self, ConversationCreated, StartChannel, StartDirect};
use super::Key;
use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::consistency;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body};
use crate::openapi::Route;
use crate::state::AppState;
use crate::workflow::{self, context};

/// Starting channels and direct chats.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::post("/v1/orgs/{org}/channels", start_channel)
            .id("startChannel")
            .summary("Start a channel")
            .describe("Operators. A channel's participants are the organization's members.")
            .body::<wire::StartChannel>()
            .returns::<wire::ConversationCreated>(201, "The channel."),
        Route::post("/v1/orgs/{org}/directs", start_direct)
            .id("startDirect")
            .summary("Start or find a direct chat")
            .describe("Members. The one private chat of the pair.")
            .body::<wire::StartDirect>()
            .returns::<wire::ConversationCreated>(201, "Started.")
            .returns::<wire::ConversationCreated>(200, "It existed."),
    ]
}

async fn start_channel(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    key: Key,
    Body(body): Body<StartChannel>,
) -> Result<impl IntoResponse, ApiError> {
    let organization_id = path_id(&org)?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let name = Name::parse(&body.name).map_err(invalid)?;
    let conversation_id = Uuid::new_v4();
    let start = ConversationCommand::StartChannel {
        conversation_id,
        organization_id,
        name,
        by: agent.agent_id,
    };
    let caller = Caller::Agent(agent);
    let executed = workflow::run::<ConversationStream>(
        &state,
        conversation_id,
        start,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    // A replayed request answers the channel it created the first time.
    let conversation_id = executed
        .typed
        .iter()
        .find_map(|event| match event {
            ConversationEvent::ConversationStarted {
                conversation_id, ..
            } => Some(*conversation_id),
            _ => None,
        })
        .unwrap_or(conversation_id);
    Ok((
        StatusCode::CREATED,
        Json(ConversationCreated { conversation_id }),
    ))
}

/// The one private chat of a pair: its id is derived from the pair, so a second start (by
/// either of the two) finds it and answers 200.
async fn start_direct(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    key: Key,
    Body(body): Body<StartDirect>,
) -> Result<Response, ApiError> {
    let organization_id = path_id(&org)?;
    access::member(&state, &agent, organization_id).await?;
    let other: Uuid = body
        .agent_id
        .parse()
        .map_err(|_| ApiError::Invalid(format!("{:?} is not an agent's id", body.agent_id)))?;
    if other == agent.agent_id {
        return Err(ApiError::Invalid(
            "a direct chat is between two different agents".into(),
        ));
    }
    let member = consistency::found(&state, || async {
        Ok(projections::directory::read::role_of(state.backend(), organization_id, other).await?)
    })
    .await?;
    if member.is_none() {
        return Err(ApiError::Invalid(
            "the other agent is not a member of this organization".into(),
        ));
    }
    let conversation_id = ids::direct_conversation_id(organization_id, agent.agent_id, other);
    let start = ConversationCommand::StartDirect {
        conversation_id,
        organization_id,
        agents: [agent.agent_id, other],
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    let started = workflow::refusable::<ConversationStream>(&state, conversation_id, start, &ctx);
    let status = match started.await? {
        Ok(_) => StatusCode::CREATED,
        // The pair has its chat.
        Err(ConversationError::AlreadyStarted) => StatusCode::OK,
        Err(refusal) => return Err(ApiError::refused(&refusal)),
    };
    Ok((status, Json(ConversationCreated { conversation_id })).into_response())
}
