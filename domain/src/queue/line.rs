//! The line: a customer joins it (or leaves a message while nobody answers), leaves it, or is
//! picked from its front by a handler.

use cqrs_es::event_sink::EventSink;

use super::{LeaveReason, Queue, QueueCommand, QueueError, QueueEvent};

impl Queue {
    /// Decides `command`, one of: `JoinQueue`, `TakeMessage`, `LeaveQueue`, `PickCustomer`.
    pub(super) async fn handle_line(
        &mut self,
        command: QueueCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), QueueError> {
        use QueueCommand as C;
        use QueueEvent as E;
        match command {
            C::JoinQueue {
                conversation_id,
                metadata,
                customer,
            } => {
                let queue_id = self.require_created()?;
                if !self.open {
                    return Err(QueueError::QueueClosed);
                }
                if self.waiting.contains(&conversation_id) {
                    return Err(QueueError::AlreadyJoined);
                }
                let settings = self.settings.clone().ok_or(QueueError::UnknownQueue)?;
                if let Some(max) = settings.max_waiting {
                    if self.waiting.len() >= max.get() as usize {
                        return Err(QueueError::QueueFull);
                    }
                }
                let event = E::CustomerJoinedQueue {
                    queue_id,
                    organization_id: self.organization_id,
                    conversation_id,
                    queue_position: self.waiting.len() + 1,
                    welcome_message: settings.welcome_message,
                    metadata,
                    customer,
                };
                sink.write(event, self).await;
            }
            C::TakeMessage { conversation_id } => {
                let queue_id = self.require_created()?;
                if self.waiting.contains(&conversation_id) {
                    return Err(QueueError::AlreadyJoined);
                }
                let event = E::MessageLeft {
                    queue_id,
                    organization_id: self.organization_id,
                    conversation_id,
                };
                sink.write(event, self).await;
            }
            C::LeaveQueue {
                conversation_id,
                reason,
                by,
            } => {
                let queue_id = self.require_created()?;
                self.require_waiting(conversation_id)?;
                if reason == LeaveReason::Transferred {
                    // A transfer names its target; it goes through `TransferOut`.
                    return Err(QueueError::TransferNeedsTarget);
                }
                let event = E::CustomerLeftQueue {
                    queue_id,
                    organization_id: self.organization_id,
                    conversation_id,
                    reason,
                    to_queue_id: None,
                    by,
                    transfer_id: None,
                };
                sink.write(event, self).await;
            }
            C::PickCustomer {
                agent_id,
                agent_name,
            } => {
                let queue_id = self.require_created()?;
                if !self.handlers.contains(&agent_id) {
                    return Err(QueueError::NotAHandler);
                }
                let conversation_id = *self.waiting.front().ok_or(QueueError::NobodyWaiting)?;
                let event = E::CustomerPicked {
                    queue_id,
                    organization_id: self.organization_id,
                    conversation_id,
                    agent_id,
                    agent_name,
                };
                sink.write(event, self).await;
            }
            _ => unreachable!("`handle` gives `handle_line` only the commands above"),
        }
        Ok(())
    }
}
