//! The end of a conversation and what may follow it: its rating, its reopening, and the
//! erasure of its customer's personal data.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use uuid::Uuid;

use super::{
    Conversation, ConversationError, ConversationEvent as E, ConversationKind, EndReason,
    ErasureReason, Status,
};
use crate::values::{Author, RatingComment, Score};

impl Conversation {
    pub(super) async fn rate(
        &mut self,
        score: Score,
        comment: Option<RatingComment>,
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
        Ok(())
    }

    pub(super) async fn end_conversation(
        &mut self,
        by: Author,
        reason: EndReason,
        left_queue: Option<Uuid>,
        at: Option<DateTime<Utc>>,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn reopen(
        &mut self,
        by: Author,
        at: DateTime<Utc>,
        within_seconds: Option<u32>,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
            let within = within_seconds.map(|seconds| chrono::Duration::seconds(seconds.into()));
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
        Ok(())
    }

    pub(super) async fn erase_customer(
        &mut self,
        by: Author,
        reason: ErasureReason,
        at: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }
}
