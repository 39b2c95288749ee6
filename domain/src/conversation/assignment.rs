//! The queue's decisions as this stream follows them: a pick assigns the conversation its
//! agent, a transfer puts it back to waiting in another line. Both are given by the process
//! manager (or with the queue's own command, in one append), and each may come late or twice.

use cqrs_es::event_sink::EventSink;
use uuid::Uuid;

use super::{Conversation, ConversationError, ConversationEvent as E, Status};

impl Conversation {
    pub(super) async fn assign_agent(
        &mut self,
        agent_id: Uuid,
        queue_id: Uuid,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }

    pub(super) async fn requeue(
        &mut self,
        queue_id: Uuid,
        transfer_id: Uuid,
        from_agent_id: Option<Uuid>,
        sink: &EventSink<Self>,
    ) -> Result<(), ConversationError> {
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
        Ok(())
    }
}
