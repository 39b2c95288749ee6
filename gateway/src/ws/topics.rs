//! The topics of API.md (`activity`, `queue:ID`, `conversation:ID`) and the access check a
//! subscription passes, at subscription and at every re-check: 404 as over HTTP for what the
//! caller may not see. The check decides once what following the topic reads (its [`Plan`]).

use uuid::Uuid;

use super::session::Who;
use crate::access;
use crate::auth::Caller;
use crate::state::AppState;

/// The topics of API.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Topic {
    Activity,
    Queue(Uuid),
    Conversation(Uuid),
}

impl Topic {
    pub(super) fn parse(raw: &str) -> Option<Topic> {
        if raw == "activity" {
            return Some(Topic::Activity);
        }
        if let Some(id) = raw.strip_prefix("queue:") {
            return id.parse().ok().map(Topic::Queue);
        }
        raw.strip_prefix("conversation:")
            .and_then(|id| id.parse().ok())
            .map(Topic::Conversation)
    }

    pub(super) fn name(&self) -> String {
        match self {
            Topic::Activity => "activity".to_owned(),
            Topic::Queue(id) => format!("queue:{id}"),
            Topic::Conversation(id) => format!("conversation:{id}"),
        }
    }
}

/// What following a topic reads, decided once at subscription.
#[derive(Debug, Clone)]
pub(super) enum Plan {
    Activity,
    Queue {
        queue_id: Uuid,
    },
    Conversation {
        conversation_id: Uuid,
        customer: bool,
    },
}

/// The queue events of API.md's `queue:ID` topic, and auto routing's offers.
pub(super) const QUEUE_TOPIC: [&str; 14] = domain::event_types![
    "QueueOpened",
    "QueueClosed",
    "QueueSettingsChanged",
    "QueueHandlerAdded",
    "QueueHandlerRemoved",
    "CustomerJoinedQueue",
    "CustomerLeftQueue",
    "CustomerPicked",
    "ConversationTransferred",
    "MessageLeft",
    "CustomerOffered",
    "OfferAccepted",
    "OfferDeclined",
    "OfferExpired",
];

/// Whether `who` may follow `topic`: 404 as over HTTP for what it may not see.
pub(super) async fn authorize(state: &AppState, who: &Who, topic: Topic) -> Result<Plan, u16> {
    match (topic, &who.caller) {
        (Topic::Activity, Caller::Agent(_)) => Ok(Plan::Activity),
        (Topic::Queue(queue_id), Caller::Agent(agent)) => {
            let queue = crate::consistency::found(state, || async {
                Ok(projections::queues::read::queue(state.backend(), queue_id).await?)
            })
            .await
            .map_err(|_| 503u16)?;
            let queue = queue.ok_or(404u16)?;
            access::member(state, agent, queue.organization_id)
                .await
                .map_err(|_| 404u16)?;
            Ok(Plan::Queue { queue_id })
        }
        (Topic::Conversation(conversation_id), caller) => {
            access::conversation(state, caller, conversation_id)
                .await
                .map_err(|_| 404u16)?;
            Ok(Plan::Conversation {
                conversation_id,
                customer: matches!(caller, Caller::Customer(_)),
            })
        }
        (_, Caller::Customer(_)) => Err(404),
    }
}
