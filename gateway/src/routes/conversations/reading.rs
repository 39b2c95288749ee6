//! Reading conversations: one (as an agent or as its customer), an organization's list with its
//! filters, a conversation's messages and notes, and a returning customer's other conversations.

use axum::extract::{Path, State};
use axum::Json;
use projections::conversations::read::ConversationFilter;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::view_for;
use super::wire::{self, agent_views, AgentConversation, ConversationView};
use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::error::ApiError;
use crate::extract::{path_id, PageQuery, Params};
use crate::openapi::{time_schema, uuid_schema, Route};
use crate::state::AppState;

/// Reading conversations and what they hold.
pub(super) fn routes() -> Vec<Route> {
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
    ]
}

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
