//! Calls within a conversation: one at a time, each started and ended once.

use cqrs_es::event_sink::EventSink;
use uuid::Uuid;

use super::{Conversation, ConversationError, ConversationEvent as E};
use crate::values::Author;

impl Conversation {
    pub(super) async fn start_call(
        &mut self,
        call_id: Uuid,
        by: Author,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn end_call(
        &mut self,
        call_id: Uuid,
        by: Author,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }
}
