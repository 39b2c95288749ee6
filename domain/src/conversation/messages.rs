//! Messages, their attachments, and how far each agent has read.

use cqrs_es::event_sink::EventSink;
use uuid::Uuid;

use super::{
    AttachmentRef, Conversation, ConversationError, ConversationEvent as E, ConversationKind,
    Status, ATTACHMENTS_PER_MESSAGE, ATTACHMENT_MAX_BYTES, CONVERSATION_ATTACHMENTS_MAX_BYTES,
};
use crate::values::{Author, AuthorKind, MessageText};

impl Conversation {
    pub(super) async fn send_message(
        &mut self,
        message_id: Uuid,
        author: Author,
        text: Option<MessageText>,
        attachments: Vec<Uuid>,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn upload_attachment(
        &mut self,
        attachment: AttachmentRef,
        by: Author,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn mark_read(
        &mut self,
        seq: u64,
        by: Author,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }
}
