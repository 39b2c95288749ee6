//! How a queue hands its customers to agents: `manual` (the seed's way: agents pick) or `auto`
//! (Jono offers each waiting customer to one agent at a time, who accepts or declines; an offer
//! not accepted within `offer_timeout_seconds` expires and passes on). A manual pick works in
//! both. The queue's stream decides every offer, so a customer under an offer is never offered
//! twice and only its agent can accept it.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Queue, QueueCommand, QueueError, QueueEvent};
use crate::values::InvalidValue;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Routing {
    /// Agents pick customers themselves.
    #[default]
    Manual,
    /// Waiting customers are offered to online handlers with free capacity.
    Auto,
}

impl Routing {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw {
            "manual" => Ok(Self::Manual),
            "auto" => Ok(Self::Auto),
            other => Err(InvalidValue::Malformed {
                field: "routing",
                reason: format!("{other:?} is neither \"manual\" nor \"auto\""),
            }),
        }
    }
}

/// How long an offer waits for its agent: 1 second to 1 hour (30 seconds by default).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct OfferTimeout(u32);

impl OfferTimeout {
    pub const MAX: u32 = 3_600;

    pub fn parse(raw: i64) -> Result<Self, InvalidValue> {
        match u32::try_from(raw) {
            Ok(value) if (1..=Self::MAX).contains(&value) => Ok(Self(value)),
            _ => Err(InvalidValue::Malformed {
                field: "offer_timeout_seconds",
                reason: format!("must be a whole number of seconds from 1 to {}", Self::MAX),
            }),
        }
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

impl Default for OfferTimeout {
    fn default() -> Self {
        Self(30)
    }
}

impl TryFrom<u32> for OfferTimeout {
    type Error = InvalidValue;
    fn try_from(raw: u32) -> Result<Self, Self::Error> {
        Self::parse(i64::from(raw))
    }
}

impl From<OfferTimeout> for u32 {
    fn from(value: OfferTimeout) -> Self {
        value.0
    }
}

/// An offer still open: a waiting customer offered to one agent until `expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub offer_id: Uuid,
    pub agent_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

impl Queue {
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

    async fn offer_customer(
        &mut self,
        offer_id: Uuid,
        conversation_id: Uuid,
        agent_id: Uuid,
        now: DateTime<Utc>,
        sink: &EventSink<Self>,
    ) -> Result<(), QueueError> {
        use QueueEvent as E;
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
        Ok(())
    }

    /// Decides `command`, one of: `OfferCustomer`, `AcceptOffer`, `DeclineOffer`, `ExpireOffer`.
    pub(super) async fn handle_offer(
        &mut self,
        command: QueueCommand,
        sink: &EventSink<Self>,
    ) -> Result<(), QueueError> {
        use QueueCommand as C;
        use QueueEvent as E;
        match command {
            C::OfferCustomer {
                offer_id,
                conversation_id,
                agent_id,
                now,
            } => {
                self.offer_customer(offer_id, conversation_id, agent_id, now, sink)
                    .await?
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
            _ => unreachable!("`handle` gives `handle_offer` only the commands above"),
        }
        Ok(())
    }
}
