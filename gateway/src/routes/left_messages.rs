//! Left messages: when nobody can answer (the queue closed, outside its opening hours, full, or
//! — with the queue's `leave_message_when_offline` — none of its handlers online), the widget
//! offers a short form instead of the line, and the message becomes a conversation of kind
//! `left_message` in the queue, waiting for an agent to answer it later.
//!
//! - `POST /v1/queues/{queue}/messages {name?, email, text, metadata?}`: anyone, like a join
//!   (the queue's allowed sites, a blocked visitor refused, `limits::LEFT_MESSAGES` per address).
//!   The queue records that a message was left (`MessageLeft`, counted and shown to its agents);
//!   the words, the name and the email are the conversation's (personal data), in one append.
//! - An agent answers with an ordinary message; the first answer makes it the conversation's
//!   agent (the conversation decides). With email set up, each answer is emailed to the address
//!   the customer gave ([`mail_answer`]); without, the answer stays in Jono, and the console says
//!   so.
//! - [`nobody_answers`]: whether the widget should offer the form now, for the public face.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use domain::metadata::CustomerMetadata;
use domain::organization::{Organization, OrganizationCommand};
use domain::values::{DisplayName, Email, MessageText};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::client::ClientAddr;
use crate::error::{invalid, ApiError};
use crate::extract::Body;
use crate::limits;
use crate::mail::{self, Mail};
use crate::openapi::{Route, Routes};
use crate::presence;
use crate::secrets;
use crate::state::AppState;
use crate::workflow::{self, context};

pub fn routes() -> Routes {
    Routes::new("queues").route(
        Route::post("/v1/queues/{queue}/messages", leave)
            .id("leaveMessage")
            .summary("Leave a message when nobody can answer")
            .public()
            .describe(
                "Whenever the queue exists, open or not: the message becomes a conversation \
                     of kind `left_message` in the queue (status `waiting` until an agent \
                     answers, never in the line), shown to its agents. Agents answer with \
                     ordinary messages; with email set up each answer is emailed to `email`. 403 \
                     from a site not among its `allowed_origins` or for a blocked visitor; 422 \
                     for a bad email or text. Rate limited per address (`left-message`: 5 an \
                     hour).",
            )
            .body::<LeaveMessage>()
            .returns::<crate::routes::left_messages::MessageLeftResponse>(
                201,
                "The left message's conversation.",
            ),
    )
}

/// A message left for the queue's agents, when nobody can answer.
// The form's fields. `metadata` may carry more of the page's own (as a join's does); `name`
// and `email` are put into it.
#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(rename = "LeaveMessageRequest")]
pub struct LeaveMessage {
    /// Put into the conversation's metadata as `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where answers go, by email when the deployment sends email; put into the metadata as
    /// `email`.
    pub email: String,
    /// The message: 1 to 10,000 characters.
    pub text: String,
    /// More of the page's own, as a join's metadata: a JSON object (16 KiB in all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// The answer to a left message: its conversation, for the customer's own reference.
#[derive(Serialize, schemars::JsonSchema)]
pub struct MessageLeftResponse {
    pub conversation_id: Uuid,
    /// Whether an answer will come by email (the deployment has email set up); without it the
    /// widget says the message was received and nothing more.
    pub answer_by_email: bool,
}

async fn leave(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Body(body): Body<LeaveMessage>,
) -> Result<impl IntoResponse, ApiError> {
    limits::enforce(&state, limits::LEFT_MESSAGES, &format!("address:{address}")).await?;
    let queue = super::queues::customer_door(&state, &queue, &headers).await?;
    let email = Email::parse(&body.email).map_err(invalid)?;
    let text = MessageText::parse(&body.text).map_err(invalid)?;
    let name = match body.name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => Some(DisplayName::parse(name).map_err(invalid)?),
    };
    let mut fields = body.metadata.unwrap_or_default();
    if let Some(name) = &name {
        fields.insert("name".into(), Value::String(name.as_str().to_owned()));
    }
    fields.insert("email".into(), Value::String(email.as_str().to_owned()));
    let metadata = CustomerMetadata::parse(Value::Object(fields))?;
    let visitor = state.visitors.key_of(address);
    let admit = OrganizationCommand::AdmitVisitor {
        visitor: visitor.clone(),
        at: Utc::now(),
    };
    workflow::run::<Organization>(&state, queue.organization_id, admit, &context(None, None))
        .await?;
    let conversation_id = Uuid::new_v4();
    workflow::leave_message(
        &state,
        queue.id,
        conversation_id,
        metadata,
        text,
        &context(None, None),
    )
    .await?;
    secrets::remember_visitor(state.backend(), conversation_id, &visitor).await?;
    Ok((
        StatusCode::CREATED,
        Json(MessageLeftResponse {
            conversation_id,
            answer_by_email: state.settings.mail.is_some(),
        }),
    ))
}

/// Whether nobody can answer in `queue` now, so that its widget offers to leave a message: it
/// is closed (by hand or by its opening hours), full, or — when its settings ask — none of its
/// handlers is online.
pub async fn nobody_answers(
    state: &AppState,
    queue: &projections::queues::read::Queue,
) -> Result<bool, ApiError> {
    if !queue.open {
        return Ok(true);
    }
    let full = queue
        .settings
        .get("max_waiting")
        .and_then(Value::as_i64)
        .is_some_and(|max| queue.waiting >= max);
    if full {
        return Ok(true);
    }
    let when_offline = queue
        .settings
        .get("leave_message_when_offline")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !when_offline {
        return Ok(false);
    }
    let statuses = presence::statuses(state, &queue.handlers).await?;
    Ok(!statuses.values().any(|(_, status)| *status == "online"))
}

/// After an agent's message in a left message's conversation: the answer goes to the address
/// the customer gave, when email is set up. The message is durable already, so a failure to
/// queue the mail (the store failing between the two) is logged and counted as a warning, not
/// made the sender's error: its message stands.
pub async fn mail_answer(
    state: &AppState,
    conversation: &projections::conversations::read::Conversation,
    agent_name: &str,
    text: &str,
) {
    let Some(mailer) = state.settings.mail.clone() else {
        return;
    };
    let metadata = &conversation.customer.metadata;
    let Some(recipient) = metadata
        .get("email")
        .and_then(Value::as_str)
        .and_then(|email| Email::parse(email).ok())
    else {
        return;
    };
    let organization = match projections::directory::read::organization(
        state.backend(),
        conversation.organization_id,
    )
    .await
    {
        Ok(organization) => organization.map_or_else(String::new, |o| o.name),
        Err(error) => {
            tracing::warn!(%error, "not emailing an answer: the organization could not be read");
            return;
        }
    };
    let left = match projections::messages::read::messages(state.backend(), conversation.id, 0, 1)
        .await
    {
        Ok(messages) => messages
            .into_iter()
            .next()
            .map(|m| m.text)
            .unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%error, "not emailing an answer: the left message could not be read");
            return;
        }
    };
    let mail = Mail::Answer {
        organization,
        agent: agent_name.to_owned(),
        answer: text.to_owned(),
        left,
    };
    if let Err(error) = mail::queue(state, &mailer, recipient.as_str(), &mail).await {
        tracing::warn!(%error, conversation_id = %conversation.id, "an answer's email was not queued");
    }
}
