//! Offers of auto routing (`routing: auto` in a queue's settings; `crate::router` makes them):
//! the agent a waiting customer is offered to accepts or declines it here. Both are the
//! queue's commands, decided by its stream: only the offer's agent, only while it is open and
//! unexpired; an accept is a pick (`workflow::give`: the agent's workload takes the
//! conversation in the same append, refusing past `capacity_per_agent`).

use crate::routes::conversations::ConversationCreated;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use domain::queue::{Queue, QueueCommand};

use crate::access;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::path_id;
use crate::idempotency::IdempotencyKey;
use crate::openapi::{Route, Routes};
use crate::routes::queues::picked;
use crate::state::AppState;
use crate::workflow::{self, context};

pub fn routes() -> Routes {
    Routes::new("queues")
        .route(
            Route::post("/v1/conversations/{c}/offer/accept", accept)
                .id("acceptOffer")
                .summary("Accept the offer of a waiting customer")
                .describe(
                    "The agent the customer is offered to (auto routing: `CustomerOffered` on the \
                     `queue:ID` topic). The customer is picked by the caller, as by a pick. 409 \
                     when no offer of it is open (declined, expired, or the customer picked or \
                     gone), the offer is another agent's, it has expired, or the caller is at \
                     `capacity_per_agent`.",
                )
                .returns::<ConversationCreated>(201, "The accepted customer's conversation."),
        )
        .route(
            Route::post("/v1/conversations/{c}/offer/decline", decline)
                .id("declineOffer")
                .summary("Decline the offer of a waiting customer")
                .describe(
                    "The agent the customer is offered to. The customer passes to another agent \
                     (never back to this one while it waits). 409 when no offer of it is open or \
                     it is another agent's.",
                )
                .no_content("Declined."),
        )
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
