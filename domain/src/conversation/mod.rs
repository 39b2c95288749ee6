//! `Conversation`: a customer conversation (from a queue), a channel of an organization, or a
//! direct chat of two agents. Messages get a `seq` from 1 in this stream; attachments, tags,
//! notes, metadata, calls, the rating and the end are recorded here. Who *waits* is not: that is
//! the queue's alone, and this stream learns of a pick or a transfer from the process manager.
//!
//! This file holds the state, the checks every command shares, `handle`'s dispatch and `apply`;
//! each command is decided in the file of its concept: `start.rs` (the four ways to begin),
//! `assignment.rs` (a pick, a transfer back to waiting), `messages.rs` (messages, attachments,
//! reading), `annotations.rs` (tags, notes, metadata), `calls.rs`, `handoff.rs`, `end.rs` (the end,
//! the rating, reopening, erasure); `moves.rs` says where a transfer or an end starts.

mod annotations;
mod assignment;
mod calls;
mod commands;
mod end;
mod errors;
mod events;
mod handoff;
mod messages;
mod moves;
mod start;

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

use self::handoff::Offer;
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

/// A conversation's traffic: what is said, read, noted, tagged, sent or called in it, as
/// opposed to where it waits and who has it. Most of a log; the readers that follow queues,
/// handoffs and routing (the gateway's sweeper and router) pass over these events without
/// their payloads.
pub const TRAFFIC: [&str; 10] = crate::event_types![
    "MessageSent",
    "ConversationRead",
    "NoteAdded",
    "TagAdded",
    "TagRemoved",
    "AttachmentUploaded",
    "CallStarted",
    "CallEnded",
    "CustomerMetadataSet",
    "LiveMetadataUpdated",
];

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

    fn remember_message(&mut self, message_id: Uuid, seq: u64, author: &Author) {
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

    /// Cached aggregates and snapshots keep no file names of the erased customer.
    fn forget_file_names(&mut self) {
        if let Ok(erased) = crate::values::FileName::parse(crate::values::ERASED) {
            for attachment in self.attachments.values_mut() {
                attachment.name = erased.clone();
            }
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
        match command {
            C::StartCustomerConversation { .. }
            | C::LeaveMessage { .. }
            | C::StartChannel { .. }
            | C::StartDirect { .. } => self.start(command, sink).await,
            C::AssignAgent { agent_id, queue_id } => {
                self.assign_agent(agent_id, queue_id, sink).await
            }
            C::Requeue {
                queue_id,
                transfer_id,
                from_agent_id,
            } => {
                self.requeue(queue_id, transfer_id, from_agent_id, sink)
                    .await
            }
            C::SendMessage {
                message_id,
                author,
                text,
                attachments,
            } => {
                self.send_message(message_id, author, text, attachments, sink)
                    .await
            }
            C::UploadAttachment { attachment, by } => {
                self.upload_attachment(attachment, by, sink).await
            }
            C::MarkRead { seq, by } => self.mark_read(seq, by, sink).await,
            C::AddTag { tag, by } => self.add_tag(tag, by, sink).await,
            C::RemoveTag { tag, by } => self.remove_tag(tag, by, sink).await,
            C::AddNote { note_id, text, by } => self.add_note(note_id, text, by, sink).await,
            C::SetCustomerMetadata { metadata, by } => {
                self.set_customer_metadata(metadata, by, sink).await
            }
            C::UpdateLiveMetadata { live, by } => self.update_live_metadata(live, by, sink).await,
            C::StartCall { call_id, by } => self.start_call(call_id, by, sink).await,
            C::EndCall { call_id, by } => self.end_call(call_id, by, sink).await,
            C::OfferHandoff {
                handoff_id,
                to_agent_id,
                by,
                expires_at,
                by_operator,
            } => {
                let offer = Offer {
                    handoff_id,
                    to_agent_id,
                    by,
                    expires_at,
                    by_operator,
                };
                self.offer_handoff(offer, sink).await
            }
            C::AcceptHandoff {
                agent_id,
                agent_name,
                now,
            } => self.accept_handoff(agent_id, agent_name, now, sink).await,
            C::DeclineHandoff { agent_id } => self.decline_handoff(agent_id, sink).await,
            C::ExpireHandoff { handoff_id, now } => {
                self.expire_handoff(handoff_id, now, sink).await
            }
            C::Rate { score, comment, by } => self.rate(score, comment, by, sink).await,
            C::EndConversation {
                by,
                reason,
                left_queue,
                at,
            } => {
                self.end_conversation(by, reason, left_queue, at, sink)
                    .await
            }
            C::Reopen {
                by,
                at,
                within_seconds,
            } => self.reopen(by, at, within_seconds, sink).await,
            C::EraseCustomer { by, reason, at } => self.erase_customer(by, reason, at, sink).await,
        }
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
            } => self.remember_message(message_id, seq, &author),
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
                self.forget_file_names();
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
