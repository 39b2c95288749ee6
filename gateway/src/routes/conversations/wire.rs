//! The wire types of the conversation routes: the bodies they take and the answers they return,
//! built from the read model's rows. The OpenAPI document references these same types.

use chrono::{DateTime, Utc};
use domain::conversation::ConversationKind;
use domain::values::AuthorKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::blobs::UrlSigner;

/// `{conversation_id}`: what starts or finds a conversation answers.
#[derive(Serialize, JsonSchema)]
pub struct ConversationCreated {
    pub conversation_id: Uuid,
}

pub use projections::conversations::read::ConversationStatus;

#[derive(Serialize, JsonSchema)]
pub struct CustomerData {
    /// Customer metadata (name, email, anything a pre-chat form asked).
    #[schemars(with = "Map<String, Value>")]
    pub metadata: Value,
    /// Live metadata (current page, and so on), last value wins.
    #[schemars(with = "Map<String, Value>")]
    pub live: Value,
    /// The returning customer its site vouched for (a verified signed identity); `null` for a
    /// guest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<Option<VerifiedCustomerView>>,
}

#[derive(Serialize, JsonSchema)]
pub struct VerifiedCustomerView {
    /// Stable per queue and site user: links the customer's conversations.
    pub customer_ref: Uuid,
    /// The site's own id for the user.
    pub user_id: String,
    pub name: Option<String>,
}

impl From<projections::conversations::read::VerifiedCustomer> for VerifiedCustomerView {
    fn from(row: projections::conversations::read::VerifiedCustomer) -> Self {
        Self {
            customer_ref: row.customer_ref,
            user_id: row.user_id,
            name: row.name,
        }
    }
}

/// A count or place the read model keeps as a signed integer; never negative.
fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

/// A conversation as an agent sees it.
// The fields after `participants` are always present (`null` when empty); the document calls
// them optional, as they came after API.md.
#[derive(Serialize, JsonSchema)]
pub struct AgentConversation {
    pub id: Uuid,
    pub kind: ConversationKind,
    /// A channel's name.
    pub name: Option<String>,
    pub organization_id: Uuid,
    pub queue_id: Option<Uuid>,
    pub status: ConversationStatus,
    pub agent_id: Option<Uuid>,
    pub customer: CustomerData,
    pub tags: Vec<String>,
    /// 1 = next; `null` unless waiting.
    pub queue_position: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub picked_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The two agents of a direct chat (so each side can name the other); empty otherwise.
    pub participants: Vec<Uuid>,
    /// The newest message's `seq` (0 without messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// When an agent first wrote in it (`null` before): the end of its first-response time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Option<DateTime<Utc>>>,
    /// In the organization's list: how many messages the caller has not read (after its
    /// `POST …/read` marker and its own last message); `null` elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<Option<u64>>,
    /// The handoff to a teammate still awaiting its answer (`null` without one): the
    /// teammate accepts or declines it (`POST …/handoff/accept`, `…/decline`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Option<HandoffView>>,
    /// When its customer's personal data was erased (`CustomerErased`; `null` unless it was):
    /// its texts, names and file names read `[erased]`, its metadata is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<Option<DateTime<Utc>>>,
}

impl From<projections::conversations::read::Conversation> for AgentConversation {
    fn from(row: projections::conversations::read::Conversation) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            name: row.name,
            organization_id: row.organization_id,
            queue_id: row.queue_id,
            status: row.status,
            agent_id: row.agent_id,
            customer: CustomerData {
                metadata: row.customer.metadata,
                live: row.customer.live,
                verified: Some(row.verified.map(Into::into)),
            },
            tags: row.tags,
            queue_position: row.queue_position.map(count),
            created_at: row.created_at,
            picked_at: row.picked_at,
            ended_at: row.ended_at,
            participants: row.participants,
            last_seq: Some(count(row.last_seq)),
            answered_at: Some(row.answered_at),
            unread: Some(row.unread.map(count)),
            handoff: Some(row.handoff.map(Into::into)),
            erased_at: Some(row.erased_at),
        }
    }
}

/// The agent views of a list of rows.
pub fn agent_views(
    rows: Vec<projections::conversations::read::Conversation>,
) -> Vec<AgentConversation> {
    rows.into_iter().map(Into::into).collect()
}

#[derive(Serialize, JsonSchema)]
pub struct HandoffView {
    pub handoff_id: Uuid,
    /// The teammate it is offered to.
    pub to_agent_id: Uuid,
    /// After this, accepting it is refused (409).
    pub expires_at: DateTime<Utc>,
}

impl From<projections::conversations::read::Handoff> for HandoffView {
    fn from(row: projections::conversations::read::Handoff) -> Self {
        Self {
            handoff_id: row.handoff_id,
            to_agent_id: row.to_agent_id,
            expires_at: row.expires_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct AgentName {
    pub name: String,
}

/// A conversation as its customer sees it: this and nothing else.
// An allow-list, never the agent's view with fields taken out, so a field added to the read
// model cannot leak to it.
#[derive(Serialize, JsonSchema)]
pub struct CustomerConversation {
    pub id: Uuid,
    pub kind: ConversationKind,
    pub status: ConversationStatus,
    pub queue_position: Option<u64>,
    /// `null` before the pick.
    pub agent: Option<AgentName>,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl CustomerConversation {
    /// The customer's view of `row`, whose agent (if any) is called `agent`.
    pub fn new(
        row: &projections::conversations::read::Conversation,
        agent: Option<String>,
    ) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            status: row.status,
            queue_position: row.queue_position.map(count),
            agent: agent.map(|name| AgentName { name }),
            created_at: row.created_at,
            ended_at: row.ended_at,
        }
    }
}

/// An agent's view, or its customer's.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ConversationView {
    Agent(Box<AgentConversation>),
    Customer(CustomerConversation),
}

#[derive(Serialize, JsonSchema)]
pub struct MessageAuthor {
    pub kind: AuthorKind,
    /// The agent's id, the conversation's id for its customer, the nil id for the system.
    pub id: Uuid,
    pub name: String,
}

/// An uploaded file.
#[derive(Serialize, JsonSchema)]
pub struct Attachment {
    pub attachment_id: Uuid,
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Sniffed from the bytes.
    pub content_type: String,
    /// Signed; expires in 1 hour; needs no token.
    pub url: String,
}

impl Attachment {
    /// An attachment as a message shows it, with a URL signed afresh for each read (it works
    /// for an hour; `blobs::UrlSigner`).
    pub fn new(
        signer: &UrlSigner,
        now: i64,
        row: projections::messages::read::MessageAttachment,
    ) -> Self {
        Self {
            url: signer.url(row.attachment_id, now),
            attachment_id: row.attachment_id,
            name: row.name,
            size: row.size,
            content_type: row.content_type,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct Message {
    /// Rising from 1 within the conversation.
    pub seq: u64,
    pub id: Uuid,
    pub author: MessageAuthor,
    pub text: String,
    pub attachments: Vec<Attachment>,
    pub sent_at: DateTime<Utc>,
}

impl Message {
    pub fn new(signer: &UrlSigner, now: i64, row: projections::messages::read::Message) -> Self {
        Self {
            seq: count(row.seq),
            id: row.id,
            author: MessageAuthor {
                kind: row.author.kind,
                id: row.author.id,
                name: row.author.name,
            },
            text: row.text,
            attachments: row
                .attachments
                .into_iter()
                .map(|attachment| Attachment::new(signer, now, attachment))
                .collect(),
            sent_at: row.sent_at,
        }
    }

    /// The views of `rows`, their URLs signed now.
    pub fn all(signer: &UrlSigner, rows: Vec<projections::messages::read::Message>) -> Vec<Self> {
        let now = Utc::now().timestamp();
        rows.into_iter()
            .map(|row| Self::new(signer, now, row))
            .collect()
    }
}

// `POST /v1/conversations/{c}/messages`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "SendMessageRequest")]
pub struct SendMessage {
    /// At most 10,000 characters; empty only when the message carries attachments.
    #[serde(default)]
    #[schemars(length(max = 10_000))]
    pub text: String,
    /// Attachments uploaded to this conversation.
    // Read as text: an id that is not even a UUID names no attachment of the conversation (422
    // as well).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<Uuid>>")]
    pub attachments: Option<Vec<String>>,
}

#[derive(Serialize, JsonSchema)]
pub struct MessageSent {
    pub message_id: Uuid,
    pub seq: u64,
}

// `POST /v1/conversations/{c}/attachments`: a `multipart/form-data` body.
#[derive(JsonSchema)]
pub struct UploadRequest {
    /// The one file.
    #[schemars(extend("contentMediaType" = "application/octet-stream"))]
    pub file: String,
}

// `POST /v1/conversations/{c}/tags`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "TagRequest")]
pub struct AddTag {
    #[schemars(length(min = 1, max = 64))]
    pub tag: String,
}

/// `POST /v1/conversations/{c}/read {seq}`: the agent has read up to message `seq`.
#[derive(Deserialize, Serialize, JsonSchema)]
pub struct ReadRequest {
    /// The newest message read; a message the conversation does not have yet is 422.
    pub seq: u64,
}

#[derive(Serialize, JsonSchema)]
pub struct NoteAuthor {
    pub id: Uuid,
    pub name: String,
}

/// A private note: never shown to a customer.
#[derive(Serialize, JsonSchema)]
pub struct Note {
    pub id: Uuid,
    pub author: NoteAuthor,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

impl From<projections::messages::read::Note> for Note {
    fn from(row: projections::messages::read::Note) -> Self {
        Self {
            id: row.id,
            author: NoteAuthor {
                id: row.author.id,
                name: row.author.name,
            },
            text: row.text,
            created_at: row.created_at,
        }
    }
}

// `POST /v1/conversations/{c}/notes`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "NoteRequest")]
pub struct AddNote {
    #[schemars(length(min = 1, max = 10_000))]
    pub text: String,
}

#[derive(Serialize, JsonSchema)]
pub struct NoteAdded {
    pub note_id: Uuid,
}

// `POST /v1/conversations/{c}/transfer`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "TransferRequest")]
pub struct Transfer {
    /// A queue of the same organization.
    pub queue_id: Uuid,
}

#[derive(Serialize, JsonSchema)]
pub struct CallStarted {
    pub call_id: Uuid,
}

// `POST /v1/conversations/{c}/rating`. The score is read as any number, so that one that is
// not a whole number from 1 to 5 is the conversation's own 422.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "RatingRequest")]
pub struct Rate {
    #[schemars(with = "u8", range(min = 1, max = 5))]
    pub score: serde_json::Number,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The whole conversation; `notes` only for agents.
#[derive(Serialize, JsonSchema)]
pub struct Transcript {
    pub conversation: ConversationView,
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<Note>>,
}

// `POST /v1/orgs/{org}/channels`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "ChannelRequest")]
pub struct StartChannel {
    pub name: String,
}

// `POST /v1/orgs/{org}/directs`. The id is read as text: one that is not a UUID is no member.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "DirectRequest")]
pub struct StartDirect {
    /// The other agent, a member of the organization.
    #[schemars(with = "Uuid")]
    pub agent_id: String,
}
