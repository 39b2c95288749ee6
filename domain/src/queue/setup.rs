//! The queue itself: its creation, opening and closing, its settings and its handlers (the
//! agents who take its customers).

use cqrs_es::event_sink::EventSink;
use uuid::Uuid;

use super::{Queue, QueueCommand, QueueError, QueueEvent};

impl Queue {
    /// Decides `command`, one of: `CreateQueue`, `OpenQueue`, `CloseQueue`, `ChangeSettings`,
    /// `AddHandler`, `RemoveHandler`.
    pub(super) async fn handle_setup(
        &mut self,
        command: QueueCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), QueueError> {
        use QueueCommand as C;
        use QueueEvent as E;
        match command {
            C::CreateQueue {
                queue_id,
                organization_id,
                name,
            } => {
                if self.id.is_some() {
                    return Err(QueueError::AlreadyCreated);
                }
                sink.write(
                    E::QueueCreated {
                        queue_id,
                        organization_id,
                        name,
                    },
                    self,
                )
                .await;
            }
            C::OpenQueue { by, by_operator } => {
                let queue_id = self.require_created()?;
                self.require_opener(by, by_operator)?;
                if !self.open {
                    let organization_id = self.organization_id;
                    sink.write(
                        E::QueueOpened {
                            queue_id,
                            organization_id,
                            by,
                        },
                        self,
                    )
                    .await;
                }
            }
            C::CloseQueue { by, by_operator } => {
                let queue_id = self.require_created()?;
                self.require_opener(by, by_operator)?;
                if self.open {
                    let organization_id = self.organization_id;
                    sink.write(
                        E::QueueClosed {
                            queue_id,
                            organization_id,
                            by,
                        },
                        self,
                    )
                    .await;
                }
            }
            C::ChangeSettings { patch, by } => {
                let queue_id = self.require_created()?;
                let current = self.settings.clone().ok_or(QueueError::UnknownQueue)?;
                let settings = patch.apply_to(current.clone());
                if settings != current {
                    let organization_id = self.organization_id;
                    let event = E::QueueSettingsChanged {
                        queue_id,
                        organization_id,
                        settings,
                        by,
                    };
                    sink.write(event, self).await;
                }
            }
            C::AddHandler { agent_id, by } => {
                let queue_id = self.require_created()?;
                if !self.handlers.contains(&agent_id) {
                    let organization_id = self.organization_id;
                    let event = E::QueueHandlerAdded {
                        queue_id,
                        organization_id,
                        agent_id,
                        by,
                    };
                    sink.write(event, self).await;
                }
            }
            C::RemoveHandler { agent_id, by } => {
                let queue_id = self.require_created()?;
                if self.handlers.contains(&agent_id) {
                    let organization_id = self.organization_id;
                    let event = E::QueueHandlerRemoved {
                        queue_id,
                        organization_id,
                        agent_id,
                        by,
                    };
                    sink.write(event, self).await;
                }
            }
            _ => unreachable!("`handle` gives `handle_setup` only the commands above"),
        }
        Ok(())
    }

    /// Who may open or close the queue: its handlers, the organization's operators and owners,
    /// and the clock (`by: None`, its opening hours).
    fn require_opener(&self, by: Option<Uuid>, by_operator: bool) -> Result<(), QueueError> {
        match by {
            Some(agent) if !by_operator && !self.handlers.contains(&agent) => {
                Err(QueueError::NotAHandler)
            }
            _ => Ok(()),
        }
    }
}
