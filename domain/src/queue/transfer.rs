//! Transfers: a waiting customer leaves this line for another queue's (`TransferOut` as a
//! follow-up, `TransferAcross` in the transfer's own append), and arrives at the front of the
//! target's line (`TransferIn`).

use cqrs_es::event_sink::EventSink;
use uuid::Uuid;

use super::{LeaveReason, Queue, QueueCommand, QueueError, QueueEvent};
use crate::values::Author;

impl Queue {
    /// A waiting customer leaves for `to_queue_id`'s line: by a follow-up (`arrives_by` none),
    /// or by the transfer `arrives_by` in the same append.
    async fn transfer_out(
        &mut self,
        conversation_id: Uuid,
        to_queue_id: Uuid,
        arrives_by: Option<Uuid>,
        by: Option<Author>,
        sink: &EventSink<Self>,
    ) -> Result<(), QueueError> {
        let queue_id = self.require_created()?;
        self.require_waiting(conversation_id)?;
        if to_queue_id == queue_id {
            return Err(QueueError::AlreadyWaiting);
        }
        let event = QueueEvent::CustomerLeftQueue {
            queue_id,
            organization_id: self.organization_id,
            conversation_id,
            reason: LeaveReason::Transferred,
            to_queue_id: Some(to_queue_id),
            by,
            transfer_id: arrives_by,
        };
        sink.write(event, self).await;
        Ok(())
    }

    /// Decides `command`, one of: `TransferOut`, `TransferAcross`, `TransferIn`.
    pub(super) async fn handle_transfer(
        &mut self,
        command: QueueCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), QueueError> {
        use QueueCommand as C;
        use QueueEvent as E;
        match command {
            C::TransferOut {
                conversation_id,
                to_queue_id,
                by,
            } => {
                self.transfer_out(conversation_id, to_queue_id, None, by, sink)
                    .await?
            }
            C::TransferAcross {
                conversation_id,
                to_queue_id,
                transfer_id,
                by,
            } => {
                let arrives_by = Some(transfer_id);
                self.transfer_out(conversation_id, to_queue_id, arrives_by, by, sink)
                    .await?;
            }
            C::TransferIn {
                transfer_id,
                conversation_id,
                organization_id,
                from_queue_id,
                from_agent_id,
                by,
            } => {
                let queue_id = self.require_created()?;
                if organization_id != self.organization_id {
                    return Err(QueueError::OtherOrganization);
                }
                if self.arrived_by.get(&conversation_id) == Some(&transfer_id) {
                    return Err(QueueError::TransferAlreadyArrived);
                }
                if self.waiting.contains(&conversation_id) {
                    return Err(QueueError::AlreadyWaiting);
                }
                // As a join: a closed queue takes nobody into its line. Decided here, in the
                // append that moves the customer, never on a read model's word.
                if !self.open {
                    return Err(QueueError::TargetClosed);
                }
                let event = E::ConversationTransferred {
                    transfer_id,
                    queue_id,
                    organization_id,
                    conversation_id,
                    from_queue_id,
                    from_agent_id,
                    queue_position: 1,
                    by,
                };
                sink.write(event, self).await;
            }
            _ => unreachable!("`handle` gives `handle_transfer` only the commands above"),
        }
        Ok(())
    }
}
