use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::events::{AttachmentRef, EndReason, ErasureReason};
use crate::metadata::{CustomerMetadata, LiveMetadata};
use crate::values::{
    Author, MessageText, Name, NoteText, RatingComment, Score, Tag, WelcomeMessage,
};

/// `by` / `author` is who acts. The gateway has checked that an agent is a member of the
/// conversation's organization; this stream checks the rest (a customer acts only on its own
/// conversation, a direct chat only for its two agents, notes and tags only for agents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum ConversationCommand {
    /// Given by the process manager when a customer joins a queue.
    StartCustomerConversation {
        conversation_id: Uuid,
        organization_id: Uuid,
        queue_id: Uuid,
        welcome_message: Option<WelcomeMessage>,
        metadata: CustomerMetadata,
    },
    /// A customer leaves a message (name, email and words in `metadata` and `text`), given in
    /// one append with the queue's `TakeMessage`.
    LeaveMessage {
        conversation_id: Uuid,
        organization_id: Uuid,
        queue_id: Uuid,
        metadata: CustomerMetadata,
        message_id: Uuid,
        text: MessageText,
    },
    StartChannel {
        conversation_id: Uuid,
        organization_id: Uuid,
        name: Name,
        by: Uuid,
    },
    /// `conversation_id` must be `ids::direct_conversation_id` of the pair; the first agent is
    /// the one who opens it.
    StartDirect {
        conversation_id: Uuid,
        organization_id: Uuid,
        agents: [Uuid; 2],
    },
    /// Given by the process manager after `CustomerPicked`.
    AssignAgent {
        agent_id: Uuid,
        queue_id: Uuid,
    },
    /// Given with `ConversationTransferred` (in the same append for a picked conversation, by
    /// the process manager after it otherwise): waiting again.
    Requeue {
        queue_id: Uuid,
        /// The transfer this follows; a late repeat of it is refused.
        transfer_id: Uuid,
        /// The agent a picked conversation was transferred from: it must still be that agent's
        /// (a second transfer decided on the same stale view is refused).
        from_agent_id: Option<Uuid>,
    },
    /// `text` may be absent when the message carries attachments.
    SendMessage {
        message_id: Uuid,
        author: Author,
        text: Option<MessageText>,
        attachments: Vec<Uuid>,
    },
    /// The bytes are stored outside the log; this records that they exist and how large.
    UploadAttachment {
        attachment: AttachmentRef,
        by: Author,
    },
    /// The agent `by` has read the conversation up to message `seq` (its unread count).
    MarkRead {
        seq: u64,
        by: Author,
    },
    AddTag {
        tag: Tag,
        by: Author,
    },
    RemoveTag {
        tag: Tag,
        by: Author,
    },
    AddNote {
        note_id: Uuid,
        text: NoteText,
        by: Author,
    },
    SetCustomerMetadata {
        metadata: CustomerMetadata,
        by: Author,
    },
    UpdateLiveMetadata {
        live: LiveMetadata,
        by: Author,
    },
    StartCall {
        call_id: Uuid,
        by: Author,
    },
    EndCall {
        call_id: Uuid,
        by: Author,
    },
    Rate {
        score: Score,
        comment: Option<RatingComment>,
        by: Author,
    },
    EndConversation {
        by: Author,
        reason: EndReason,
        /// The queue whose line the customer left (the process manager's follow-up of
        /// `CustomerLeftQueue`, or a caller the queue told it no longer waits there). A
        /// conversation waiting in a queue ends only with that queue named: otherwise it would
        /// end while a line still holds it.
        left_queue: Option<Uuid>,
        /// Now, by the caller's clock (for a customer's reopening window); `None` leaves the
        /// end without a time, and its customer cannot reopen it.
        at: Option<DateTime<Utc>>,
    },
    /// An ended conversation is active again. An agent reopens any customer conversation of
    /// its organization and becomes its agent; a customer only its own, with its last agent,
    /// and only within `within_seconds` (the queue's `reopen_window_seconds`; `None`: never)
    /// of its end at `at`.
    Reopen {
        by: Author,
        at: DateTime<Utc>,
        within_seconds: Option<u32>,
    },
    /// The conversation's agent (or an operator: `by_operator`, an owner or operator of the
    /// organization as its stream says) offers the active customer conversation to teammate
    /// `to_agent_id`, who accepts or declines it like an offer of auto routing; a new handoff
    /// replaces one still open.
    OfferHandoff {
        handoff_id: Uuid,
        to_agent_id: Uuid,
        by: Author,
        expires_at: DateTime<Utc>,
        #[serde(default)]
        by_operator: bool,
    },
    /// The named teammate takes the conversation (given in one append with its workload's
    /// `Take`): only while the handoff is open and not past its `expires_at` at `now`.
    /// `agent_name` is what the customer is told of its new agent.
    AcceptHandoff {
        agent_id: Uuid,
        agent_name: String,
        now: DateTime<Utc>,
    },
    /// The named teammate refuses it: the conversation stays with its agent.
    DeclineHandoff {
        agent_id: Uuid,
    },
    /// Given by the router when handoff `handoff_id` is past its `expires_at` at `now`
    /// unanswered: the conversation stays with its agent.
    ExpireHandoff {
        handoff_id: Uuid,
        now: DateTime<Utc>,
    },
    /// Erase the customer's personal data (an operator, the command line or the retention
    /// duty): a conversation with a customer only; one not ended ends first (by `by`, in the
    /// same decision); one erased already is left as it is (nothing appended).
    EraseCustomer {
        by: Author,
        reason: ErasureReason,
        at: DateTime<Utc>,
    },
}
