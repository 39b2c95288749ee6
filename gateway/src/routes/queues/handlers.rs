//! A queue's handlers: the members of its organization who may pick from it, added and removed
//! by its operators.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use domain::queue::{Queue, QueueCommand};

use super::find_as_operator;
use super::wire::{self, AddHandler};
use crate::auth::{AgentCaller, Caller};
use crate::consistency;
use crate::error::ApiError;
use crate::extract::{path_id, Body};
use crate::idempotency::IdempotencyKey;
use crate::openapi::Route;
use crate::state::AppState;
use crate::workflow::{self, context};

/// Adding and removing handlers.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::post("/v1/queues/{queue}/handlers", add_handler)
            .id("addHandler")
            .summary("Add a handler")
            .describe("Operators. A handler is a member who may pick from the queue.")
            .body::<wire::AddHandler>()
            .no_content("Added."),
        Route::delete("/v1/queues/{queue}/handlers/{agent}", remove_handler)
            .id("removeHandler")
            .summary("Remove a handler")
            .describe("Operators.")
            .no_content("Removed."),
    ]
}

async fn add_handler(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<AddHandler>,
) -> Result<StatusCode, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let organization_id = queue.organization_id;
    let member = consistency::found(&state, || async {
        Ok(
            projections::directory::read::role_of(state.backend(), organization_id, body.agent_id)
                .await?,
        )
    })
    .await?;
    if member.is_none() {
        return Err(ApiError::Invalid(
            "a handler must be a member of the queue's organization".into(),
        ));
    }
    let add = QueueCommand::AddHandler {
        agent_id: body.agent_id,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    workflow::run::<Queue>(
        &state,
        queue.id,
        add,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_handler(
    State(state): State<AppState>,
    Path((queue, target)): Path<(String, String)>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let target = path_id(&target)?;
    let remove = QueueCommand::RemoveHandler {
        agent_id: target,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    workflow::run::<Queue>(
        &state,
        queue.id,
        remove,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
