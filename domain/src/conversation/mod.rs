//! `Conversation`: a customer conversation (from a queue), a channel of an organization, or a
//! direct chat of two agents. Messages get a `seq` from 1 in this stream; attachments, tags,
//! notes, metadata, calls, the rating and the end are recorded here. Who *waits* is not: that is
//! the queue's alone, and this stream learns of a pick or a transfer from the process manager.

mod commands;
mod errors;
mod events;
mod moves;

pub use commands::ConversationCommand;
pub use errors::ConversationError;
pub use events::{AttachmentRef, ConversationEvent, ConversationKind, EndReason, ErasureReason};
pub use moves::{EndFrom, TransferFrom};

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Author, AuthorKind};

/// One file may be at most this large (10 MiB).
pub const ATTACHMENT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// All files of one conversation together may be at most this large (100 MiB).
pub const CONVERSATION_ATTACHMENTS_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// A message may carry at most this many attachments.
pub const ATTACHMENTS_PER_MESSAGE: usize = 10;
/// How many of the latest message ids a conversation remembers to refuse a repeated one.
///
/// The gateway makes every message id itself (`Uuid::new_v4()` per request; a left message's
/// first one is derived from its conversation), so a client never picks one and a repeat can
/// only be the same command run again: a retry within moments, a handful of sends later at
/// most. Longer retries are a request's idempotency key's to answer, before any command runs.
/// Remembering every id ever sent would make the state, and its snapshot, grow with the
/// conversation's history; the last 64 are a window no retry outlives.
pub const RECENT_MESSAGE_IDS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Waiting,
    Active,
    Ended,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Option<Uuid>,
    pub organization_id: Uuid,
    pub kind: Option<ConversationKind>,
    pub queue_id: Option<Uuid>,
    pub status: Option<Status>,
    pub agent_id: Option<Uuid>,
    /// The two agents of a direct chat.
    pub participants: BTreeSet<Uuid>,
    pub last_seq: u64,
    /// The ids of the latest messages, oldest first, at most [`RECENT_MESSAGE_IDS`] of them.
    #[serde(default)]
    pub recent_message_ids: VecDeque<Uuid>,
    pub attachments: BTreeMap<Uuid, AttachmentRef>,
    pub attachment_bytes: u64,
    pub tags: BTreeSet<crate::values::Tag>,
    pub notes: BTreeSet<Uuid>,
    /// Transfers already followed.
    pub transfers: BTreeSet<Uuid>,
    pub calls: BTreeMap<Uuid, bool>,
    pub rated: bool,
    /// How far each agent has read (`ConversationRead`): one entry per agent who read it.
    #[serde(default)]
    pub read_by: BTreeMap<Uuid, u64>,
    /// When it ended, if its end said so (for a customer's reopening window).
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// The open handoff to a teammate, if any.
    #[serde(default)]
    pub handoff: Option<OpenHandoff>,
    /// The customer's personal data is erased (`CustomerErased`): nothing personal is added
    /// again.
    #[serde(default)]
    pub erased: bool,
}

/// A handoff offered and not yet accepted, declined or replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenHandoff {
    pub handoff_id: Uuid,
    pub to_agent_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

impl Conversation {
    fn require_started(&self) -> Result<(Uuid, ConversationKind), ConversationError> {
        match (self.id, self.kind) {
            (Some(id), Some(kind)) => Ok((id, kind)),
            _ => Err(ConversationError::UnknownConversation),
        }
    }

    fn require_not_ended(&self) -> Result<(), ConversationError> {
        if self.status == Some(Status::Ended) {
            Err(ConversationError::ConversationEnded)
        } else {
            Ok(())
        }
    }

    /// Refuses what would add personal data to an erased conversation.
    fn require_not_erased(&self) -> Result<(), ConversationError> {
        if self.erased {
            Err(ConversationError::Erased)
        } else {
            Ok(())
        }
    }

    /// Agents act on any conversation they may see (the gateway checks membership); a customer
    /// only on its own; in a direct chat only its two agents.
    fn check_author(&self, author: &Author) -> Result<(), ConversationError> {
        let (id, kind) = self.require_started()?;
        match author.kind {
            AuthorKind::System => Ok(()),
            AuthorKind::Customer if kind.is_customers() && author.id == id => Ok(()),
            AuthorKind::Customer => Err(ConversationError::NotAParticipant),
            AuthorKind::Agent
                if kind == ConversationKind::Direct && !self.participants.contains(&author.id) =>
            {
                Err(ConversationError::NotAParticipant)
            }
            AuthorKind::Agent => Ok(()),
        }
    }

    fn require_agent(author: &Author) -> Result<(), ConversationError> {
        if author.kind == AuthorKind::Customer {
            Err(ConversationError::AgentsOnly)
        } else {
            Ok(())
        }
    }

    /// The open handoff, if it names `agent_id` (and the conversation is still active).
    fn open_handoff_of(&self, agent_id: Uuid) -> Result<OpenHandoff, ConversationError> {
        self.require_not_ended()?;
        match &self.handoff {
            None => Err(ConversationError::NoHandoffOpen),
            Some(handoff) if handoff.to_agent_id != agent_id => {
                Err(ConversationError::NotYourHandoff)
            }
            Some(handoff) => Ok(handoff.clone()),
        }
    }

    /// A chat from a queue: what waits in lines, is picked, rated and watched live.
    fn require_customer_kind(kind: ConversationKind) -> Result<(), ConversationError> {
        if kind == ConversationKind::Customer {
            Ok(())
        } else {
            Err(ConversationError::NotACustomerConversation)
        }
    }

    /// A customer on the other side: a chat, or a left message.
    fn require_customers(kind: ConversationKind) -> Result<(), ConversationError> {
        if kind.is_customers() {
            Ok(())
        } else {
            Err(ConversationError::NotACustomerConversation)
        }
    }
}

impl crate::Snapshot for Conversation {
    /// 2: only the latest message ids (`recent_message_ids`), not every one ever sent.
    const SNAPSHOT_VERSION: u32 = 2;
}

impl Aggregate for Conversation {
    const TYPE: &'static str = "conversation";
    type Command = ConversationCommand;
    type Event = ConversationEvent;
    type Error = ConversationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use ConversationCommand as C;
        use ConversationEvent as E;
        match command {
            C::StartCustomerConversation {
                conversation_id,
                organization_id,
                queue_id,
                welcome_message,
                metadata,
            } => {
                if self.id.is_some() {
                    return Err(ConversationError::AlreadyStarted);
                }
                let started = E::ConversationStarted {
                    conversation_id,
                    organization_id,
                    kind: ConversationKind::Customer,
                    queue_id: Some(queue_id),
                    name: None,
                    participants: Vec::new(),
                    by: None,
                };
                sink.write(started, self).await;
                if !metadata.is_empty() {
                    let by =
                        Author::customer(conversation_id, metadata.name().unwrap_or("Customer"));
                    let set = E::CustomerMetadataSet {
                        conversation_id,
                        organization_id,
                        metadata,
                        by,
                    };
                    sink.write(set, self).await;
                }
                if let Some(text) = welcome_message {
                    let message = E::MessageSent {
                        conversation_id,
                        organization_id,
                        message_id: Uuid::new_v5(&conversation_id, b"welcome"),
                        seq: self.last_seq + 1,
                        author: Author::system(),
                        text: text.as_str().to_owned(),
                        attachments: Vec::new(),
                    };
                    sink.write(message, self).await;
                }
            }
            C::LeaveMessage {
                conversation_id,
                organization_id,
                queue_id,
                metadata,
                message_id,
                text,
            } => {
                if self.id.is_some() {
                    return Err(ConversationError::AlreadyStarted);
                }
                let started = E::ConversationStarted {
                    conversation_id,
                    organization_id,
                    kind: ConversationKind::LeftMessage,
                    queue_id: Some(queue_id),
                    name: None,
                    participants: Vec::new(),
                    by: None,
                };
                sink.write(started, self).await;
                let author =
                    Author::customer(conversation_id, metadata.name().unwrap_or("Customer"));
                if !metadata.is_empty() {
                    let set = E::CustomerMetadataSet {
                        conversation_id,
                        organization_id,
                        metadata,
                        by: author.clone(),
                    };
                    sink.write(set, self).await;
                }
                let message = E::MessageSent {
                    conversation_id,
                    organization_id,
                    message_id,
                    seq: self.last_seq + 1,
                    author,
                    text: text.as_str().to_owned(),
                    attachments: Vec::new(),
                };
                sink.write(message, self).await;
            }
            C::StartChannel {
                conversation_id,
                organization_id,
                name,
                by,
            } => {
                if self.id.is_some() {
                    return Err(ConversationError::AlreadyStarted);
                }
                let started = E::ConversationStarted {
                    conversation_id,
                    organization_id,
                    kind: ConversationKind::Channel,
                    queue_id: None,
                    name: Some(name),
                    participants: Vec::new(),
                    by: Some(by),
                };
                sink.write(started, self).await;
            }
            C::StartDirect {
                conversation_id,
                organization_id,
                agents,
            } => {
                if self.id.is_some() {
                    return Err(ConversationError::AlreadyStarted);
                }
                let [a, b] = agents;
                if a == b {
                    return Err(ConversationError::DirectWithSelf);
                }
                if conversation_id != crate::ids::direct_conversation_id(organization_id, a, b) {
                    return Err(ConversationError::DirectIdNotOfPair);
                }
                let mut participants = vec![a, b];
                participants.sort();
                let started = E::ConversationStarted {
                    conversation_id,
                    organization_id,
                    kind: ConversationKind::Direct,
                    queue_id: None,
                    name: None,
                    participants,
                    by: Some(a),
                };
                sink.write(started, self).await;
            }
            C::AssignAgent { agent_id, queue_id } => {
                let (conversation_id, kind) = self.require_started()?;
                Self::require_customer_kind(kind)?;
                self.require_not_ended()?;
                // A pick takes a waiting customer, so an active conversation has had its pick
                // assigned already: this is that follow-up again, or a late one from before a
                // transfer, which must not take the conversation from its current agent.
                if self.status == Some(Status::Active) {
                    return Err(ConversationError::AlreadyAssigned);
                }
                // A late pick from the queue it waited in before a transfer.
                if self.queue_id != Some(queue_id) {
                    return Err(ConversationError::AlreadyAssigned);
                }
                let organization_id = self.organization_id;
                let event = E::AgentAssigned {
                    conversation_id,
                    organization_id,
                    queue_id,
                    agent_id,
                };
                sink.write(event, self).await;
            }
            C::Requeue {
                queue_id,
                transfer_id,
                from_agent_id,
            } => {
                let (conversation_id, kind) = self.require_started()?;
                Self::require_customer_kind(kind)?;
                self.require_not_ended()?;
                // A repeat of a transfer already followed (the gateway's run and the feed's)
                // must not put a conversation picked since then back to waiting.
                if self.transfers.contains(&transfer_id) {
                    return Err(ConversationError::AlreadyWaiting);
                }
                // A picked conversation is transferred by its agent's side once: a second
                // transfer decided on the same view (to another queue) finds it waiting, or
                // with another agent, and is refused — it would wait in two lines.
                if let Some(agent) = from_agent_id {
                    if self.status != Some(Status::Active) || self.agent_id != Some(agent) {
                        return Err(ConversationError::NoLongerWithAgent);
                    }
                }
                let organization_id = self.organization_id;
                sink.write(
                    E::ConversationRequeued {
                        conversation_id,
                        organization_id,
                        queue_id,
                        transfer_id,
                    },
                    self,
                )
                .await;
            }
            C::SendMessage {
                message_id,
                author,
                text,
                attachments,
            } => {
                let (conversation_id, kind) = self.require_started()?;
                self.check_author(&author)?;
                self.require_not_erased()?;
                self.require_not_ended()?;
                if self.recent_message_ids.contains(&message_id) {
                    return Err(ConversationError::DuplicateMessage);
                }
                if kind == ConversationKind::LeftMessage && author.is_customer() {
                    return Err(ConversationError::LeftMessageIsAnswered);
                }
                if attachments.len() > ATTACHMENTS_PER_MESSAGE {
                    return Err(ConversationError::TooManyAttachments);
                }
                if text.is_none() && attachments.is_empty() {
                    return Err(ConversationError::EmptyMessage);
                }
                let mut refs = Vec::with_capacity(attachments.len());
                for attachment_id in attachments {
                    let found = self.attachments.get(&attachment_id);
                    refs.push(found.cloned().ok_or(ConversationError::UnknownAttachment)?);
                }
                // The first agent to answer a left message is its agent.
                if let (ConversationKind::LeftMessage, Some(Status::Waiting), Some(queue_id)) =
                    (kind, self.status, self.queue_id)
                {
                    if author.kind == AuthorKind::Agent {
                        let assigned = E::AgentAssigned {
                            conversation_id,
                            organization_id: self.organization_id,
                            queue_id,
                            agent_id: author.id,
                        };
                        sink.write(assigned, self).await;
                    }
                }
                let event = E::MessageSent {
                    conversation_id,
                    organization_id: self.organization_id,
                    message_id,
                    seq: self.last_seq + 1,
                    author,
                    text: text.map(String::from).unwrap_or_default(),
                    attachments: refs,
                };
                sink.write(event, self).await;
            }
            C::UploadAttachment { attachment, by } => {
                let (conversation_id, _) = self.require_started()?;
                self.check_author(&by)?;
                self.require_not_erased()?;
                self.require_not_ended()?;
                if self.attachments.contains_key(&attachment.attachment_id) {
                    return Err(ConversationError::DuplicateAttachment);
                }
                if attachment.size > ATTACHMENT_MAX_BYTES {
                    return Err(ConversationError::AttachmentTooLarge);
                }
                if self.attachment_bytes + attachment.size > CONVERSATION_ATTACHMENTS_MAX_BYTES {
                    return Err(ConversationError::AttachmentQuotaExceeded);
                }
                let organization_id = self.organization_id;
                let event = E::AttachmentUploaded {
                    conversation_id,
                    organization_id,
                    attachment,
                    by,
                };
                sink.write(event, self).await;
            }
            C::MarkRead { seq, by } => {
                let (conversation_id, _) = self.require_started()?;
                self.check_author(&by)?;
                Self::require_agent(&by)?;
                if seq > self.last_seq {
                    return Err(ConversationError::ReadPastTheEnd);
                }
                // Reading an older message again changes nothing: no event.
                if seq > self.read_by.get(&by.id).copied().unwrap_or(0) {
                    let organization_id = self.organization_id;
                    let event = E::ConversationRead {
                        conversation_id,
                        organization_id,
                        agent_id: by.id,
                        seq,
                    };
                    sink.write(event, self).await;
                }
            }
            C::AddTag { tag, by } => {
                let (conversation_id, _) = self.require_started()?;
                self.check_author(&by)?;
                Self::require_agent(&by)?;
                if !self.tags.contains(&tag) {
                    let organization_id = self.organization_id;
                    let event = E::TagAdded {
                        conversation_id,
                        organization_id,
                        tag,
                        by,
                    };
                    sink.write(event, self).await;
                }
            }
            C::RemoveTag { tag, by } => {
                let (conversation_id, _) = self.require_started()?;
                self.check_author(&by)?;
                Self::require_agent(&by)?;
                if self.tags.contains(&tag) {
                    let organization_id = self.organization_id;
                    let event = E::TagRemoved {
                        conversation_id,
                        organization_id,
                        tag,
                        by,
                    };
                    sink.write(event, self).await;
                }
            }
            C::AddNote { note_id, text, by } => {
                let (conversation_id, _) = self.require_started()?;
                self.check_author(&by)?;
                self.require_not_erased()?;
                Self::require_agent(&by)?;
                if self.notes.contains(&note_id) {
                    return Err(ConversationError::DuplicateNote);
                }
                let organization_id = self.organization_id;
                let event = E::NoteAdded {
                    conversation_id,
                    organization_id,
                    note_id,
                    text,
                    by,
                };
                sink.write(event, self).await;
            }
            C::SetCustomerMetadata { metadata, by } => {
                let (conversation_id, kind) = self.require_started()?;
                self.check_author(&by)?;
                self.require_not_erased()?;
                Self::require_customers(kind)?;
                // Agents may still correct it afterwards; the customer's word ends with the
                // conversation.
                if by.is_customer() {
                    self.require_not_ended()?;
                }
                let organization_id = self.organization_id;
                let event = E::CustomerMetadataSet {
                    conversation_id,
                    organization_id,
                    metadata,
                    by,
                };
                sink.write(event, self).await;
            }
            C::UpdateLiveMetadata { live, by } => {
                let (conversation_id, kind) = self.require_started()?;
                self.check_author(&by)?;
                self.require_not_erased()?;
                Self::require_customer_kind(kind)?;
                if !by.is_customer() {
                    return Err(ConversationError::CustomerOnly);
                }
                self.require_not_ended()?;
                let organization_id = self.organization_id;
                let event = E::LiveMetadataUpdated {
                    conversation_id,
                    organization_id,
                    live,
                };
                sink.write(event, self).await;
            }
            C::StartCall { call_id, by } => {
                let (conversation_id, _) = self.require_started()?;
                self.check_author(&by)?;
                self.require_not_ended()?;
                if self.calls.contains_key(&call_id) {
                    return Err(ConversationError::DuplicateCall);
                }
                if self.calls.values().any(|ongoing| *ongoing) {
                    return Err(ConversationError::CallInProgress);
                }
                let organization_id = self.organization_id;
                sink.write(
                    E::CallStarted {
                        conversation_id,
                        organization_id,
                        call_id,
                        by,
                    },
                    self,
                )
                .await;
            }
            C::EndCall { call_id, by } => {
                let (conversation_id, _) = self.require_started()?;
                self.check_author(&by)?;
                match self.calls.get(&call_id) {
                    None => return Err(ConversationError::UnknownCall),
                    Some(false) => return Err(ConversationError::CallEnded),
                    Some(true) => {}
                }
                let organization_id = self.organization_id;
                sink.write(
                    E::CallEnded {
                        conversation_id,
                        organization_id,
                        call_id,
                        by,
                    },
                    self,
                )
                .await;
            }
            C::Rate { score, comment, by } => {
                let (conversation_id, kind) = self.require_started()?;
                self.check_author(&by)?;
                self.require_not_erased()?;
                Self::require_customer_kind(kind)?;
                if !by.is_customer() {
                    return Err(ConversationError::CustomerOnly);
                }
                if self.rated {
                    return Err(ConversationError::AlreadyRated);
                }
                let event = E::ConversationRated {
                    conversation_id,
                    organization_id: self.organization_id,
                    queue_id: self.queue_id,
                    agent_id: self.agent_id,
                    score,
                    comment,
                };
                sink.write(event, self).await;
            }
            C::EndConversation {
                by,
                reason,
                left_queue,
                at,
            } => {
                let (conversation_id, kind) = self.require_started()?;
                self.check_author(&by)?;
                Self::require_customers(kind)?;
                self.require_not_ended()?;
                // Waiting is being in a queue's line, and the queue decides who waits: the
                // conversation ends after the line let it go, not behind the queue's back. A
                // left message waits in no line.
                if kind == ConversationKind::Customer
                    && self.status == Some(Status::Waiting)
                    && left_queue != self.queue_id
                {
                    return Err(ConversationError::StillWaiting);
                }
                let event = E::ConversationEnded {
                    conversation_id,
                    organization_id: self.organization_id,
                    queue_id: self.queue_id,
                    agent_id: self.agent_id,
                    was_waiting: self.status == Some(Status::Waiting),
                    reason,
                    by,
                    at,
                };
                sink.write(event, self).await;
            }
            C::Reopen {
                by,
                at,
                within_seconds,
            } => {
                let (conversation_id, kind) = self.require_started()?;
                self.check_author(&by)?;
                Self::require_customers(kind)?;
                self.require_not_erased()?;
                if self.status != Some(Status::Ended) {
                    return Err(ConversationError::NotEnded);
                }
                let agent_id = if by.is_customer() {
                    // Back to the agent it had, within the window; a conversation that never
                    // had one goes to the back of a line by a new join instead.
                    let within =
                        within_seconds.map(|seconds| chrono::Duration::seconds(seconds.into()));
                    let in_time = match (within, self.ended_at) {
                        (Some(within), Some(ended_at)) => at - ended_at <= within,
                        _ => false,
                    };
                    match self.agent_id {
                        Some(agent_id) if in_time => agent_id,
                        _ => return Err(ConversationError::ReopenWindowPassed),
                    }
                } else {
                    Self::require_agent(&by)?;
                    by.id
                };
                let event = E::ConversationReopened {
                    conversation_id,
                    organization_id: self.organization_id,
                    queue_id: self.queue_id,
                    agent_id,
                    by,
                };
                sink.write(event, self).await;
            }
            C::OfferHandoff {
                handoff_id,
                to_agent_id,
                by,
                expires_at,
            } => {
                let (conversation_id, kind) = self.require_started()?;
                self.check_author(&by)?;
                Self::require_agent(&by)?;
                Self::require_customer_kind(kind)?;
                self.require_not_erased()?;
                self.require_not_ended()?;
                let Some(from_agent_id) = self
                    .agent_id
                    .filter(|_| self.status == Some(Status::Active))
                else {
                    return Err(ConversationError::NotHandedOver);
                };
                if from_agent_id == to_agent_id {
                    return Err(ConversationError::HandoffToItsAgent);
                }
                let event = E::HandoffOffered {
                    conversation_id,
                    organization_id: self.organization_id,
                    handoff_id,
                    queue_id: self.queue_id,
                    from_agent_id: Some(from_agent_id),
                    to_agent_id,
                    expires_at,
                    by,
                };
                sink.write(event, self).await;
            }
            C::AcceptHandoff {
                agent_id,
                agent_name,
                now,
            } => {
                let (conversation_id, _) = self.require_started()?;
                self.require_not_erased()?;
                let handoff = self.open_handoff_of(agent_id)?;
                if now > handoff.expires_at {
                    return Err(ConversationError::HandoffExpired);
                }
                let event = E::HandoffAccepted {
                    conversation_id,
                    organization_id: self.organization_id,
                    handoff_id: handoff.handoff_id,
                    queue_id: self.queue_id,
                    from_agent_id: self.agent_id,
                    agent_id,
                    agent_name,
                };
                sink.write(event, self).await;
            }
            C::DeclineHandoff { agent_id } => {
                let (conversation_id, _) = self.require_started()?;
                let handoff = self.open_handoff_of(agent_id)?;
                let event = E::HandoffDeclined {
                    conversation_id,
                    organization_id: self.organization_id,
                    handoff_id: handoff.handoff_id,
                    queue_id: self.queue_id,
                    from_agent_id: self.agent_id,
                    agent_id,
                };
                sink.write(event, self).await;
            }
            C::ExpireHandoff { handoff_id, now } => {
                let (conversation_id, _) = self.require_started()?;
                self.require_not_ended()?;
                let handoff = match &self.handoff {
                    Some(handoff) if handoff.handoff_id == handoff_id => handoff.clone(),
                    _ => return Err(ConversationError::NoHandoffOpen),
                };
                if now <= handoff.expires_at {
                    return Err(ConversationError::HandoffNotDue);
                }
                let event = E::HandoffExpired {
                    conversation_id,
                    organization_id: self.organization_id,
                    handoff_id,
                    queue_id: self.queue_id,
                    from_agent_id: self.agent_id,
                    agent_id: handoff.to_agent_id,
                };
                sink.write(event, self).await;
            }
            C::EraseCustomer { by, reason, at } => {
                let (conversation_id, kind) = self.require_started()?;
                Self::require_customers(kind)?;
                if self.erased {
                    return Ok(());
                }
                // Waiting is being in a queue's line, which the queue decides: the caller
                // takes the customer out of the line first (as an end does).
                if kind == ConversationKind::Customer && self.status == Some(Status::Waiting) {
                    return Err(ConversationError::StillWaiting);
                }
                let organization_id = self.organization_id;
                // An erased conversation is over: nothing personal may be added to it again.
                if self.status != Some(Status::Ended) {
                    let ended = E::ConversationEnded {
                        conversation_id,
                        organization_id,
                        queue_id: self.queue_id,
                        agent_id: self.agent_id,
                        was_waiting: self.status == Some(Status::Waiting),
                        reason: EndReason::Ended,
                        by: by.clone(),
                        at: Some(at),
                    };
                    sink.write(ended, self).await;
                }
                let erased = E::CustomerErased {
                    conversation_id,
                    organization_id,
                    queue_id: self.queue_id,
                    by,
                    reason,
                    at,
                };
                sink.write(erased, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use ConversationEvent as E;
        match event {
            E::ConversationStarted {
                conversation_id,
                organization_id,
                kind,
                queue_id,
                participants,
                ..
            } => {
                self.id = Some(conversation_id);
                self.organization_id = organization_id;
                self.kind = Some(kind);
                self.queue_id = queue_id;
                self.participants = participants.into_iter().collect();
                self.status = Some(match kind {
                    ConversationKind::Customer | ConversationKind::LeftMessage => Status::Waiting,
                    ConversationKind::Channel | ConversationKind::Direct => Status::Active,
                });
            }
            E::AgentAssigned {
                agent_id, queue_id, ..
            } => {
                self.agent_id = Some(agent_id);
                self.queue_id = Some(queue_id);
                self.status = Some(Status::Active);
            }
            E::ConversationRequeued {
                queue_id,
                transfer_id,
                ..
            } => {
                self.transfers.insert(transfer_id);
                self.handoff = None;
                self.agent_id = None;
                self.queue_id = Some(queue_id);
                self.status = Some(Status::Waiting);
            }
            E::MessageSent {
                message_id,
                seq,
                author,
                ..
            } => {
                self.last_seq = seq;
                if self.recent_message_ids.len() == RECENT_MESSAGE_IDS {
                    self.recent_message_ids.pop_front();
                }
                self.recent_message_ids.push_back(message_id);
                // An agent has read what it wrote, and everything before it.
                if author.kind == AuthorKind::Agent {
                    self.read_by.insert(author.id, seq);
                }
            }
            E::AttachmentUploaded { attachment, .. } => {
                self.attachment_bytes += attachment.size;
                self.attachments
                    .insert(attachment.attachment_id, attachment);
            }
            E::TagAdded { tag, .. } => {
                self.tags.insert(tag);
            }
            E::ConversationRead { agent_id, seq, .. } => {
                self.read_by.insert(agent_id, seq);
            }
            E::TagRemoved { tag, .. } => {
                self.tags.remove(&tag);
            }
            E::NoteAdded { note_id, .. } => {
                self.notes.insert(note_id);
            }
            E::CustomerMetadataSet { .. } | E::LiveMetadataUpdated { .. } => {}
            E::CallStarted { call_id, .. } => {
                self.calls.insert(call_id, true);
            }
            E::CallEnded { call_id, .. } => {
                self.calls.insert(call_id, false);
            }
            E::ConversationRated { .. } => self.rated = true,
            E::HandoffOffered {
                handoff_id,
                to_agent_id,
                expires_at,
                ..
            } => {
                self.handoff = Some(OpenHandoff {
                    handoff_id,
                    to_agent_id,
                    expires_at,
                });
            }
            E::HandoffAccepted { agent_id, .. } => {
                self.agent_id = Some(agent_id);
                self.handoff = None;
            }
            E::HandoffDeclined { .. } | E::HandoffExpired { .. } => self.handoff = None,
            E::ConversationReopened { agent_id, .. } => {
                self.status = Some(Status::Active);
                self.agent_id = Some(agent_id);
                self.ended_at = None;
            }
            E::CustomerErased { .. } => {
                self.erased = true;
                // Cached aggregates and snapshots keep no file names of the erased customer.
                if let Ok(erased) = crate::values::FileName::parse(crate::values::ERASED) {
                    for attachment in self.attachments.values_mut() {
                        attachment.name = erased.clone();
                    }
                }
            }
            E::ConversationEnded { at, .. } => {
                self.handoff = None;
                self.ended_at = at;
                self.status = Some(Status::Ended);
                for ongoing in self.calls.values_mut() {
                    *ongoing = false;
                }
            }
        }
    }
}
