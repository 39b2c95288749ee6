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
//!
//! This file holds the state, the checks the commands share, `handle`'s dispatch and `apply`;
//! the commands are decided by concept: `setup.rs` (creation, opening, settings, handlers),
//! `line.rs` (join, leave a message, leave, pick), `routing.rs` (offers) and `transfer.rs`.

mod commands;
mod errors;
mod events;
mod line;
mod routing;
mod setup;
mod transfer;
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

    /// A customer stops waiting here: whatever was offered of it is over.
    fn forget(&mut self, conversation_id: Uuid) {
        self.waiting.retain(|id| *id != conversation_id);
        self.arrived_by.remove(&conversation_id);
        self.offers.remove(&conversation_id);
        self.offered_to.remove(&conversation_id);
        self.declined_by.remove(&conversation_id);
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
        match command {
            C::CreateQueue { .. }
            | C::OpenQueue { .. }
            | C::CloseQueue { .. }
            | C::ChangeSettings { .. }
            | C::AddHandler { .. }
            | C::RemoveHandler { .. } => self.handle_setup(command, sink).await,
            C::JoinQueue { .. }
            | C::TakeMessage { .. }
            | C::LeaveQueue { .. }
            | C::PickCustomer { .. } => self.handle_line(command, sink).await,
            C::OfferCustomer { .. }
            | C::AcceptOffer { .. }
            | C::DeclineOffer { .. }
            | C::ExpireOffer { .. } => self.handle_offer(command, sink).await,
            C::TransferOut { .. } | C::TransferAcross { .. } | C::TransferIn { .. } => {
                self.handle_transfer(command, sink).await
            }
        }
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
