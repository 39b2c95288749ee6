//! Where a transfer or an end of a conversation starts. A customer who waits is in a queue's
//! line, and that queue is the only authority on who waits (invariant 2), so moving or ending
//! the conversation involves that queue's stream as well; the conversation says which, and
//! refuses what cannot move at all. The command layer then runs the commands over those
//! streams in one append, where each aggregate decides again on its own stream.

use uuid::Uuid;

use super::{Conversation, ConversationError, ConversationKind, Status};

/// Where a transfer to another queue takes the conversation from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferFrom {
    /// Its customer waits in `queue_id`'s line: it leaves that line
    /// (`QueueCommand::TransferAcross`), arrives in the target's (`TransferIn`) and the
    /// conversation waits there (`Requeue`).
    Line { queue_id: Uuid },
    /// Picked from `queue_id` (by `agent_id`): it arrives in the target's line and waits
    /// there, still with the agent it was seen with, or not at all.
    Agent {
        queue_id: Uuid,
        agent_id: Option<Uuid>,
    },
}

/// Where an end of the conversation starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndFrom {
    /// Its customer waits in `queue_id`'s line: it leaves the line, and the conversation ends
    /// as the leave's follow-up (or naming that queue, if the line let it go meanwhile).
    Line { queue_id: Uuid },
    /// It waits in no line: it just ends.
    Here,
}

impl Conversation {
    /// Where a transfer to `to_queue_id` starts; only a customer conversation that has not
    /// ended moves, and not into the line it waits in.
    pub fn transfer_from(&self, to_queue_id: Uuid) -> Result<TransferFrom, ConversationError> {
        let (_, kind) = self.require_started()?;
        Self::require_customer_kind(kind)?;
        self.require_not_ended()?;
        let queue_id = self
            .queue_id
            .ok_or(ConversationError::UnknownConversation)?;
        match self.status {
            Some(Status::Waiting) if queue_id == to_queue_id => {
                Err(ConversationError::AlreadyWaiting)
            }
            Some(Status::Waiting) => Ok(TransferFrom::Line { queue_id }),
            _ => Ok(TransferFrom::Agent {
                queue_id,
                agent_id: self.agent_id,
            }),
        }
    }

    /// Where an end starts; an ended conversation does not end again. A left message waits
    /// in no line.
    pub fn end_from(&self) -> Result<EndFrom, ConversationError> {
        self.require_not_ended()?;
        match (self.kind, self.status, self.queue_id) {
            (Some(ConversationKind::Customer), Some(Status::Waiting), Some(queue_id)) => {
                Ok(EndFrom::Line { queue_id })
            }
            _ => Ok(EndFrom::Here),
        }
    }
}
