//! Conversations: reading one (as an agent or as its customer), an organization's list, messages,
//! tags, notes, metadata, calls, transfers, ending, reopening, rating, the transcript, and
//! starting channels and direct chats.
//!
//! Tenancy (invariant 8) is `access`'s: a conversation the caller may not see is 404, an agent's
//! thing asked by its own customer is 403. What a customer sees is an allow-list built here
//! (`customer_view`), never the agent's view with fields taken out, so a field added to the read
//! model cannot leak to it; notes are read only behind `access::agent_conversation`.
//!
//! A file per concept, each with its routes and their handlers: `reading.rs` (one conversation,
//! the list, messages, notes), `transcript.rs`, `messages.rs` (sending, read markers),
//! `annotations.rs` (tags and notes), `metadata.rs`, `moves.rs` (transfer, end, reopen, rating),
//! `calls.rs`, `channels.rs` (channels and direct chats); `wire.rs` their bodies and answers.

use axum::Extension;
use domain::values::Author;
use projections::conversations::read::Conversation;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::IdempotencyKey;
use crate::openapi::Routes;
use crate::state::AppState;

mod annotations;
mod calls;
mod channels;
mod messages;
mod metadata;
mod moves;
mod reading;
mod transcript;
pub mod wire;

pub(crate) use moves::end_conversation;
pub use transcript::customer_transcript;
pub use wire::{
    agent_views, AddNote, AddTag, AgentConversation, CallStarted, ConversationCreated,
    ConversationView, CustomerConversation, MessageSent, NoteAdded, Rate, ReadRequest, SendMessage,
    StartChannel, StartDirect, Transcript, Transfer,
};

/// Every route of conversations, in the contract's order.
pub fn routes() -> Routes {
    Routes::new("conversations")
        .extend(reading::routes())
        .extend(transcript::routes())
        .extend(messages::routes())
        .extend(annotations::routes())
        .extend(metadata::routes())
        .extend(moves::transfer_routes())
        .extend(calls::routes())
        .extend(moves::ending_routes())
        .extend(channels::routes())
}

type Key = Option<Extension<IdempotencyKey>>;

/// The name of an agent as others see it.
async fn agent_name(state: &AppState, agent_id: Uuid) -> Result<String, ApiError> {
    let account = projections::directory::read::account(state.backend(), agent_id).await?;
    Ok(account.map_or_else(
        || crate::auth::UNNAMED_AGENT.to_owned(),
        |account| account.name,
    ))
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
        Caller::Agent(agent) => {
            let name = match &agent.name {
                Some(name) => name.to_string(),
                None => agent_name(state, agent.agent_id).await?,
            };
            Ok(Author::agent(agent.agent_id, name))
        }
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
