//! Handoffs: an agent offers its active customer conversation to a teammate, who accepts or
//! declines it, or lets it expire.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use uuid::Uuid;

use super::{Conversation, ConversationError, ConversationEvent as E, OpenHandoff, Status};
use crate::values::Author;

/// What `ConversationCommand::OfferHandoff` asks, handed to [`Conversation::offer_handoff`].
pub(super) struct Offer {
    pub(super) handoff_id: Uuid,
    pub(super) to_agent_id: Uuid,
    pub(super) by: Author,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) by_operator: bool,
}

impl Conversation {
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

    pub(super) async fn offer_handoff(
        &mut self,
        offer: Offer,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
        let Offer {
            handoff_id,
            to_agent_id,
            by,
            expires_at,
            by_operator,
        } = offer;
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
        if from_agent_id != by.id && !by_operator {
            return Err(ConversationError::NotYourConversation);
        }
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
        Ok(())
    }

    pub(super) async fn accept_handoff(
        &mut self,
        agent_id: Uuid,
        agent_name: String,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn decline_handoff(
        &mut self,
        agent_id: Uuid,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn expire_handoff(
        &mut self,
        handoff_id: Uuid,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }
}
