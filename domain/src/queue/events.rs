use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::routing::{OfferTimeout, Routing};
use super::widget::{Colour, WidgetPosition};
use crate::metadata::{CustomerMetadata, VerifiedCustomer};
use crate::schedule::{OpeningHours, Origin};
use crate::values::{Author, Limit, Name, WelcomeMessage};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum QueueEvent {
    QueueCreated {
        queue_id: Uuid,
        organization_id: Uuid,
        name: Name,
    },
    QueueOpened {
        queue_id: Uuid,
        organization_id: Uuid,
        by: Option<Uuid>,
    },
    QueueClosed {
        queue_id: Uuid,
        organization_id: Uuid,
        by: Option<Uuid>,
    },
    /// The whole of the settings after the change.
    QueueSettingsChanged {
        queue_id: Uuid,
        organization_id: Uuid,
        settings: QueueSettings,
        by: Option<Uuid>,
    },
    QueueHandlerAdded {
        queue_id: Uuid,
        organization_id: Uuid,
        agent_id: Uuid,
        by: Option<Uuid>,
    },
    QueueHandlerRemoved {
        queue_id: Uuid,
        organization_id: Uuid,
        agent_id: Uuid,
        by: Option<Uuid>,
    },
    /// `metadata` is personal data (the pre-chat form); `welcome_message` is the queue's at the
    /// time, which becomes message 1 of the conversation. `customer` is the identity the site
    /// signed, once verified (its user id and name are personal data; events before it: none).
    CustomerJoinedQueue {
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
        queue_position: usize,
        welcome_message: Option<WelcomeMessage>,
        metadata: CustomerMetadata,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        customer: Option<VerifiedCustomer>,
    },
    /// `to_queue_id` is set when the reason is `transferred`; `transfer_id` too when the
    /// customer arrived in that queue's line in the same append (`QueueCommand::TransferAcross`),
    /// so no follow-up moves it there again. A transfer without it (`TransferOut`, and the logs
    /// written before `TransferAcross`) arrives by the process manager's follow-up.
    CustomerLeftQueue {
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
        reason: LeaveReason,
        to_queue_id: Option<Uuid>,
        by: Option<Author>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transfer_id: Option<Uuid>,
    },
    /// `agent_name` is personal data: what the customer is told of who picked.
    CustomerPicked {
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
        agent_id: Uuid,
        agent_name: String,
    },
    /// A customer left a message (`QueueCommand::TakeMessage`); its words are in the
    /// conversation's stream (a `left_message` conversation), never here.
    MessageLeft {
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
    },
    /// Stored in the stream of the queue the conversation moves *to*; it waits there, first.
    ConversationTransferred {
        transfer_id: Uuid,
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
        from_queue_id: Uuid,
        from_agent_id: Option<Uuid>,
        queue_position: usize,
        by: Option<Author>,
    },
    /// Auto routing offered a waiting customer to `agent_id`, who may accept until
    /// `expires_at`; the customer still waits meanwhile (a manual pick may take it).
    CustomerOffered {
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
        offer_id: Uuid,
        agent_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    /// The offer's agent accepted it: `CustomerPicked` follows in the same append.
    OfferAccepted {
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
        offer_id: Uuid,
        agent_id: Uuid,
    },
    /// The offer's agent declined it; the customer passes to another agent.
    OfferDeclined {
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
        offer_id: Uuid,
        agent_id: Uuid,
    },
    /// Nobody accepted the offer in time; the customer passes to another agent.
    OfferExpired {
        queue_id: Uuid,
        organization_id: Uuid,
        conversation_id: Uuid,
        offer_id: Uuid,
        agent_id: Uuid,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LeaveReason {
    /// The customer ended the conversation while waiting.
    Abandoned,
    /// Nobody heard from the customer for too long (no open WebSocket for 5 minutes).
    Timeout,
    /// An agent ended the conversation while it waited.
    Removed,
    /// Moved to another queue.
    Transferred,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueueSettings {
    pub name: Name,
    pub max_waiting: Option<Limit>,
    pub welcome_message: Option<WelcomeMessage>,
    pub capacity_per_agent: Option<Limit>,
    pub opening_hours: Option<OpeningHours>,
    pub allowed_origins: Vec<Origin>,
    /// The bottom corner of the host page its widget takes (events before it: right).
    #[serde(default)]
    pub widget_position: WidgetPosition,
    /// The widget launcher's colour; `None` is Jono's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widget_color: Option<Colour>,
    /// Manual picks only, or offers to agents as well (events before it: manual).
    #[serde(default)]
    pub routing: Routing,
    /// How long an offer waits for its agent (events before it: 30 seconds).
    #[serde(default)]
    pub offer_timeout_seconds: OfferTimeout,
    /// The widget offers to leave a message, instead of joining, also while none of the
    /// queue's handlers is online (it always does when the queue is closed or full).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leave_message_when_offline: bool,
    /// How long after its end a customer who writes again continues the same conversation,
    /// with the agent it had (`ConversationReopened`), instead of joining the back of the line;
    /// `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopen_window_seconds: Option<Limit>,
    /// The service-level target for a wait in this queue, in seconds: a customer picked within
    /// it meets it; one still waiting past it breaches it. `None`: no target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_wait_seconds: Option<Limit>,
    /// The service-level target for the first answer, in seconds from the customer's join to
    /// the first message by an agent. `None`: no target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_first_response_seconds: Option<Limit>,
}

impl QueueSettings {
    /// A new queue's settings: no limits, no welcome message, no schedule, no embedding.
    pub fn named(name: Name) -> Self {
        Self {
            name,
            max_waiting: None,
            welcome_message: None,
            capacity_per_agent: None,
            opening_hours: None,
            allowed_origins: Vec::new(),
            widget_position: WidgetPosition::Right,
            widget_color: None,
            routing: Routing::Manual,
            offer_timeout_seconds: OfferTimeout::default(),
            leave_message_when_offline: false,
            reopen_window_seconds: None,
            target_wait_seconds: None,
            target_first_response_seconds: None,
        }
    }
}

impl DomainEvent for QueueEvent {
    fn event_type(&self) -> String {
        match self {
            Self::QueueCreated { .. } => "QueueCreated",
            Self::QueueOpened { .. } => "QueueOpened",
            Self::QueueClosed { .. } => "QueueClosed",
            Self::QueueSettingsChanged { .. } => "QueueSettingsChanged",
            Self::QueueHandlerAdded { .. } => "QueueHandlerAdded",
            Self::QueueHandlerRemoved { .. } => "QueueHandlerRemoved",
            Self::CustomerJoinedQueue { .. } => "CustomerJoinedQueue",
            Self::CustomerLeftQueue { .. } => "CustomerLeftQueue",
            Self::CustomerPicked { .. } => "CustomerPicked",
            Self::ConversationTransferred { .. } => "ConversationTransferred",
            Self::CustomerOffered { .. } => "CustomerOffered",
            Self::OfferAccepted { .. } => "OfferAccepted",
            Self::OfferDeclined { .. } => "OfferDeclined",
            Self::OfferExpired { .. } => "OfferExpired",
            Self::MessageLeft { .. } => "MessageLeft",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
