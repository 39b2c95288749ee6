//! Every stored event of every aggregate, as one type: what projections, the process manager
//! and the WebSocket fold over. A stored event is decoded by its aggregate type.

use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::account::{Account, AccountEvent};
use crate::canned::{CannedEvent, CannedResponses};
use crate::conversation::{Conversation, ConversationEvent};
use crate::organization::{Organization, OrganizationEvent};
use crate::queue::{Queue, QueueEvent};
use crate::workload::{Workload, WorkloadEvent};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Event {
    Account(AccountEvent),
    Organization(OrganizationEvent),
    Queue(QueueEvent),
    Conversation(ConversationEvent),
    Canned(CannedEvent),
    Workload(WorkloadEvent),
}

/// The `type` of every event of API.md's list, plus the conversation's own bookkeeping
/// (`AgentAssigned`, `ConversationRequeued`) and the blocks of abusive visitors
/// (`CustomerBlocked`, `CustomerBlockLifted`), withdrawn invitations (`InvitationRevoked`) and
/// agents' read markers (`ConversationRead`) and the organization's sign-in rules
/// (`TwoFactorRequirementSet`, `MemberSessionsEnded`, `SsoConfigured`), confirmed addresses
/// (`EmailConfirmed`) and webhook endpoints (`WebhookEndpointAdded`, `WebhookEndpointRemoved`),
/// in the order API.md lists them; then auto routing's offers (`CustomerOffered`,
/// `OfferAccepted`, `OfferDeclined`, `OfferExpired`) and agents' workloads
/// (`ConversationTaken`, `ConversationReleased`), handoffs, and erasure (`CustomerErased`) with
/// the organization's retention (`RetentionSet`).
pub const EVENT_TYPES: [&str; 58] = [
    "OrganizationCreated",
    "AccountCreated",
    "InvitationCreated",
    "InvitationAccepted",
    "MemberAdded",
    "MemberRoleChanged",
    "MemberRemoved",
    "QueueCreated",
    "QueueOpened",
    "QueueClosed",
    "QueueSettingsChanged",
    "QueueHandlerAdded",
    "QueueHandlerRemoved",
    "CustomerJoinedQueue",
    "CustomerLeftQueue",
    "CustomerPicked",
    "ConversationStarted",
    "MessageSent",
    "AttachmentUploaded",
    "TagAdded",
    "TagRemoved",
    "NoteAdded",
    "CustomerMetadataSet",
    "LiveMetadataUpdated",
    "CallStarted",
    "CallEnded",
    "ConversationTransferred",
    "ConversationRated",
    "ConversationEnded",
    "CannedResponseCreated",
    "CannedResponseChanged",
    "CannedResponseDeleted",
    "AgentAssigned",
    "ConversationRequeued",
    "CustomerBlocked",
    "CustomerBlockLifted",
    "InvitationRevoked",
    "ConversationRead",
    "TwoFactorRequirementSet",
    "MemberSessionsEnded",
    "SsoConfigured",
    "EmailConfirmed",
    "WebhookEndpointAdded",
    "WebhookEndpointRemoved",
    "MessageLeft",
    "ConversationReopened",
    "CustomerOffered",
    "OfferAccepted",
    "OfferDeclined",
    "OfferExpired",
    "ConversationTaken",
    "ConversationReleased",
    "HandoffOffered",
    "HandoffAccepted",
    "HandoffDeclined",
    "HandoffExpired",
    "CustomerErased",
    "RetentionSet",
];

/// Whether this version of Jono knows events of `event_type`. During a rolling upgrade a node
/// may meet events written by a newer one: read models and sockets skip those (and say so)
/// instead of stalling on them.
pub fn is_known(event_type: &str) -> bool {
    EVENT_TYPES.contains(&event_type)
}

/// `name`, if it is one of [`EVENT_TYPES`]. Evaluated in a `const` (as [`event_types!`]
/// does), a name that is none of them does not compile: a list of types to follow or to show
/// cannot hold a typo, nor a type renamed since.
///
/// [`event_types!`]: crate::event_types
pub const fn checked(name: &'static str) -> &'static str {
    let mut index = 0;
    while index < EVENT_TYPES.len() {
        if same(EVENT_TYPES[index].as_bytes(), name.as_bytes()) {
            return name;
        }
        index += 1;
    }
    panic!("not an event type of domain::event::EVENT_TYPES")
}

/// Whether two names are the same, in a `const` (where `==` on strings is not available).
pub const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// An array of event types, each [`checked`]: write it as a `const`, so a name that is no
/// event type fails to compile.
///
/// ```
/// const ENDS: [&str; 2] = domain::event_types!["ConversationEnded", "CustomerLeftQueue"];
/// ```
///
/// ```compile_fail
/// const ENDS: [&str; 1] = domain::event_types!["ConversationEnd"];
/// ```
#[macro_export]
macro_rules! event_types {
    ($($name:literal),* $(,)?) => {
        [$($crate::event::checked($name)),*]
    };
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown aggregate type {0:?}")]
    UnknownAggregate(String),
    #[error("undecodable event: {0}")]
    Json(#[from] serde_json::Error),
}

impl Event {
    /// Decodes a stored payload (which carries its own `type`) of a stream of `aggregate_type`.
    pub fn decode(aggregate_type: &str, payload: Value) -> Result<Self, DecodeError> {
        Ok(match aggregate_type {
            Account::TYPE => Self::Account(serde_json::from_value(payload)?),
            Organization::TYPE => Self::Organization(serde_json::from_value(payload)?),
            Queue::TYPE => Self::Queue(serde_json::from_value(payload)?),
            Conversation::TYPE => Self::Conversation(serde_json::from_value(payload)?),
            CannedResponses::TYPE => Self::Canned(serde_json::from_value(payload)?),
            Workload::TYPE => Self::Workload(serde_json::from_value(payload)?),
            other => return Err(DecodeError::UnknownAggregate(other.to_owned())),
        })
    }

    /// As [`Event::decode`], straight from the payload's JSON text: no `Value` is built in
    /// between, which is most of the cost of decoding when a rebuild reads the whole log.
    pub fn decode_str(aggregate_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match aggregate_type {
            Account::TYPE => Self::Account(serde_json::from_str(payload)?),
            Organization::TYPE => Self::Organization(serde_json::from_str(payload)?),
            Queue::TYPE => Self::Queue(serde_json::from_str(payload)?),
            Conversation::TYPE => Self::Conversation(serde_json::from_str(payload)?),
            CannedResponses::TYPE => Self::Canned(serde_json::from_str(payload)?),
            Workload::TYPE => Self::Workload(serde_json::from_str(payload)?),
            other => return Err(DecodeError::UnknownAggregate(other.to_owned())),
        })
    }

    /// As [`Event::decode`], from a borrowed payload: the caller keeps its `Value` without
    /// cloning it first.
    pub fn decode_ref(aggregate_type: &str, payload: &Value) -> Result<Self, DecodeError> {
        Ok(match aggregate_type {
            Account::TYPE => Self::Account(Deserialize::deserialize(payload)?),
            Organization::TYPE => Self::Organization(Deserialize::deserialize(payload)?),
            Queue::TYPE => Self::Queue(Deserialize::deserialize(payload)?),
            Conversation::TYPE => Self::Conversation(Deserialize::deserialize(payload)?),
            CannedResponses::TYPE => Self::Canned(Deserialize::deserialize(payload)?),
            Workload::TYPE => Self::Workload(Deserialize::deserialize(payload)?),
            other => return Err(DecodeError::UnknownAggregate(other.to_owned())),
        })
    }

    /// The event as its stream stores it: a JSON object carrying its own `type` (what
    /// [`Event::decode`] reads back).
    pub fn payload(&self) -> Result<Value, serde_json::Error> {
        match self {
            Self::Account(e) => serde_json::to_value(e),
            Self::Organization(e) => serde_json::to_value(e),
            Self::Queue(e) => serde_json::to_value(e),
            Self::Conversation(e) => serde_json::to_value(e),
            Self::Canned(e) => serde_json::to_value(e),
            Self::Workload(e) => serde_json::to_value(e),
        }
    }

    pub fn event_type(&self) -> String {
        match self {
            Self::Account(e) => e.event_type(),
            Self::Organization(e) => e.event_type(),
            Self::Queue(e) => e.event_type(),
            Self::Conversation(e) => e.event_type(),
            Self::Canned(e) => e.event_type(),
            Self::Workload(e) => e.event_type(),
        }
    }
}
