//! What agents add to a conversation for themselves: tags and private notes (a customer never
//! sees either).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use domain::conversation::{
    Conversation as ConversationStream, ConversationCommand, ConversationEvent,
};
use domain::values::{NoteText, Tag};
use uuid::Uuid;

use super::wire::{self, AddNote, AddTag, NoteAdded};
use super::{author_of, Key};
use crate::access;
use crate::auth::Caller;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body};
use crate::openapi::Route;
use crate::state::AppState;
use crate::workflow::{self, context};

/// Tags and notes.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::post("/v1/conversations/{c}/tags", add_tag)
            .id("addTag")
            .summary("Tag a conversation")
            .describe("Agent participants.")
            .body::<wire::AddTag>()
            .no_content("Tagged."),
        Route::delete("/v1/conversations/{c}/tags/{tag}", remove_tag)
            .id("removeTag")
            .summary("Remove a tag")
            .describe("Agent participants.")
            .no_content("Removed."),
        Route::post("/v1/conversations/{c}/notes", add_note)
            .id("addNote")
            .summary("Add a private note")
            .describe("Agent participants.")
            .body::<wire::AddNote>()
            .returns::<wire::NoteAdded>(201, "The note's id."),
    ]
}

async fn add_tag(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<AddTag>,
) -> Result<StatusCode, ApiError> {
    let (_, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let tag = Tag::parse(&body.tag).map_err(invalid)?;
    let by = author_of(&state, &caller, &conversation).await?;
    let add = ConversationCommand::AddTag { tag, by };
    workflow::run::<ConversationStream>(
        &state,
        conversation.id,
        add,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_tag(
    State(state): State<AppState>,
    Path((c, tag)): Path<(String, String)>,
    caller: Caller,
    key: Key,
) -> Result<StatusCode, ApiError> {
    let (_, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let tag = Tag::parse(&tag).map_err(invalid)?;
    let by = author_of(&state, &caller, &conversation).await?;
    let remove = ConversationCommand::RemoveTag { tag, by };
    workflow::run::<ConversationStream>(
        &state,
        conversation.id,
        remove,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_note(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<AddNote>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let text = NoteText::parse(&body.text).map_err(invalid)?;
    let by = author_of(&state, &caller, &conversation).await?;
    let add = ConversationCommand::AddNote {
        note_id: Uuid::new_v4(),
        text,
        by,
    };
    let ctx = context(Some(&caller), key.as_deref());
    let executed = workflow::run::<ConversationStream>(&state, conversation.id, add, &ctx).await?;
    let note_id = executed
        .typed
        .iter()
        .find_map(|event| match event {
            ConversationEvent::NoteAdded { note_id, .. } => Some(*note_id),
            _ => None,
        })
        .ok_or_else(|| ApiError::Internal("an added note without its event".into()))?;
    Ok((StatusCode::CREATED, Json(NoteAdded { note_id })))
}
