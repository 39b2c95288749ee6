//! `activity`: what happened in each organization, by position — exactly API.md's Activity
//! types: `CustomerJoinedQueue`, `CustomerLeftQueue`, `CustomerPicked`, `QueueOpened`,
//! `QueueClosed`, `ConversationTransferred`, `ConversationEnded`, and `MessageSent` of channels
//! and direct chats. A direct chat's rows carry its two agents, so each sees only its own; the
//! projection remembers which conversations are channels or direct chats to know that.

pub mod read;

use async_trait::async_trait;
use domain::conversation::{ConversationEvent, ConversationKind};
use domain::queue::QueueEvent;
use domain::values::Author;
use domain::Event;
use serde_json::json;
use store::event::StoredEvent;
use uuid::Uuid;

use crate::database::{micros, Tx};
use crate::params;
use crate::runs::{self, Sent};
use crate::runtime::{Index, Projection, ProjectionError, Table};

pub struct Activity;

/// The types of the activity feed, one row each: what `GET /v1/activity` and the WebSocket's
/// `activity` topic carry (a `MessageSent` only of a channel or a direct chat).
pub const TYPES: [&str; 14] = domain::event_types![
    "QueueOpened",
    "QueueClosed",
    "CustomerJoinedQueue",
    "CustomerLeftQueue",
    "CustomerPicked",
    "ConversationTransferred",
    "MessageSent",
    "ConversationEnded",
    "MessageLeft",
    "ConversationReopened",
    "HandoffOffered",
    "HandoffAccepted",
    "HandoffDeclined",
    "HandoffExpired",
];

/// What the projection reads: [`TYPES`], and the start of a conversation, which makes no row
/// but says whether it is a channel or a direct chat (and whose) for its messages' rows.
const READS: [&str; TYPES.len() + 1] = {
    let mut reads = [domain::event::checked("ConversationStarted"); TYPES.len() + 1];
    let mut index = 0;
    while index < TYPES.len() {
        reads[index] = TYPES[index];
        index += 1;
    }
    reads
};

const TABLES: &[Table] = &[
    Table {
        name: "rm_activity",
        columns: "position BIGINT PRIMARY KEY, at BIGINT NOT NULL, organization_id TEXT NOT NULL, \
                  type TEXT NOT NULL, queue_id TEXT, conversation_id TEXT, agent_id TEXT, \
                  participant_a TEXT, participant_b TEXT",
        indexes: &[Index {
            name: "rm_activity_by_org",
            columns: "organization_id, position",
            unique: false,
            lookup: false,
        }],
        full_text: None,
    },
    Table {
        name: "rm_activity_conversations",
        columns: "conversation_id TEXT PRIMARY KEY, kind TEXT NOT NULL, \
                  participant_a TEXT, participant_b TEXT",
        indexes: &[],
        full_text: None,
    },
];

/// One activity row.
struct Row<'a> {
    organization_id: Uuid,
    kind: &'a str,
    queue_id: Option<Uuid>,
    conversation_id: Option<Uuid>,
    agent_id: Option<Uuid>,
    participants: (Option<String>, Option<String>),
}

fn agent_of(by: &Option<Author>) -> Option<Uuid> {
    by.as_ref().filter(|a| a.is_agent()).map(|a| a.id)
}

#[async_trait]
impl Projection for Activity {
    fn name(&self) -> &'static str {
        "activity"
    }

    fn version(&self) -> i64 {
        // 2: left messages and reopened conversations. 3: handoffs to a teammate.
        3
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&READS)
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        event: &StoredEvent,
        decoded: &Event,
    ) -> Result<(), ProjectionError> {
        let kind = event.event_type.as_str();
        let row = match decoded {
            Event::Queue(queue_event) => queue_row(kind, queue_event),
            Event::Conversation(conversation_event) => {
                conversation_row(tx, kind, conversation_event).await?
            }
            _ => None,
        };
        let Some(row) = row else {
            return Ok(());
        };
        tx.execute(
            "INSERT INTO rm_activity{s} (position, at, organization_id, type, queue_id,
             conversation_id, agent_id, participant_a, participant_b)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            params![
                event.position,
                micros(event.recorded_at),
                row.organization_id,
                row.kind,
                row.queue_id,
                row.conversation_id,
                row.agent_id,
                row.participants.0,
                row.participants.1
            ],
        )
        .await?;
        Ok(())
    }

    /// The run's messages in channels and direct chats, in one statement (those of customers'
    /// conversations are not activity). Each message looks its conversation up by its key
    /// (`OFFSET 0` keeps the lookup per row, never a scan of the table joined to the run).
    async fn apply_messages(&self, tx: &mut Tx, run: &[Sent<'_>]) -> Result<(), ProjectionError> {
        let rows: Vec<serde_json::Value> = run
            .iter()
            .map(|sent| {
                json!({
                    "position": sent.event.position,
                    "at": micros(sent.event.recorded_at),
                    "organization_id": sent.organization_id,
                    "type": sent.event.event_type,
                    "conversation_id": sent.conversation_id,
                    "agent_id": sent.author.is_agent().then_some(sent.author.id),
                })
            })
            .collect();
        runs::over(
            tx,
            "INSERT INTO rm_activity{s} (position, at, organization_id, type, queue_id,
             conversation_id, agent_id, participant_a, participant_b)
             SELECT v.position, v.at, v.organization_id, v.type, NULL, v.conversation_id,
             v.agent_id, k.participant_a, k.participant_b
             FROM json_to_recordset($1::json) AS v(position bigint, at bigint,
             organization_id text, type text, conversation_id text, agent_id text)
             CROSS JOIN LATERAL (SELECT participant_a, participant_b
                 FROM rm_activity_conversations{s}
                 WHERE conversation_id = v.conversation_id OFFSET 0) AS k",
            &rows,
        )
        .await?;
        Ok(())
    }
}

/// The row of a queue's event, if it makes one.
fn queue_row<'a>(kind: &'a str, queue_event: &QueueEvent) -> Option<Row<'a>> {
    use QueueEvent as Q;
    let (organization_id, queue_id, conversation_id, agent_id) = match queue_event {
        Q::QueueOpened {
            queue_id,
            organization_id,
            by,
        }
        | Q::QueueClosed {
            queue_id,
            organization_id,
            by,
        } => (*organization_id, *queue_id, None, *by),
        Q::CustomerJoinedQueue {
            queue_id,
            organization_id,
            conversation_id,
            ..
        }
        | Q::MessageLeft {
            queue_id,
            organization_id,
            conversation_id,
        } => (*organization_id, *queue_id, Some(*conversation_id), None),
        Q::CustomerLeftQueue {
            queue_id,
            organization_id,
            conversation_id,
            by,
            ..
        } => (
            *organization_id,
            *queue_id,
            Some(*conversation_id),
            agent_of(by),
        ),
        Q::CustomerPicked {
            queue_id,
            organization_id,
            conversation_id,
            agent_id,
            ..
        } => (
            *organization_id,
            *queue_id,
            Some(*conversation_id),
            Some(*agent_id),
        ),
        Q::ConversationTransferred {
            queue_id,
            organization_id,
            conversation_id,
            from_agent_id,
            by,
            ..
        } => (
            *organization_id,
            *queue_id,
            Some(*conversation_id),
            from_agent_id.or(agent_of(by)),
        ),
        Q::QueueCreated { .. }
        | Q::QueueSettingsChanged { .. }
        | Q::QueueHandlerAdded { .. }
        | Q::QueueHandlerRemoved { .. }
        | Q::CustomerOffered { .. }
        | Q::OfferAccepted { .. }
        | Q::OfferDeclined { .. }
        | Q::OfferExpired { .. } => return None,
    };
    Some(Row {
        organization_id,
        kind,
        queue_id: Some(queue_id),
        conversation_id,
        agent_id,
        participants: (None, None),
    })
}

/// The row of a conversation's event, if it makes one. The start of a channel or a direct chat
/// makes none, but is remembered for its messages' rows.
async fn conversation_row<'a>(
    tx: &mut Tx,
    kind: &'a str,
    conversation_event: &ConversationEvent,
) -> Result<Option<Row<'a>>, ProjectionError> {
    use ConversationEvent as C;
    let row = match conversation_event {
        C::ConversationStarted {
            conversation_id,
            kind: conversation_kind,
            participants,
            ..
        } if !conversation_kind.is_customers() => {
            remember(tx, conversation_id, conversation_kind, participants).await?;
            return Ok(None);
        }
        C::MessageSent {
            conversation_id,
            organization_id,
            author,
            ..
        } => {
            let found: Option<(String, Option<String>, Option<String>)> = tx
                .fetch_optional(
                    "SELECT kind, participant_a, participant_b
                     FROM rm_activity_conversations{s} WHERE conversation_id = $1",
                    params![conversation_id],
                )
                .await?;
            // Messages of customer conversations are not activity.
            let Some((_, a, b)) = found else {
                return Ok(None);
            };
            Row {
                organization_id: *organization_id,
                kind,
                queue_id: None,
                conversation_id: Some(*conversation_id),
                agent_id: author.is_agent().then_some(author.id),
                participants: (a, b),
            }
        }
        C::ConversationEnded {
            conversation_id,
            organization_id,
            queue_id,
            agent_id,
            ..
        } => Row {
            organization_id: *organization_id,
            kind,
            queue_id: *queue_id,
            conversation_id: Some(*conversation_id),
            agent_id: *agent_id,
            participants: (None, None),
        },
        C::ConversationReopened {
            conversation_id,
            organization_id,
            queue_id,
            agent_id,
            ..
        } => Row {
            organization_id: *organization_id,
            kind,
            queue_id: *queue_id,
            conversation_id: Some(*conversation_id),
            agent_id: Some(*agent_id),
            participants: (None, None),
        },
        // A handoff's row names the teammate it is offered to (and who answered).
        C::HandoffOffered {
            conversation_id,
            organization_id,
            queue_id,
            to_agent_id: agent_id,
            ..
        }
        | C::HandoffAccepted {
            conversation_id,
            organization_id,
            queue_id,
            agent_id,
            ..
        }
        | C::HandoffDeclined {
            conversation_id,
            organization_id,
            queue_id,
            agent_id,
            ..
        }
        | C::HandoffExpired {
            conversation_id,
            organization_id,
            queue_id,
            agent_id,
            ..
        } => Row {
            organization_id: *organization_id,
            kind,
            queue_id: *queue_id,
            conversation_id: Some(*conversation_id),
            agent_id: Some(*agent_id),
            participants: (None, None),
        },
        _ => return Ok(None),
    };
    Ok(Some(row))
}

/// A channel or a direct chat (and whose), for its messages' rows.
async fn remember(
    tx: &mut Tx,
    conversation_id: &Uuid,
    conversation_kind: &ConversationKind,
    participants: &[Uuid],
) -> Result<(), ProjectionError> {
    let (a, b) = pair(conversation_kind, participants);
    tx.execute(
        "INSERT INTO rm_activity_conversations{s}
         (conversation_id, kind, participant_a, participant_b)
         VALUES ($1, $2, $3, $4)",
        params![conversation_id, conversation_kind.as_str(), a, b],
    )
    .await?;
    Ok(())
}

/// A direct chat's two agents; none for a channel (every member sees it).
fn pair(kind: &ConversationKind, participants: &[Uuid]) -> (Option<String>, Option<String>) {
    if *kind != ConversationKind::Direct {
        return (None, None);
    }
    (
        participants.first().map(Uuid::to_string),
        participants.get(1).map(Uuid::to_string),
    )
}
