use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::metadata::{CustomerMetadata, LiveMetadata};
use crate::values::{Author, FileName, Name, NoteText, RatingComment, Score, Tag};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    Customer,
    Channel,
    Direct,
    /// A message a customer left when nobody could answer (`QueueEvent::MessageLeft`): never
    /// in a queue's line, answered by an agent later (by email, when email is set up).
    #[serde(rename = "left_message")]
    LeftMessage,
}

impl ConversationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Channel => "channel",
            Self::Direct => "direct",
            Self::LeftMessage => "left_message",
        }
    }

    /// Whether a customer is on the other side: a chat from a queue, or a left message.
    pub fn is_customers(self) -> bool {
        matches!(self, Self::Customer | Self::LeftMessage)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A participant ended it.
    Ended,
    /// The customer ended it while waiting in the queue.
    Abandoned,
    /// The customer stopped answering while waiting.
    Timeout,
}

/// Why a customer's personal data was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureReason {
    /// The customer asked (GDPR art. 17): an operator's route or `jono gdpr erase`.
    Request,
    /// The organization's `retention_days` passed since the conversation ended.
    Retention,
}

impl ErasureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Retention => "retention",
        }
    }
}

/// An uploaded file as messages refer to it. `name` is personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttachmentRef {
    pub attachment_id: Uuid,
    pub name: FileName,
    pub size: u64,
    pub content_type: String,
    /// SHA-256 of the bytes, hex: the stored file is checked against it.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum ConversationEvent {
    ConversationStarted {
        conversation_id: Uuid,
        organization_id: Uuid,
        kind: ConversationKind,
        queue_id: Option<Uuid>,
        /// A channel's name.
        name: Option<Name>,
        /// The two agents of a direct chat.
        participants: Vec<Uuid>,
        by: Option<Uuid>,
    },
    /// The conversation's agent, after `CustomerPicked` in the queue.
    AgentAssigned {
        conversation_id: Uuid,
        organization_id: Uuid,
        queue_id: Uuid,
        agent_id: Uuid,
    },
    /// Waiting again, in `queue_id`, after `ConversationTransferred` in that queue.
    ConversationRequeued {
        conversation_id: Uuid,
        organization_id: Uuid,
        queue_id: Uuid,
        transfer_id: Uuid,
    },
    /// `author.name`, `text` and the attachments' names are personal data.
    MessageSent {
        conversation_id: Uuid,
        organization_id: Uuid,
        message_id: Uuid,
        seq: u64,
        author: Author,
        text: String,
        attachments: Vec<AttachmentRef>,
    },
    AttachmentUploaded {
        conversation_id: Uuid,
        organization_id: Uuid,
        attachment: AttachmentRef,
        by: Author,
    },
    /// An agent has read the conversation up to message `seq`; never shown to a customer.
    ConversationRead {
        conversation_id: Uuid,
        organization_id: Uuid,
        agent_id: Uuid,
        seq: u64,
    },
    TagAdded {
        conversation_id: Uuid,
        organization_id: Uuid,
        tag: Tag,
        by: Author,
    },
    TagRemoved {
        conversation_id: Uuid,
        organization_id: Uuid,
        tag: Tag,
        by: Author,
    },
    NoteAdded {
        conversation_id: Uuid,
        organization_id: Uuid,
        note_id: Uuid,
        text: NoteText,
        by: Author,
    },
    CustomerMetadataSet {
        conversation_id: Uuid,
        organization_id: Uuid,
        metadata: CustomerMetadata,
        by: Author,
    },
    LiveMetadataUpdated {
        conversation_id: Uuid,
        organization_id: Uuid,
        live: LiveMetadata,
    },
    CallStarted {
        conversation_id: Uuid,
        organization_id: Uuid,
        call_id: Uuid,
        by: Author,
    },
    CallEnded {
        conversation_id: Uuid,
        organization_id: Uuid,
        call_id: Uuid,
        by: Author,
    },
    ConversationRated {
        conversation_id: Uuid,
        organization_id: Uuid,
        queue_id: Option<Uuid>,
        agent_id: Option<Uuid>,
        score: Score,
        comment: Option<RatingComment>,
    },
    ConversationEnded {
        conversation_id: Uuid,
        organization_id: Uuid,
        queue_id: Option<Uuid>,
        agent_id: Option<Uuid>,
        /// Ended before any agent picked it.
        was_waiting: bool,
        reason: EndReason,
        by: Author,
        /// When, by the clock of who ended it (absent in events from before reopening
        /// existed): a customer may reopen within the queue's `reopen_window_seconds` of it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
    },
    /// Active again with `agent_id`: an agent reopened the ended conversation (and is its agent
    /// now), or its customer wrote again within the queue's reopening window (and has its last
    /// agent back) instead of joining the back of the line.
    ConversationReopened {
        conversation_id: Uuid,
        organization_id: Uuid,
        queue_id: Option<Uuid>,
        agent_id: Uuid,
        by: Author,
    },
    /// The conversation is offered to teammate `to_agent_id` by its agent `from_agent_id` (or
    /// an operator `by`), until `expires_at`; it stays with its agent until accepted.
    HandoffOffered {
        conversation_id: Uuid,
        organization_id: Uuid,
        handoff_id: Uuid,
        queue_id: Option<Uuid>,
        from_agent_id: Option<Uuid>,
        to_agent_id: Uuid,
        expires_at: DateTime<Utc>,
        by: Author,
    },
    /// Teammate `agent_id` accepted: it is the conversation's agent now, instead of
    /// `from_agent_id`. `agent_name` is what the customer sees.
    HandoffAccepted {
        conversation_id: Uuid,
        organization_id: Uuid,
        handoff_id: Uuid,
        queue_id: Option<Uuid>,
        from_agent_id: Option<Uuid>,
        agent_id: Uuid,
        agent_name: String,
    },
    /// Teammate `agent_id` declined: the conversation stays with its agent.
    HandoffDeclined {
        conversation_id: Uuid,
        organization_id: Uuid,
        handoff_id: Uuid,
        queue_id: Option<Uuid>,
        from_agent_id: Option<Uuid>,
        agent_id: Uuid,
    },
    /// Teammate `agent_id` did not answer in time: the conversation stays with its agent.
    HandoffExpired {
        conversation_id: Uuid,
        organization_id: Uuid,
        handoff_id: Uuid,
        queue_id: Option<Uuid>,
        from_agent_id: Option<Uuid>,
        agent_id: Uuid,
    },
    /// The customer's personal data in this conversation is erased: read models blank it
    /// (`values::ERASED`), the gateway deletes what it keeps of it (files, kept answers,
    /// webhook bodies) and the store destroys the conversation's key. Nothing personal here;
    /// the conversation ended before it (in the same decision when it had not).
    CustomerErased {
        conversation_id: Uuid,
        organization_id: Uuid,
        queue_id: Option<Uuid>,
        by: Author,
        reason: ErasureReason,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ConversationStarted { .. } => "ConversationStarted",
            Self::AgentAssigned { .. } => "AgentAssigned",
            Self::ConversationRequeued { .. } => "ConversationRequeued",
            Self::MessageSent { .. } => "MessageSent",
            Self::AttachmentUploaded { .. } => "AttachmentUploaded",
            Self::ConversationRead { .. } => "ConversationRead",
            Self::TagAdded { .. } => "TagAdded",
            Self::TagRemoved { .. } => "TagRemoved",
            Self::NoteAdded { .. } => "NoteAdded",
            Self::CustomerMetadataSet { .. } => "CustomerMetadataSet",
            Self::LiveMetadataUpdated { .. } => "LiveMetadataUpdated",
            Self::CallStarted { .. } => "CallStarted",
            Self::CallEnded { .. } => "CallEnded",
            Self::ConversationRated { .. } => "ConversationRated",
            Self::ConversationEnded { .. } => "ConversationEnded",
            Self::ConversationReopened { .. } => "ConversationReopened",
            Self::HandoffOffered { .. } => "HandoffOffered",
            Self::HandoffAccepted { .. } => "HandoffAccepted",
            Self::HandoffDeclined { .. } => "HandoffDeclined",
            Self::HandoffExpired { .. } => "HandoffExpired",
            Self::CustomerErased { .. } => "CustomerErased",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
