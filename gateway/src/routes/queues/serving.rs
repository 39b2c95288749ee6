//! Serving a queue: its handlers and operators open and close it, and a handler picks the
//! customer who has waited longest (`workflow::give`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use domain::queue::{Queue, QueueCommand, QueueEvent};
use domain::values::Role;
use uuid::Uuid;

use super::find_as_member;
use crate::auth::{AgentCaller, Caller};
use crate::error::ApiError;
use crate::idempotency::IdempotencyKey;
use crate::openapi::Route;
use crate::routes::conversations::ConversationCreated;
use crate::state::AppState;
use crate::workflow::{self, context};

/// Opening, closing, picking.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::post("/v1/queues/{queue}/open", open)
            .id("openQueue")
            .summary("Open a queue")
            .describe("Its handlers and operators.")
            .no_content("Open."),
        Route::post("/v1/queues/{queue}/close", close)
            .id("closeQueue")
            .summary("Close a queue")
            .describe("Its handlers and operators.")
            .no_content("Closed."),
        Route::post("/v1/queues/{queue}/pick", pick)
            .id("pick")
            .summary("Pick the customer who has waited longest")
            .describe(
                "Handlers. 409 when nobody waits or the agent is at `capacity_per_agent`. Two \
                 agents never get the same customer. In a queue with `routing: auto` too; a \
                 customer under an offer to someone else is picked all the same (the offer \
                 ends).",
            )
            .returns::<ConversationCreated>(201, "The picked customer's conversation."),
    ]
}

/// Opening and closing: the queue's handlers and the organization's operators.
async fn open_or_close(
    state: AppState,
    raw: String,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    open: bool,
) -> Result<StatusCode, ApiError> {
    let (queue, role) = find_as_member(&state, &agent, &raw).await?;
    // Whether the caller is one of its handlers is the queue's stream to decide.
    let by = Some(agent.agent_id);
    let by_operator = role >= Role::Operator;
    let command = if open {
        QueueCommand::OpenQueue { by, by_operator }
    } else {
        QueueCommand::CloseQueue { by, by_operator }
    };
    let caller = Caller::Agent(agent);
    workflow::run::<Queue>(
        &state,
        queue.id,
        command,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn open(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    open_or_close(state, queue, agent, key, true).await
}

async fn close(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    open_or_close(state, queue, agent, key, false).await
}

/// The longest-waiting customer goes to the caller. Who may pick (a handler) is the queue's
/// stream to decide, and whether the caller has room (`capacity_per_agent`) its workload's
/// stream, in the same append (`workflow::give`): two agents racing for one customer are settled
/// by the queue's expected version (invariant 2), two picks of one agent racing for its last
/// place by its workload's; the loser is retried by the command layer against the new state
/// and gets the next customer, or 409.
async fn pick(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<impl IntoResponse, ApiError> {
    let (queue, _) = find_as_member(&state, &agent, &queue).await?;
    let account = projections::directory::read::account(state.backend(), agent.agent_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let agent_id = agent.agent_id;
    let pick = QueueCommand::PickCustomer {
        agent_id,
        agent_name: account.name,
    };
    let caller = Caller::Agent(agent);
    let executed = workflow::give(
        &state,
        queue.id,
        queue.organization_id,
        agent_id,
        pick,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    let conversation_id = picked(&executed.typed)
        .ok_or_else(|| ApiError::Internal("a pick that picked nobody".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(ConversationCreated { conversation_id }),
    ))
}

/// The customer a pick or an accepted offer gave.
pub(crate) fn picked(events: &[QueueEvent]) -> Option<Uuid> {
    events.iter().find_map(|event| match event {
        QueueEvent::CustomerPicked {
            conversation_id, ..
        } => Some(*conversation_id),
        _ => None,
    })
}
