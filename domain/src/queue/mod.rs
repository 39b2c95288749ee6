//! `Queue`: a customer queue of an organization. Its stream is the only authority on who waits
//! (invariant 2): joining, picking, leaving, timing out and transfers in and out all go through
//! it, so two concurrent commands race on its expected version and the loser re-decides against
//! the new state — the next customer, or a clean `NobodyWaiting`.
//!
//! A queue's stream never ends, so its state holds only what is live (invariant 10): who waits,
//! and by which transfer each transferred customer arrived. A join or a transfer repeated while
//! its customer still waits is refused here; once the customer has left the line, the
//! conversation's own stream refuses the repeat (it has started, it knows its transfers), and
//! a join or a transfer-in always runs in one append with that conversation's command.

mod commands;
mod errors;
mod events;
mod widget;

pub use commands::{QueueCommand, SettingsPatch};
pub use errors::QueueError;
pub use events::{LeaveReason, QueueEvent, QueueSettings};
pub use widget::{Colour, WidgetPosition};

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::Author;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Queue {
    pub id: Option<Uuid>,
    pub organization_id: Uuid,
    pub open: bool,
    pub settings: Option<QueueSettings>,
    pub handlers: BTreeSet<Uuid>,
    /// Conversation ids, longest-waiting first.
    pub waiting: VecDeque<Uuid>,
    /// The transfer by which each waiting customer who was transferred in arrived (a subset of
    /// `waiting`), so a repeat of it is named as such while its customer waits.
    pub arrived_by: BTreeMap<Uuid, Uuid>,
}

impl Queue {
    fn require_created(&self) -> Result<Uuid, QueueError> {
        self.id.ok_or(QueueError::UnknownQueue)
    }

    fn require_waiting(&self, conversation_id: Uuid) -> Result<(), QueueError> {
        if self.waiting.contains(&conversation_id) {
            Ok(())
        } else {
            Err(QueueError::NotWaiting)
        }
    }

    /// 1 for the next customer to be picked.
    pub fn position_of(&self, conversation_id: Uuid) -> Option<usize> {
        self.waiting
            .iter()
            .position(|id| *id == conversation_id)
            .map(|index| index + 1)
    }
}

impl crate::Snapshot for Queue {
    const SNAPSHOT_VERSION: u32 = 1;
}

impl Aggregate for Queue {
    const TYPE: &'static str = "queue";
    type Command = QueueCommand;
    type Event = QueueEvent;
    type Error = QueueError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
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
            C::OpenQueue { by } => {
                let queue_id = self.require_created()?;
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
            C::CloseQueue { by } => {
                let queue_id = self.require_created()?;
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
                };
                sink.write(event, self).await;
            }
            C::PickCustomer {
                agent_id,
                agent_name,
                open_conversations,
            } => {
                let queue_id = self.require_created()?;
                if !self.handlers.contains(&agent_id) {
                    return Err(QueueError::NotAHandler);
                }
                let capacity = self.settings.as_ref().and_then(|s| s.capacity_per_agent);
                if capacity.is_some_and(|max| open_conversations >= max.get()) {
                    return Err(QueueError::AtCapacity);
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
            C::TransferOut {
                conversation_id,
                to_queue_id,
                by,
            } => {
                let queue_id = self.require_created()?;
                self.require_waiting(conversation_id)?;
                let event = E::CustomerLeftQueue {
                    queue_id,
                    organization_id: self.organization_id,
                    conversation_id,
                    reason: LeaveReason::Transferred,
                    to_queue_id: Some(to_queue_id),
                    by,
                };
                sink.write(event, self).await;
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
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use QueueEvent as E;
        match event {
            E::QueueCreated {
                queue_id,
                organization_id,
                name,
            } => {
                self.id = Some(queue_id);
                self.organization_id = organization_id;
                self.settings = Some(QueueSettings::named(name));
            }
            E::QueueOpened { .. } => self.open = true,
            E::QueueClosed { .. } => self.open = false,
            E::QueueSettingsChanged { settings, .. } => self.settings = Some(settings),
            E::QueueHandlerAdded { agent_id, .. } => {
                self.handlers.insert(agent_id);
            }
            E::QueueHandlerRemoved { agent_id, .. } => {
                self.handlers.remove(&agent_id);
            }
            E::CustomerJoinedQueue {
                conversation_id, ..
            } => {
                self.waiting.push_back(conversation_id);
            }
            E::CustomerLeftQueue {
                conversation_id, ..
            }
            | E::CustomerPicked {
                conversation_id, ..
            } => {
                self.waiting.retain(|id| *id != conversation_id);
                self.arrived_by.remove(&conversation_id);
            }
            E::ConversationTransferred {
                transfer_id,
                conversation_id,
                ..
            } => {
                self.arrived_by.insert(conversation_id, transfer_id);
                self.waiting.push_front(conversation_id);
            }
            // Nothing of a left message waits in the line.
            E::MessageLeft { .. } => {}
        }
    }
}

/// Who left the queue, for the follow-up that ends the conversation.
pub(crate) fn leaver(reason: LeaveReason, conversation_id: Uuid, by: &Option<Author>) -> Author {
    match (reason, by) {
        (_, Some(author)) => author.clone(),
        (LeaveReason::Abandoned, None) => Author::customer(conversation_id, "Customer"),
        _ => Author::system(),
    }
}
