//! Conversations: reading one (as an agent or as its customer), an organization's list, messages,
//! tags, notes, metadata, ending, rating, the transcript, and starting channels and direct chats.
//!
//! Tenancy (invariant 8) is `access`'s: a conversation the caller may not see is 404, an agent's
//! thing asked by its own customer is 403. What a customer sees is an allow-list built here
//! (`customer_view`), never the agent's view with fields taken out, so a field added to the read
//! model cannot leak to it; notes are read only behind `access::agent_conversation`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, SecondsFormat, Utc};
use domain::conversation::ConversationKind;
use domain::conversation::{
    Conversation as ConversationStream, ConversationCommand, ConversationEvent, Status,
};
use domain::ids;
use domain::metadata::{CustomerMetadata, LiveMetadata};
use domain::values::{Author, MessageText, Name, NoteText, RatingComment, Role, Score, Tag};
use projections::conversations::read::Conversation;
use projections::conversations::read::ConversationFilter;
use projections::messages::read::Message;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::consistency;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body, PageQuery, Params, MAX_PAGE};
use crate::idempotency::IdempotencyKey;
use crate::limits;
use crate::openapi::{time_schema, uuid_schema, Route, Routes};
use crate::plain;
use crate::state::AppState;
use crate::workflow::{self, context};

pub mod wire;

pub use wire::{
    agent_views, AddNote, AddTag, AgentConversation, CallStarted, ConversationCreated,
    ConversationView, CustomerConversation, MessageSent, NoteAdded, Rate, ReadRequest, SendMessage,
    StartChannel, StartDirect, Transcript, Transfer,
};

pub fn routes() -> Routes {
    Routes::new("conversations")
        .extend(reading())
        .extend(writing())
        .extend(handling())
}

/// Reading conversations and what they hold.
fn reading() -> Vec<Route> {
    vec![
        Route::get("/v1/conversations/{c}", show)
            .id("conversation")
            .summary("A conversation")
            .describe(
                "Its participants. An agent sees the agent view; its customer sees only the \
                 customer view.",
            )
            .returns::<wire::ConversationView>(200, "The conversation as the caller may see it."),
        Route::get("/v1/orgs/{org}/conversations", list)
            .id("conversations")
            .summary("The organization's conversations")
            .describe("Direct chats only the caller's own.")
            .query(
                "status",
                json!({"enum": ["waiting", "active", "ended"]}),
                "Only conversations in this status.",
            )
            .query("agent", uuid_schema(), "Only conversations of this agent.")
            .query(
                "kind",
                json!({"enum": ["customer", "channel", "direct", "left_message"]}),
                "Only conversations of this kind.",
            )
            .query("queue", uuid_schema(), "Only conversations of this queue.")
            .query(
                "tag",
                json!({"type": "string"}),
                "Only conversations that carry this tag.",
            )
            .query(
                "from",
                time_schema(),
                "Only conversations started at or after this time.",
            )
            .query(
                "to",
                time_schema(),
                "Only conversations started before this time.",
            )
            .paged("the last conversation's id")
            .returns::<Vec<wire::AgentConversation>>(200, "A page of conversations."),
        Route::get("/v1/conversations/{c}/messages", messages)
            .id("messages")
            .summary("A conversation's messages")
            .describe("A queue's welcome message, if set, is message 1, author `system`.")
            .paged("the last message's `seq`")
            .returns::<Vec<wire::Message>>(200, "A page of messages."),
        Route::get("/v1/conversations/{c}/notes", notes)
            .id("notes")
            .summary("A conversation's private notes")
            .describe("Agent participants. Never shown to a customer.")
            .paged("the last note's id")
            .returns::<Vec<wire::Note>>(200, "The notes."),
        Route::get("/v1/conversations/{c}/same-customer", same_customer)
            .id("sameCustomer")
            .summary("The customer's other conversations")
            .describe(
                "Agent participants. A verified returning customer's other conversations in \
                 the queue, newest first, at most 50; empty for a guest.",
            )
            .returns::<Vec<wire::AgentConversation>>(200, "The conversations."),
        Route::get("/v1/conversations/{c}/transcript", transcript)
            .id("transcript")
            .summary("A conversation's transcript")
            .describe("Participants; never notes for the customer.")
            .query(
                "format",
                json!({"enum": ["json", "txt"]}),
                "`json` (the default) or `txt`.",
            )
            .returns::<wire::Transcript>(200, "The whole conversation.")
            .or_as("text/plain", json!({"type": "string"})),
    ]
}

/// Writing in a conversation: messages, notes, tags, metadata.
fn writing() -> Vec<Route> {
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
        Route::put("/v1/conversations/{c}/metadata", set_metadata)
            .id("setMetadata")
            .summary("Set customer metadata")
            .describe(
                "Agent participants, or its customer. The body is the whole metadata object \
                 (at most 16 KiB).",
            )
            .object_body()
            .no_content("Set."),
        Route::post("/v1/conversations/{c}/live", update_live)
            .id("updateLive")
            .summary("Update live metadata")
            .describe(
                "Its customer. Last value wins. A string value that begins with a URI scheme \
                 must use http or https (422).",
            )
            .object_body()
            .no_content("Updated."),
    ]
}

/// Moving a conversation along, and starting the agents' own.
fn handling() -> Vec<Route> {
    vec![
        Route::post("/v1/conversations/{c}/transfer", transfer)
            .id("transfer")
            .summary("Transfer to another queue")
            .describe(
                "Agent participants. The customer waits again, first in line, in the target \
                 queue of the same organization.",
            )
            .body::<wire::Transfer>()
            .no_content("Transferred."),
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
        Route::post("/v1/orgs/{org}/channels", start_channel)
            .id("startChannel")
            .summary("Start a channel")
            .describe("Operators. A channel's participants are the organization's members.")
            .body::<wire::StartChannel>()
            .returns::<wire::ConversationCreated>(201, "The channel."),
        Route::post("/v1/orgs/{org}/directs", start_direct)
            .id("startDirect")
            .summary("Start or find a direct chat")
            .describe("Members. The one private chat of the pair.")
            .body::<wire::StartDirect>()
            .returns::<wire::ConversationCreated>(201, "Started.")
            .returns::<wire::ConversationCreated>(200, "It existed."),
    ]
}

type Key = Option<Extension<IdempotencyKey>>;

// ---- views ----

/// The name of an agent as others see it.
async fn agent_name(state: &AppState, agent_id: Uuid) -> Result<String, ApiError> {
    let account = projections::directory::read::account(state.backend(), agent_id).await?;
    Ok(account.map_or_else(|| "Agent".to_owned(), |account| account.name))
}

/// A conversation as its customer sees it: API.md's allow-list and nothing else.
async fn customer_view(
    state: &AppState,
    conversation: &Conversation,
) -> Result<CustomerConversation, ApiError> {
    let agent = match conversation.agent_id {
        Some(agent_id) => Some(agent_name(state, agent_id).await?),
        None => None,
    };
    Ok(CustomerConversation::new(conversation, agent))
}

async fn view_for(
    state: &AppState,
    caller: &Caller,
    conversation: &Conversation,
) -> Result<ConversationView, ApiError> {
    Ok(match caller {
        Caller::Agent(_) => {
            ConversationView::Agent(Box::new(AgentConversation::from(conversation.clone())))
        }
        Caller::Customer(_) => {
            ConversationView::Customer(customer_view(state, conversation).await?)
        }
    })
}

/// Who acts, as the conversation's events record it: an agent by its account's name, the
/// customer by the name its metadata gives, or "Customer".
pub(super) async fn author_of(
    state: &AppState,
    caller: &Caller,
    conversation: &Conversation,
) -> Result<Author, ApiError> {
    match caller {
        Caller::Agent(agent) => Ok(Author::agent(
            agent.agent_id,
            agent_name(state, agent.agent_id).await?,
        )),
        Caller::Customer(customer) => {
            let name = conversation
                .customer
                .metadata
                .get("name")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .unwrap_or("Customer");
            Ok(Author::customer(customer.conversation_id, name))
        }
    }
}

// ---- reading ----

async fn show(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
) -> Result<Json<ConversationView>, ApiError> {
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    Ok(Json(view_for(&state, &caller, &conversation).await?))
}

#[derive(Deserialize)]
struct ListQuery {
    after: Option<String>,
    limit: Option<String>,
    status: Option<String>,
    agent: Option<String>,
    kind: Option<String>,
    queue: Option<String>,
    tag: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// A filter value from a fixed set; empty means no filter, anything else is 400.
/// A filter's value as the domain's enum `T`, whose serde names are `allowed`.
fn one_of<T: serde::de::DeserializeOwned>(
    raw: Option<String>,
    allowed: &[&str],
    field: &str,
) -> Result<Option<T>, ApiError> {
    match raw {
        None => Ok(None),
        Some(value) if value.is_empty() => Ok(None),
        Some(value) => serde_json::from_value(serde_json::Value::String(value.clone()))
            .map(Some)
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "{field} {value:?} is not one of {}",
                    allowed.join(", ")
                ))
            }),
    }
}

async fn list(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    Params(query): Params<ListQuery>,
) -> Result<Json<Vec<AgentConversation>>, ApiError> {
    let organization_id = path_id(&org)?;
    access::member(&state, &agent, organization_id).await?;
    let page = PageQuery {
        after: query.after,
        limit: query.limit,
    }
    .parse::<Uuid>()?;
    let id = |raw: Option<&str>, field: &str| match raw {
        None | Some("") => Ok(None),
        Some(raw) => raw
            .parse::<Uuid>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{field} {raw:?} is not an id"))),
    };
    let micros = |time: Option<chrono::DateTime<chrono::Utc>>| time.map(|t| t.timestamp_micros());
    let filter = ConversationFilter {
        status: one_of(query.status, &["waiting", "active", "ended"], "status")?,
        agent_id: id(query.agent.as_deref(), "agent")?,
        kind: one_of(
            query.kind,
            &["customer", "channel", "direct", "left_message"],
            "kind",
        )?,
        queue_id: id(query.queue.as_deref(), "queue")?,
        tag: query.tag.filter(|tag| !tag.is_empty()),
        from: micros(crate::extract::time("from", query.from.as_deref())?),
        to: micros(crate::extract::time("to", query.to.as_deref())?),
    };
    let limit = i64::try_from(page.limit).unwrap_or(projections::MAX_PAGE);
    let conversations = projections::conversations::read::conversations(
        state.backend(),
        organization_id,
        agent.agent_id,
        &filter,
        page.after,
        limit,
    )
    .await?;
    Ok(Json(agent_views(conversations)))
}

async fn messages(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    Params(query): Params<PageQuery>,
) -> Result<Json<Vec<wire::Message>>, ApiError> {
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    // A `seq` is never negative: such a cursor is malformed (400), as any other.
    let page = query.parse::<u64>()?;
    let after = i64::try_from(page.after.unwrap_or(0))
        .map_err(|_| ApiError::BadRequest("the cursor is past any message".into()))?;
    let limit = i64::try_from(page.limit).unwrap_or(projections::MAX_PAGE);
    let messages =
        projections::messages::read::messages(state.backend(), conversation.id, after, limit)
            .await?;
    Ok(Json(wire::Message::all(&state.signer, messages)))
}

/// A page of the conversation's notes, oldest first; the cursor is the last note's id.
async fn notes(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    Params(page): Params<PageQuery>,
) -> Result<Json<Vec<wire::Note>>, ApiError> {
    let page = page.parse::<Uuid>()?;
    let (_, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let notes = projections::messages::read::notes(state.backend(), conversation.id).await?;
    Ok(Json(
        page.of(notes, |note| note.id)
            .into_iter()
            .map(wire::Note::from)
            .collect(),
    ))
}

/// How many of a returning customer's other conversations are listed.
const SAME_CUSTOMER_LIMIT: i64 = 50;

/// The other conversations of this conversation's verified customer (its site vouched for it
/// with a signed identity), newest first: for agents only; empty for a guest.
async fn same_customer(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
) -> Result<Json<Vec<AgentConversation>>, ApiError> {
    let (_, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    let others = projections::conversations::read::same_customer(
        state.backend(),
        conversation.id,
        SAME_CUSTOMER_LIMIT,
    )
    .await?;
    Ok(Json(agent_views(others)))
}

// ---- messages, tags, notes, metadata ----

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
    // A customer who writes again after the end continues the conversation, if its queue's
    // reopening window allows (the conversation decides); otherwise the send is refused as
    // ended, and the widget starts a new one.
    if conversation.status == projections::conversations::read::ConversationStatus::Ended
        && author.is_customer()
    {
        let reopen = ConversationCommand::Reopen {
            by: author.clone(),
            at: Utc::now(),
            within_seconds: reopen_window(&state, &conversation).await?,
        };
        // The request's Idempotency-Key is the message's: the reopening takes none (a repeat
        // of it finds the conversation open, below).
        let reopen_ctx = context(Some(&caller), None);
        // Back to the agent it had: that agent's workload takes it again.
        let stream = conversation.id.to_string();
        let (before, _) = state.commands.load::<ConversationStream>(&stream).await?;
        let back_to = before.agent_id.unwrap_or_default();
        let reopened = workflow::reopen(
            &state,
            conversation.id,
            conversation.organization_id,
            back_to,
            reopen,
            &reopen_ctx,
        )
        .await;
        match reopened {
            Ok(()) => {}
            // Not ended any more (another of its messages reopened it): the send decides.
            Err(ApiError::Conflict(detail)) => {
                let stream = conversation.id.to_string();
                let (now, _) = state.commands.load::<ConversationStream>(&stream).await?;
                if now.status == Some(Status::Ended) {
                    return Err(ApiError::Conflict(detail));
                }
            }
            Err(error) => return Err(error),
        }
    }
    let answer = text.as_ref().map(|text| text.as_str().to_owned());
    let send = ConversationCommand::SendMessage {
        message_id: Uuid::new_v4(),
        author: author.clone(),
        text,
        attachments,
    };
    let executed = workflow::run::<ConversationStream>(&state, conversation.id, send, &ctx).await?;
    if conversation.kind == ConversationKind::LeftMessage && !author.is_customer() {
        if let Some(answer) = answer {
            super::left_messages::mail_answer(&state, &conversation, &author.name, &answer).await;
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

/// Agents of the conversation or its customer; the body is the whole metadata object.
async fn set_metadata(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<Map<String, Value>>,
) -> Result<StatusCode, ApiError> {
    limits::customer_command(&state, &caller).await?;
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    let metadata = CustomerMetadata::parse(Value::Object(body))?;
    let by = author_of(&state, &caller, &conversation).await?;
    let set = ConversationCommand::SetCustomerMetadata { metadata, by };
    workflow::run::<ConversationStream>(
        &state,
        conversation.id,
        set,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Its customer only: what page it is on, and so on.
async fn update_live(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<Map<String, Value>>,
) -> Result<StatusCode, ApiError> {
    limits::customer_command(&state, &caller).await?;
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    if !matches!(caller, Caller::Customer(_)) {
        return Err(ApiError::Forbidden("only the customer may do this".into()));
    }
    let live = LiveMetadata::parse(Value::Object(body))?;
    let by = author_of(&state, &caller, &conversation).await?;
    let update = ConversationCommand::UpdateLiveMetadata { live, by };
    workflow::run::<ConversationStream>(
        &state,
        conversation.id,
        update,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- transfers ----

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

// ---- calls ----

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

// ---- ending and rating ----

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

/// The reopening window of the conversation's queue (`reopen_window_seconds`), if it has one.
async fn reopen_window(
    state: &AppState,
    conversation: &Conversation,
) -> Result<Option<u32>, ApiError> {
    let Some(queue_id) = conversation.queue_id else {
        return Ok(None);
    };
    let queue = projections::queues::read::queue(state.backend(), queue_id).await?;
    Ok(queue
        .and_then(|queue| {
            queue
                .settings
                .get("reopen_window_seconds")
                .and_then(Value::as_u64)
        })
        .and_then(|seconds| u32::try_from(seconds).ok()))
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

// ---- transcript ----

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

// ---- channels and direct chats ----

async fn start_channel(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    key: Key,
    Body(body): Body<StartChannel>,
) -> Result<impl IntoResponse, ApiError> {
    let organization_id = path_id(&org)?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let name = Name::parse(&body.name).map_err(invalid)?;
    let conversation_id = Uuid::new_v4();
    let start = ConversationCommand::StartChannel {
        conversation_id,
        organization_id,
        name,
        by: agent.agent_id,
    };
    let caller = Caller::Agent(agent);
    let executed = workflow::run::<ConversationStream>(
        &state,
        conversation_id,
        start,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    // A replayed request answers the channel it created the first time.
    let conversation_id = executed
        .typed
        .iter()
        .find_map(|event| match event {
            ConversationEvent::ConversationStarted {
                conversation_id, ..
            } => Some(*conversation_id),
            _ => None,
        })
        .unwrap_or(conversation_id);
    Ok((
        StatusCode::CREATED,
        Json(ConversationCreated { conversation_id }),
    ))
}

/// The one private chat of a pair: its id is derived from the pair, so a second start (by
/// either of the two) finds it and answers 200.
async fn start_direct(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    key: Key,
    Body(body): Body<StartDirect>,
) -> Result<Response, ApiError> {
    let organization_id = path_id(&org)?;
    access::member(&state, &agent, organization_id).await?;
    let other: Uuid = body
        .agent_id
        .parse()
        .map_err(|_| ApiError::Invalid(format!("{:?} is not an agent's id", body.agent_id)))?;
    if other == agent.agent_id {
        return Err(ApiError::Invalid(
            "a direct chat is between two different agents".into(),
        ));
    }
    let member = consistency::found(&state, || async {
        Ok(projections::directory::read::role_of(state.backend(), organization_id, other).await?)
    })
    .await?;
    if member.is_none() {
        return Err(ApiError::Invalid(
            "the other agent is not a member of this organization".into(),
        ));
    }
    let conversation_id = ids::direct_conversation_id(organization_id, agent.agent_id, other);
    let start = ConversationCommand::StartDirect {
        conversation_id,
        organization_id,
        agents: [agent.agent_id, other],
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    let status =
        match workflow::run::<ConversationStream>(&state, conversation_id, start, &ctx).await {
            Ok(_) => StatusCode::CREATED,
            // `StartDirect`'s only conflict is `AlreadyStarted`: the pair has its chat.
            Err(ApiError::Conflict(_)) => StatusCode::OK,
            Err(error) => return Err(error),
        };
    Ok((status, Json(ConversationCreated { conversation_id })).into_response())
}
