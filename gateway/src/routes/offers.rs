//! Offers of auto routing (`routing: auto` in a queue's settings; `crate::router` makes them):
//! the agent a waiting customer is offered to accepts or declines it here. Both are the
//! queue's commands, decided by its stream: only the offer's agent, only while it is open and
//! unexpired; an accept is a pick (`workflow::give`: the agent's workload takes the
//! conversation in the same append, refusing past `capacity_per_agent`).

use crate::routes::conversations::ConversationCreated;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Extension, Json, Router};
use domain::queue::{Queue, QueueCommand};

use crate::access;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::path_id;
use crate::idempotency::IdempotencyKey;
use crate::routes::queues::picked;
use crate::state::AppState;
use crate::workflow::{self, context};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/conversations/{c}/offer/accept", post(accept))
        .route("/v1/conversations/{c}/offer/decline", post(decline))
}

/// The queue a customer conversation waits in (409 for a channel, a direct chat, or one that
/// waits nowhere).
fn queue_of(
    conversation: &projections::conversations::read::Conversation,
) -> Result<uuid::Uuid, ApiError> {
    if conversation.kind != domain::conversation::ConversationKind::Customer {
        return Err(ApiError::Conflict(
            "only a customer conversation is offered".into(),
        ));
    }
    conversation
        .queue_id
        .ok_or_else(|| ApiError::Conflict("no offer of this customer is open".into()))
}

async fn accept(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<impl IntoResponse, ApiError> {
    let (agent, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let queue_id = queue_of(&conversation)?;
    let account = projections::directory::read::account(state.backend(), agent.agent_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let accept = QueueCommand::AcceptOffer {
        conversation_id: conversation.id,
        agent_id: agent.agent_id,
        agent_name: account.name,
        now: chrono::Utc::now(),
    };
    let executed = workflow::give(
        &state,
        queue_id,
        conversation.organization_id,
        agent.agent_id,
        accept,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    let conversation_id = picked(&executed.typed)
        .ok_or_else(|| ApiError::Internal("an accepted offer that picked nobody".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(ConversationCreated { conversation_id }),
    ))
}

async fn decline(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    let (agent, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let queue_id = queue_of(&conversation)?;
    let decline = QueueCommand::DeclineOffer {
        conversation_id: conversation.id,
        agent_id: agent.agent_id,
    };
    workflow::run::<Queue>(
        &state,
        queue_id,
        decline,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
