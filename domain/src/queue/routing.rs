//! How a queue hands its customers to agents: `manual` (the seed's way: agents pick) or `auto`
//! (Jono offers each waiting customer to one agent at a time, who accepts or declines; an offer
//! not accepted within `offer_timeout_seconds` expires and passes on). A manual pick works in
//! both. The queue's stream decides every offer, so a customer under an offer is never offered
//! twice and only its agent can accept it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
