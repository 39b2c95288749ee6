//! Moving a conversation along: a transfer to another queue, its end, an agent's reopening, and
//! the customer's rating once it is over. How each spans streams is `workflow`'s (`transfer`,
//! `end`, `reopen`); a handler here parses, authorizes and calls it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use domain::conversation::{Conversation as ConversationStream, ConversationCommand};
use domain::values::{RatingComment, Score};
use projections::conversations::read::Conversation;

use super::wire::{self, Rate, Transfer};
use super::{author_of, Key};
use crate::access;
use crate::auth::Caller;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body};
use crate::openapi::Route;
use crate::state::AppState;
use crate::workflow::{self, context};

/// The transfer (listed before the calls, as the contract has it).
pub(super) fn transfer_routes() -> Vec<Route> {
    vec![Route::post("/v1/conversations/{c}/transfer", transfer)
        .id("transfer")
        .summary("Transfer to another queue")
        .describe(
            "Agent participants. The customer waits again, first in line, in the target \
                 queue of the same organization.",
        )
        .body::<wire::Transfer>()
        .no_content("Transferred.")]
}

/// The end, the reopening, and the rating.
pub(super) fn ending_routes() -> Vec<Route> {
    vec![
        Route::post("/v1/conversations/{c}/end", end)
            .id("end")
            .summary("End a conversation")
            .describe(
                "Agent participants, or its customer. A customer still waiting who ends has \
                 abandoned the queue.",
            )
            .no_content("Ended."),
        Route::post("/v1/conversations/{c}/reopen", reopen)
            .id("reopen")
            .summary("Reopen an ended conversation")
            .describe(
                "Agents, for an ended customer conversation or left message (409 if it has \
                 not ended or is a channel or direct chat): it is active again with the \
                 caller as its agent (`ConversationReopened`). A customer reopens by writing \
                 again: a message to its ended conversation within its queue's \
                 `reopen_window_seconds` reopens it with its last agent; after the window (or \
                 without one) it is 409, and the widget starts a new conversation.",
            )
            .no_content("Reopened."),
        Route::post("/v1/conversations/{c}/rating", rate)
            .id("rate")
            .summary("Rate a conversation")
            .describe("Its customer, once; a second rating is 409.")
            .body::<wire::Rate>()
            .no_content("Rated."),
    ]
}

/// Agent participants of a customer conversation; the target is an open queue of the same
/// organization (404 otherwise, as for any queue the caller may not see). The command layer
/// moves it (`workflow::transfer`): the target queue and the conversation decide, in the append
/// that moves the customer.
async fn transfer(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<Transfer>,
) -> Result<StatusCode, ApiError> {
    let (_, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let by = author_of(&state, &caller, &conversation).await?;
    let ctx = context(Some(&caller), key.as_deref());
    workflow::transfer(&state, conversation.id, body.queue_id, &by, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Agents of the conversation or its customer; how a waiting customer's end goes through its
/// queue's line is `workflow::end`'s.
async fn end(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
) -> Result<StatusCode, ApiError> {
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    let ctx = context(Some(&caller), key.as_deref());
    end_conversation(&state, &caller, &conversation, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/conversations/{c}/reopen`: an agent reopens an ended customer conversation (or a
/// left message) and becomes its agent; its customer sees it active again.
async fn reopen(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
) -> Result<StatusCode, ApiError> {
    // Another conversation's customer is told it does not exist (404), its own that only
    // agents reopen (403).
    let (agent, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let by_agent = agent.agent_id;
    let by = author_of(&state, &caller, &conversation).await?;
    let reopen = ConversationCommand::Reopen {
        by,
        at: Utc::now(),
        within_seconds: None,
    };
    let ctx = context(Some(&caller), key.as_deref());
    workflow::reopen(
        &state,
        conversation.id,
        conversation.organization_id,
        by_agent,
        reopen,
        &ctx,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends `conversation` for `caller` (who may), as `workflow::end` does; 409 if it has ended.
pub(crate) async fn end_conversation(
    state: &AppState,
    caller: &Caller,
    conversation: &Conversation,
    ctx: &store::command::CommandContext,
) -> Result<(), ApiError> {
    let by = author_of(state, caller, conversation).await?;
    workflow::end(state, conversation.id, &by, ctx).await
}

/// Its customer, once. A score that is a number but not a whole one from 1 to 5 is 422.
async fn rate(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<Rate>,
) -> Result<StatusCode, ApiError> {
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    if !matches!(caller, Caller::Customer(_)) {
        return Err(ApiError::Forbidden(
            "only the customer may rate its conversation".into(),
        ));
    }
    let score = body
        .score
        .as_i64()
        .ok_or_else(|| ApiError::Invalid("a score is a whole number from 1 to 5".into()))
        .and_then(|score| Score::parse(score).map_err(invalid))?;
    let comment = match body.comment.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(comment) => Some(RatingComment::parse(comment).map_err(invalid)?),
    };
    let by = author_of(&state, &caller, &conversation).await?;
    let rate = ConversationCommand::Rate { score, comment, by };
    workflow::run::<ConversationStream>(
        &state,
        conversation.id,
        rate,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
