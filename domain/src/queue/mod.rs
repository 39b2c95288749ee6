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
//!
//! Offers (auto routing, `routing`) are the queue's too: which customer is under an offer to
//! whom and until when, and who was offered or declined each waiting customer, so an offer
//! passes on rather than back. All of it is forgotten when the customer stops waiting.

mod commands;
mod errors;
mod events;
mod routing;
mod widget;

pub use commands::{QueueCommand, SettingsPatch};
pub use errors::QueueError;
pub use events::{LeaveReason, QueueEvent, QueueSettings};
pub use routing::{Offer, OfferTimeout, Routing};
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
    /// The open offer of each waiting customer under one (a subset of `waiting`).
    #[serde(default)]
    pub offers: BTreeMap<Uuid, Offer>,
    /// The agents each waiting customer was offered to, and those who declined it.
    #[serde(default)]
    pub offered_to: BTreeMap<Uuid, BTreeSet<Uuid>>,
    #[serde(default)]
    pub declined_by: BTreeMap<Uuid, BTreeSet<Uuid>>,
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

    /// How the queue routes its customers.
    pub fn routing(&self) -> Routing {
        self.settings
            .as_ref()
            .map(|settings| settings.routing)
            .unwrap_or_default()
    }

    /// The agents `conversation_id` was offered to while it waits.
    pub fn offered_to(&self, conversation_id: Uuid) -> Option<&BTreeSet<Uuid>> {
        self.offered_to.get(&conversation_id)
    }

    /// Whether `agent_id` declined `conversation_id` while it waits.
    pub fn declined(&self, conversation_id: Uuid, agent_id: Uuid) -> bool {
        self.declined_by
            .get(&conversation_id)
            .is_some_and(|agents| agents.contains(&agent_id))
    }

    /// The open offer of `conversation_id`, if it is `agent_id`'s (else why not).
    fn offer_for(&self, conversation_id: Uuid, agent_id: Uuid) -> Result<Offer, QueueError> {
        self.require_waiting(conversation_id)?;
        let offer = *self
            .offers
            .get(&conversation_id)
            .ok_or(QueueError::NoOffer)?;
        if offer.agent_id != agent_id {
            return Err(QueueError::NotYourOffer);
        }
        Ok(offer)
    }

    /// A customer stops waiting here: whatever was offered of it is over.
    fn forget(&mut self, conversation_id: Uuid) {
        self.waiting.retain(|id| *id != conversation_id);
        self.arrived_by.remove(&conversation_id);
        self.offers.remove(&conversation_id);
        self.offered_to.remove(&conversation_id);
        self.declined_by.remove(&conversation_id);
    }

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
            C::OfferCustomer {
                offer_id,
                conversation_id,
                agent_id,
                now,
            } => {
                let queue_id = self.require_created()?;
                if self.routing() != Routing::Auto {
                    return Err(QueueError::NotAutoRouted);
                }
                self.require_waiting(conversation_id)?;
                if !self.handlers.contains(&agent_id) {
                    return Err(QueueError::NotAHandler);
                }
                if self.offers.contains_key(&conversation_id) {
                    return Err(QueueError::AlreadyOffered);
                }
                if self.declined(conversation_id, agent_id) {
                    return Err(QueueError::DeclinedBefore);
                }
                let timeout = self
                    .settings
                    .as_ref()
                    .map(|settings| settings.offer_timeout_seconds)
                    .unwrap_or_default();
                let expires_at = now + chrono::Duration::seconds(i64::from(timeout.seconds()));
                let event = E::CustomerOffered {
                    queue_id,
                    organization_id: self.organization_id,
                    conversation_id,
                    offer_id,
                    agent_id,
                    expires_at,
                };
                sink.write(event, self).await;
            }
            C::AcceptOffer {
                conversation_id,
                agent_id,
                agent_name,
                now,
            } => {
                let queue_id = self.require_created()?;
                let offer = self.offer_for(conversation_id, agent_id)?;
                if now >= offer.expires_at {
                    return Err(QueueError::OfferExpired);
                }
                if !self.handlers.contains(&agent_id) {
                    return Err(QueueError::NotAHandler);
                }
                let organization_id = self.organization_id;
                let accepted = E::OfferAccepted {
                    queue_id,
                    organization_id,
                    conversation_id,
                    offer_id: offer.offer_id,
                    agent_id,
                };
                sink.write(accepted, self).await;
                let picked = E::CustomerPicked {
                    queue_id,
                    organization_id,
                    conversation_id,
                    agent_id,
                    agent_name,
                };
                sink.write(picked, self).await;
            }
            C::DeclineOffer {
                conversation_id,
                agent_id,
            } => {
                let queue_id = self.require_created()?;
                let offer = self.offer_for(conversation_id, agent_id)?;
                let event = E::OfferDeclined {
                    queue_id,
                    organization_id: self.organization_id,
                    conversation_id,
                    offer_id: offer.offer_id,
                    agent_id,
                };
                sink.write(event, self).await;
            }
            C::ExpireOffer {
                conversation_id,
                offer_id,
                now,
            } => {
                let queue_id = self.require_created()?;
                self.require_waiting(conversation_id)?;
                let offer = self
                    .offers
                    .get(&conversation_id)
                    .filter(|offer| offer.offer_id == offer_id)
                    .copied()
                    .ok_or(QueueError::NoOffer)?;
                if now < offer.expires_at {
                    return Err(QueueError::OfferNotDue);
                }
                let event = E::OfferExpired {
                    queue_id,
                    organization_id: self.organization_id,
                    conversation_id,
                    offer_id,
                    agent_id: offer.agent_id,
                };
                sink.write(event, self).await;
            }
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
            } => self.forget(conversation_id),
            E::CustomerOffered {
                conversation_id,
                offer_id,
                agent_id,
                expires_at,
                ..
            } => {
                let offer = Offer {
                    offer_id,
                    agent_id,
                    expires_at,
                };
                self.offers.insert(conversation_id, offer);
                self.offered_to
                    .entry(conversation_id)
                    .or_default()
                    .insert(agent_id);
            }
            E::OfferAccepted {
                conversation_id, ..
            }
            | E::OfferExpired {
                conversation_id, ..
            } => {
                self.offers.remove(&conversation_id);
            }
            E::OfferDeclined {
                conversation_id,
                agent_id,
                ..
            } => {
                self.offers.remove(&conversation_id);
                self.declined_by
                    .entry(conversation_id)
                    .or_default()
                    .insert(agent_id);
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
