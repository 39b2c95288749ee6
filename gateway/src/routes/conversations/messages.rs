//! Writing in a conversation: a message (an agent's answer to a left message mailed on, a
//! customer's to its ended conversation reopening it, as `workflow::send_message` does) and an
//! agent's read marker.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use domain::conversation::{
    Conversation as ConversationStream, ConversationCommand, ConversationEvent, ConversationKind,
};
use domain::values::MessageText;
use uuid::Uuid;

use super::wire::{self, MessageSent, ReadRequest, SendMessage};
use super::{author_of, Key};
use crate::access;
use crate::auth::Caller;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body};
use crate::limits;
use crate::openapi::Route;
use crate::state::AppState;
use crate::workflow::{self, context};

/// Messages and how far they are read.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::post("/v1/conversations/{c}/messages", send_message)
            .id("sendMessage")
            .summary("Send a message")
            .describe(
                "409 if the conversation ended; 422 if the text is too long, empty while the \
                 message carries no attachment, or an attachment is not this conversation's.",
            )
            .body::<wire::SendMessage>()
            .returns::<wire::MessageSent>(201, "The message's id and `seq`."),
        Route::post("/v1/conversations/{c}/read", mark_read)
            .id("markRead")
            .summary("Mark messages read")
            .describe(
                "Agents who may see the conversation. The caller has read up to message \
                 `seq`: its unread count in the conversation list follows, on every device. \
                 An older `seq` changes nothing; a `seq` past the newest message is 422.",
            )
            .body::<wire::ReadRequest>()
            .no_content("Marked."),
    ]
}

async fn send_message(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<SendMessage>,
) -> Result<impl IntoResponse, ApiError> {
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    if matches!(caller, Caller::Customer(_)) {
        limits::enforce(&state, limits::CUSTOMER_MESSAGES, caller.key()).await?;
    }
    // Blank text is no text: the conversation decides whether the attachments make a message.
    let text = match body.text.trim() {
        "" => None,
        text => Some(MessageText::parse(text).map_err(invalid)?),
    };
    // An id that is not even a UUID names no attachment of this conversation: 422 as well.
    let attachments = body
        .attachments
        .unwrap_or_default()
        .iter()
        .map(|raw| {
            raw.parse::<Uuid>().map_err(|_| {
                ApiError::Invalid(format!("{raw:?} is not an attachment of this conversation"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let author = author_of(&state, &caller, &conversation).await?;
    let ctx = context(Some(&caller), key.as_deref());
    let answer = text.as_ref().map(|text| text.as_str().to_owned());
    // A customer who writes to its ended conversation continues it, if its queue's reopening
    // window allows: `workflow::send_message` reopens it first.
    let ended = conversation.status == projections::conversations::read::ConversationStatus::Ended;
    let executed = workflow::send_message(
        &state,
        conversation.id,
        ended,
        &author,
        text,
        attachments,
        &ctx,
    )
    .await?;
    if conversation.kind == ConversationKind::LeftMessage && !author.is_customer() {
        if let Some(answer) = answer {
            crate::routes::left_messages::mail_answer(&state, &conversation, &author.name, &answer)
                .await;
        }
    }
    let sent = executed.typed.iter().find_map(|event| match event {
        ConversationEvent::MessageSent {
            message_id, seq, ..
        } => Some((*message_id, *seq)),
        _ => None,
    });
    let (message_id, seq) =
        sent.ok_or_else(|| ApiError::Internal("a sent message without its event".into()))?;
    Ok((StatusCode::CREATED, Json(MessageSent { message_id, seq })))
}

/// An agent's read marker, kept in the log (`ConversationRead`) so its unread counts follow it
/// to another device. Reading an older message again changes nothing.
async fn mark_read(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<ReadRequest>,
) -> Result<StatusCode, ApiError> {
    let (_, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let by = author_of(&state, &caller, &conversation).await?;
    let read = ConversationCommand::MarkRead { seq: body.seq, by };
    workflow::run::<ConversationStream>(
        &state,
        conversation.id,
        read,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
