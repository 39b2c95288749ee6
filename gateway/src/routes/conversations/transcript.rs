//! A conversation's transcript: as JSON or as plain text for a participant, and the text its
//! customer gets by email. Notes reach agents only, and every person's value is neutralised in
//! the text (`plain`).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use projections::conversations::read::Conversation;
use projections::messages::read::Message;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::view_for;
use super::wire::{self, Transcript};
use crate::access;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{path_id, Params, MAX_PAGE};
use crate::openapi::Route;
use crate::plain;
use crate::state::AppState;

/// The whole conversation, in one answer.
pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/v1/conversations/{c}/transcript", transcript)
        .id("transcript")
        .summary("A conversation's transcript")
        .describe("Participants; never notes for the customer.")
        .query(
            "format",
            json!({"enum": ["json", "txt"]}),
            "`json` (the default) or `txt`.",
        )
        .returns::<wire::Transcript>(200, "The whole conversation.")
        .or_as("text/plain", json!({"type": "string"}))]
}

#[derive(Deserialize)]
struct TranscriptQuery {
    format: Option<String>,
}

/// Every message of a conversation, page after page.
async fn all_messages(state: &AppState, conversation_id: Uuid) -> Result<Vec<Message>, ApiError> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |message: &Message| message.seq);
        let page = projections::messages::read::messages(
            state.backend(),
            conversation_id,
            after,
            projections::MAX_PAGE,
        )
        .await?;
        let done = page.len() < MAX_PAGE;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A line of a plain-text transcript; a text of several lines is indented under its first,
/// and no name or text can start a line of its own (`plain`).
fn line(out: &mut String, at: DateTime<Utc>, who: &str, text: &str) {
    out.push_str(&format!(
        "[{}] {}: {}\n",
        stamp(at),
        plain::one_line(who),
        plain::indented(text, "    ")
    ));
}

/// The whole conversation as JSON (its view for this caller, its messages, and for agents its
/// notes) or as readable text. Notes never reach a customer in either.
async fn transcript(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    Params(query): Params<TranscriptQuery>,
) -> Result<Response, ApiError> {
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    let text = match query.format.as_deref() {
        None | Some("") | Some("json") => false,
        Some("txt") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format {other:?} is json or txt"
            )))
        }
    };
    let messages = all_messages(&state, conversation.id).await?;
    let notes = match caller {
        Caller::Agent(_) => {
            Some(projections::messages::read::notes(state.backend(), conversation.id).await?)
        }
        Caller::Customer(_) => None,
    };
    if !text {
        let body = Transcript {
            conversation: view_for(&state, &caller, &conversation).await?,
            messages: wire::Message::all(&state.signer, messages),
            notes: notes.map(|notes| notes.into_iter().map(wire::Note::from).collect()),
        };
        return Ok(Json(body).into_response());
    }
    let out = plain_transcript(
        &conversation,
        &messages,
        notes.as_deref(),
        matches!(caller, Caller::Agent(_)),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response())
}

/// The text of `?format=txt`: messages and (given `notes`, for agents) notes in the order they
/// were written, every person's value neutralised (`plain`). A customer's (`agent` false) has
/// no title: only the conversation's id and times.
fn plain_transcript(
    conversation: &Conversation,
    messages: &[Message],
    notes: Option<&[projections::messages::read::Note]>,
    agent: bool,
) -> String {
    let mut out = String::new();
    if agent {
        let title = conversation
            .name
            .clone()
            .unwrap_or_else(|| conversation.kind.as_str().to_owned());
        let title = plain::one_line(&title);
        out.push_str(&format!("Conversation {} ({title})\n", conversation.id));
    } else {
        out.push_str(&format!("Conversation {}\n", conversation.id));
    }
    out.push_str(&format!("Started: {}\n", stamp(conversation.created_at)));
    if let Some(ended_at) = conversation.ended_at {
        out.push_str(&format!("Ended: {}\n", stamp(ended_at)));
    }
    out.push('\n');
    let mut entries: Vec<(DateTime<Utc>, String, &str)> = messages
        .iter()
        .map(|message| {
            (
                message.sent_at,
                message.author.name.clone(),
                message.text.as_str(),
            )
        })
        .collect();
    for note in notes.into_iter().flatten() {
        entries.push((
            note.created_at,
            format!("{} (note)", note.author.name),
            note.text.as_str(),
        ));
    }
    entries.sort_by_key(|(at, _, _)| *at);
    for (at, who, text) in entries {
        line(&mut out, at, &who, text);
    }
    out
}

/// The transcript its customer gets (by email on request): messages only, never a note.
pub async fn customer_transcript(
    state: &AppState,
    conversation: &Conversation,
) -> Result<String, ApiError> {
    let messages = all_messages(state, conversation.id).await?;
    Ok(plain_transcript(conversation, &messages, None, false))
}
