use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::events::{LeaveReason, QueueSettings};
use super::routing::{OfferTimeout, Routing};
use super::widget::{Colour, WidgetPosition};
use crate::metadata::{CustomerMetadata, VerifiedCustomer};
use crate::schedule::{OpeningHours, Origin};
use crate::values::{Author, Limit, Name, WelcomeMessage};

/// `by` names the agent who gives the command; `None` is Jono itself (a schedule, a time-out,
/// a process manager) or the operator's command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum QueueCommand {
    CreateQueue {
        queue_id: Uuid,
        organization_id: Uuid,
        name: Name,
    },
    /// By one of its handlers, an operator (`by_operator`: an owner or operator of its
    /// organization, as the organization's stream says), or the clock (`by: None`).
    OpenQueue {
        by: Option<Uuid>,
        #[serde(default)]
        by_operator: bool,
    },
    /// By whom [`QueueCommand::OpenQueue`] may be.
    CloseQueue {
        by: Option<Uuid>,
        #[serde(default)]
        by_operator: bool,
    },
    ChangeSettings {
        patch: SettingsPatch,
        by: Option<Uuid>,
    },
    AddHandler {
        agent_id: Uuid,
        by: Option<Uuid>,
    },
    RemoveHandler {
        agent_id: Uuid,
        by: Option<Uuid>,
    },
    /// A customer joins with a fresh conversation id; the conversation itself is started by
    /// the process manager from `CustomerJoinedQueue`.
    JoinQueue {
        conversation_id: Uuid,
        metadata: CustomerMetadata,
        /// The identity the site signed, verified by the gateway; `None` for a guest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        customer: Option<VerifiedCustomer>,
    },
    /// A customer leaves a message for the queue's agents to answer later, when nobody can
    /// answer now; the conversation that holds it starts in the same append
    /// (`ConversationCommand::LeaveMessage`). It never waits in the line.
    TakeMessage {
        conversation_id: Uuid,
    },
    /// Abandonment (the customer ended), removal (an agent ended) or a time-out.
    LeaveQueue {
        conversation_id: Uuid,
        reason: LeaveReason,
        by: Option<Author>,
    },
    /// The longest-waiting customer goes to `agent_id` (under an offer to someone else or
    /// not: the offer ends with the customer's wait). Whether the agent has room for it
    /// (`capacity_per_agent`) is its `Workload` stream's to decide, in the same append.
    PickCustomer {
        agent_id: Uuid,
        agent_name: String,
    },
    /// Auto routing offers the waiting customer `conversation_id` to `agent_id` until `now`
    /// plus the queue's `offer_timeout_seconds`.
    OfferCustomer {
        offer_id: Uuid,
        conversation_id: Uuid,
        agent_id: Uuid,
        now: DateTime<Utc>,
    },
    /// The offer of `conversation_id` is accepted by its agent: the customer is picked by it
    /// (and its `Workload` takes the conversation in the same append).
    AcceptOffer {
        conversation_id: Uuid,
        agent_id: Uuid,
        agent_name: String,
        now: DateTime<Utc>,
    },
    /// The offer of `conversation_id` is declined by its agent.
    DeclineOffer {
        conversation_id: Uuid,
        agent_id: Uuid,
    },
    /// The offer `offer_id` ran out unaccepted (`now` is past its `expires_at`).
    ExpireOffer {
        conversation_id: Uuid,
        offer_id: Uuid,
        now: DateTime<Utc>,
    },
    /// A waiting customer of this queue moves to another queue.
    TransferOut {
        conversation_id: Uuid,
        to_queue_id: Uuid,
        by: Option<Author>,
    },
    /// A waiting customer of this queue moves to `to_queue_id`'s line, arriving there by
    /// `transfer_id` (`TransferIn`) in the same append, with its conversation's `Requeue`: the
    /// three streams agree at once, so the target's being open is decided with the move, and
    /// no moment has the customer in no line, or in two.
    TransferAcross {
        conversation_id: Uuid,
        to_queue_id: Uuid,
        transfer_id: Uuid,
        by: Option<Author>,
    },
    /// A conversation arrives from another queue (waiting there, or picked by `from_agent_id`)
    /// and waits here, first in line.
    TransferIn {
        /// Names this transfer, so a late repeat of it is recognised and refused.
        transfer_id: Uuid,
        conversation_id: Uuid,
        organization_id: Uuid,
        from_queue_id: Uuid,
        from_agent_id: Option<Uuid>,
        by: Option<Author>,
    },
}

/// A change of some settings; an absent field keeps its value, `null` clears a clearable one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SettingsPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_waiting: Option<Option<Limit>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub welcome_message: Option<Option<WelcomeMessage>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub capacity_per_agent: Option<Option<Limit>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub opening_hours: Option<Option<OpeningHours>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<Origin>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widget_position: Option<WidgetPosition>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub widget_color: Option<Option<Colour>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_timeout_seconds: Option<OfferTimeout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_message_when_offline: Option<bool>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub reopen_window_seconds: Option<Option<Limit>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_wait_seconds: Option<Option<Limit>>,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_first_response_seconds: Option<Option<Limit>>,
}

/// Tells a present `null` (`Some(None)`) from an absent field (`None`).
fn some<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    T::deserialize(deserializer).map(Some)
}

impl SettingsPatch {
    pub fn apply_to(self, mut settings: QueueSettings) -> QueueSettings {
        if let Some(name) = self.name {
            settings.name = name;
        }
        if let Some(max_waiting) = self.max_waiting {
            settings.max_waiting = max_waiting;
        }
        if let Some(welcome_message) = self.welcome_message {
            settings.welcome_message = welcome_message;
        }
        if let Some(capacity) = self.capacity_per_agent {
            settings.capacity_per_agent = capacity;
        }
        if let Some(opening_hours) = self.opening_hours {
            settings.opening_hours = opening_hours;
        }
        if let Some(mut origins) = self.allowed_origins {
            origins.sort();
            origins.dedup();
            settings.allowed_origins = origins;
        }
        if let Some(position) = self.widget_position {
            settings.widget_position = position;
        }
        if let Some(colour) = self.widget_color {
            settings.widget_color = colour;
        }
        if let Some(routing) = self.routing {
            settings.routing = routing;
        }
        if let Some(timeout) = self.offer_timeout_seconds {
            settings.offer_timeout_seconds = timeout;
        }
        if let Some(offline) = self.leave_message_when_offline {
            settings.leave_message_when_offline = offline;
        }
        if let Some(window) = self.reopen_window_seconds {
            settings.reopen_window_seconds = window;
        }
        if let Some(target) = self.target_wait_seconds {
            settings.target_wait_seconds = target;
        }
        if let Some(target) = self.target_first_response_seconds {
            settings.target_first_response_seconds = target;
        }
        settings
    }
}
