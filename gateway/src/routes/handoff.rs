//! Handing an active customer conversation over to a named teammate, who accepts or declines
//! it like an offer of auto routing. The conversation's stream decides the handoff (only its
//! named teammate, only while it is open and unexpired); an accept is one append of the
//! conversation's `HandoffAccepted` and the teammate's workload taking the conversation, so
//! `capacity_per_agent` is decided by the workload's stream; the agent it came from is released
//! by the process manager's follow-up of `HandoffAccepted`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use domain::conversation::{Conversation, ConversationCommand, ConversationEvent};
use domain::values::{Limit, Role};
use domain::workload::{Workload, WorkloadCommand};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::access;
use crate::auth::Caller;
use crate::consistency;
use crate::error::ApiError;
use crate::extract::{path_id, Body};
use crate::idempotency::IdempotencyKey;
use crate::openapi::{Route, Routes};
use crate::routes::conversations::ConversationCreated;
use crate::state::AppState;
use crate::workflow::{self, context};

/// How long a handoff stays open when its queue does not say (`offer_timeout_seconds`).
const DEFAULT_HANDOFF_SECONDS: i64 = 30;

pub fn routes() -> Routes {
    Routes::new("conversations")
        .route(
            Route::post("/v1/conversations/{c}/handoff", offer)
                .id("offerHandoff")
                .summary("Hand over to a teammate")
                .describe(
                    "The conversation's agent, or an operator, for an active customer \
                     conversation (409 otherwise, or to its own agent). The named teammate (404 \
                     if not a member of the organization) is offered the conversation until the \
                     queue's `offer_timeout_seconds` pass (`HandoffOffered`, on the `activity` \
                     topic with the teammate as its `agent_id`, and as `handoff` in the \
                     conversation); the conversation stays with its agent until the teammate \
                     accepts. A new handoff replaces an open one.",
                )
                .body::<HandoffBody>()
                .no_content("Offered."),
        )
        .route(
            Route::post("/v1/conversations/{c}/handoff/accept", accept)
                .id("acceptHandoff")
                .summary("Accept a handoff")
                .describe(
                    "The teammate it is offered to (403 for another agent). The caller becomes \
                     the conversation's agent (`HandoffAccepted`; the customer sees the new \
                     agent's name) and the agent it came from has room again. 409 when no handoff \
                     is open (declined, replaced, or the conversation ended or moved), it has \
                     expired, or the caller is at the queue's `capacity_per_agent` (then nothing \
                     changes).",
                )
                .returns::<ConversationCreated>(201, "The accepted conversation."),
        )
        .route(
            Route::post("/v1/conversations/{c}/handoff/decline", decline)
                .id("declineHandoff")
                .summary("Decline a handoff")
                .describe(
                    "The teammate it is offered to (403 for another agent; 409 when none is \
                     open). The conversation stays with its agent (`HandoffDeclined`).",
                )
                .no_content("Declined."),
        )
}

type Key = Option<Extension<IdempotencyKey>>;

// `POST /v1/conversations/{c}/handoff`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HandoffRequest")]
pub struct HandoffBody {
    /// A member of the conversation's organization, other than its agent.
    pub agent_id: Uuid,
}

/// The settings of the queue a customer conversation came from, as JSON (`Null` without one).
async fn queue_settings(
    state: &AppState,
    conversation: &projections::conversations::read::Conversation,
) -> Result<Value, ApiError> {
    let Some(queue_id) = conversation.queue_id else {
        return Ok(Value::Null);
    };
    Ok(projections::queues::read::queue(state.backend(), queue_id)
        .await?
        .map(|queue| queue.settings)
        .unwrap_or(Value::Null))
}

async fn offer(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<HandoffBody>,
) -> Result<StatusCode, ApiError> {
    let (agent, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    // The conversation's agent hands it over, an operator anyone's: the conversation decides,
    // as it is now; the caller's role is the organization's.
    let by_operator =
        access::member(&state, &agent, conversation.organization_id).await? >= Role::Operator;
    // A member who joined a moment ago is found once the read models have caught up.
    let teammate = consistency::found(&state, || async {
        Ok(projections::directory::read::role_of(
            state.backend(),
            conversation.organization_id,
            body.agent_id,
        )
        .await?)
    })
    .await?;
    if teammate.is_none() {
        return Err(ApiError::NotFound);
    }
    let settings = queue_settings(&state, &conversation).await?;
    let seconds = settings
        .get("offer_timeout_seconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_HANDOFF_SECONDS);
    let account = projections::directory::read::account(state.backend(), agent.agent_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let command = ConversationCommand::OfferHandoff {
        handoff_id: Uuid::new_v4(),
        to_agent_id: body.agent_id,
        by: domain::values::Author::agent(agent.agent_id, account.name),
        expires_at: chrono::Utc::now() + chrono::Duration::seconds(seconds),
        by_operator,
    };
    workflow::run::<Conversation>(
        &state,
        conversation.id,
        command,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn accept(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
) -> Result<impl IntoResponse, ApiError> {
    let (agent, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let account = projections::directory::read::account(state.backend(), agent.agent_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let settings = queue_settings(&state, &conversation).await?;
    let capacity = settings
        .get("capacity_per_agent")
        .and_then(Value::as_i64)
        .and_then(|raw| Limit::parse(raw, "capacity_per_agent").ok());
    let organization_id = conversation.organization_id;
    let accept = ConversationCommand::AcceptHandoff {
        agent_id: agent.agent_id,
        agent_name: account.name,
        now: chrono::Utc::now(),
    };
    let take = move |decided: &[ConversationEvent]| {
        decided.iter().find_map(|event| match event {
            ConversationEvent::HandoffAccepted {
                conversation_id,
                organization_id,
                queue_id: Some(queue_id),
                agent_id,
                ..
            } => Some(WorkloadCommand::Take {
                organization_id: *organization_id,
                agent_id: *agent_id,
                conversation_id: *conversation_id,
                queue_id: *queue_id,
                capacity,
                at: chrono::Utc::now(),
            }),
            _ => None,
        })
    };
    workflow::run_pair_with::<Conversation, Workload>(
        &state,
        (conversation.id, accept),
        (
            domain::ids::workload_id(organization_id, agent.agent_id),
            take,
        ),
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ConversationCreated {
            conversation_id: conversation.id,
        }),
    ))
}

async fn decline(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
) -> Result<StatusCode, ApiError> {
    let (agent, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let decline = ConversationCommand::DeclineHandoff {
        agent_id: agent.agent_id,
    };
    workflow::run::<Conversation>(
        &state,
        conversation.id,
        decline,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
