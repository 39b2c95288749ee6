//! What is recorded about a conversation beside its messages: tags and notes (agents'), the
//! customer's metadata, and the live metadata of the page the customer is on.

use cqrs_es::event_sink::EventSink;
use uuid::Uuid;

use super::{Conversation, ConversationError, ConversationEvent as E};
use crate::metadata::{CustomerMetadata, LiveMetadata};
use crate::values::{Author, NoteText, Tag};

impl Conversation {
    pub(super) async fn add_tag(
        &mut self,
        tag: Tag,
        by: Author,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn remove_tag(
        &mut self,
        tag: Tag,
        by: Author,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn add_note(
        &mut self,
        note_id: Uuid,
        text: NoteText,
        by: Author,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn set_customer_metadata(
        &mut self,
        metadata: CustomerMetadata,
        by: Author,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn update_live_metadata(
        &mut self,
        live: LiveMetadata,
        by: Author,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }
}
