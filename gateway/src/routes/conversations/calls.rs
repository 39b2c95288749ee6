//! Calls in a conversation: the log records that one started and ended; the media flows peer to
//! peer, signalled over the WebSocket.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use domain::conversation::{
    Conversation as ConversationStream, ConversationCommand, ConversationEvent,
};
use uuid::Uuid;

use super::wire::{self, CallStarted};
use super::{author_of, Key};
use crate::access;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::path_id;
use crate::limits;
use crate::openapi::Route;
use crate::state::AppState;
use crate::workflow::{self, context};

/// Starting and ending calls.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::post("/v1/conversations/{c}/calls", start_call)
            .id("startCall")
            .summary("Start a call")
            .describe(
                "Participants. Records `CallStarted`; media flows peer to peer, signalled \
                 over the WebSocket.",
            )
            .returns::<wire::CallStarted>(201, "The call's id."),
        Route::post("/v1/conversations/{c}/calls/{call}/end", end_call)
            .id("endCall")
            .summary("End a call")
            .describe("Participants. Records `CallEnded`.")
            .no_content("Ended."),
    ]
}

/// Participants, its customer included. The call itself (media) flows peer to peer, signalled
/// over the WebSocket; the log records that it started and ended.
async fn start_call(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
) -> Result<impl IntoResponse, ApiError> {
    limits::customer_command(&state, &caller).await?;
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    let by = author_of(&state, &caller, &conversation).await?;
    let start = ConversationCommand::StartCall {
        call_id: Uuid::new_v4(),
        by,
    };
    let ctx = context(Some(&caller), key.as_deref());
    let executed =
        workflow::run::<ConversationStream>(&state, conversation.id, start, &ctx).await?;
    // A replayed request answers the call it started the first time.
    let call_id = executed
        .typed
        .iter()
        .find_map(|event| match event {
            ConversationEvent::CallStarted { call_id, .. } => Some(*call_id),
            _ => None,
        })
        .ok_or_else(|| ApiError::Internal("a started call without its event".into()))?;
    Ok((StatusCode::CREATED, Json(CallStarted { call_id })))
}

async fn end_call(
    State(state): State<AppState>,
    Path((c, call)): Path<(String, String)>,
    caller: Caller,
    key: Key,
) -> Result<StatusCode, ApiError> {
    limits::customer_command(&state, &caller).await?;
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    let call_id = path_id(&call)?;
    let by = author_of(&state, &caller, &conversation).await?;
    let end = ConversationCommand::EndCall { call_id, by };
    workflow::run::<ConversationStream>(
        &state,
        conversation.id,
        end,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
