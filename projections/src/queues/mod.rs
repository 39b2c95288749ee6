//! `queues`: each queue's name, open or closed, settings and handlers, and its waiting line in
//! order with each wait's start. The line is ordered by `rank`: a join ranks by its position
//! (later joins wait behind), a transfer in by minus its position (it waits first, ahead of
//! earlier transfers too), as the `Queue` aggregate orders it. A customer's place is then one
//! count.

pub mod read;

use async_trait::async_trait;
use domain::queue::{QueueEvent, QueueSettings};
use domain::Event;
use store::event::StoredEvent;

use crate::database::{micros, Tx};
use crate::params;
use crate::runtime::{Index, Projection, ProjectionError, Table};

pub struct Queues;

const TABLES: &[Table] = &[
    Table {
        name: "rm_queues",
        columns: "queue_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, name TEXT NOT NULL, \
                  open BIGINT NOT NULL, settings TEXT NOT NULL, created_at BIGINT NOT NULL, \
                  created_position BIGINT NOT NULL",
        indexes: &[Index {
            name: "rm_queues_by_org",
            columns: "organization_id, created_position",
            unique: false,
            lookup: false,
        }],
        full_text: None,
    },
    Table {
        name: "rm_queue_handlers",
        columns: "queue_id TEXT NOT NULL, agent_id TEXT NOT NULL, \
                  PRIMARY KEY (queue_id, agent_id)",
        indexes: &[],
        full_text: None,
    },
    Table {
        name: "rm_queue_waiting",
        columns: "conversation_id TEXT PRIMARY KEY, queue_id TEXT NOT NULL, \
                  organization_id TEXT NOT NULL, rank BIGINT NOT NULL, since BIGINT NOT NULL",
        indexes: &[Index {
            name: "rm_queue_waiting_line",
            columns: "queue_id, rank",
            unique: false,
            lookup: false,
        }],
        full_text: None,
    },
];

fn settings_json(settings: &QueueSettings) -> Result<String, ProjectionError> {
    serde_json::to_string(settings).map_err(|e| ProjectionError::Invalid(e.to_string()))
}

#[async_trait]
impl Projection for Queues {
    fn name(&self) -> &'static str {
        "queues"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        const TYPES: &[&str] = &domain::event_types![
            "QueueCreated",
            "QueueOpened",
            "QueueClosed",
            "QueueSettingsChanged",
            "QueueHandlerAdded",
            "QueueHandlerRemoved",
            "CustomerJoinedQueue",
            "ConversationTransferred",
            "CustomerLeftQueue",
            "CustomerPicked",
        ];
        Some(TYPES)
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        event: &StoredEvent,
        decoded: &Event,
    ) -> Result<(), ProjectionError> {
        let Event::Queue(queue_event) = decoded else {
            return Ok(());
        };
        match queue_event {
            QueueEvent::QueueCreated { .. }
            | QueueEvent::QueueOpened { .. }
            | QueueEvent::QueueClosed { .. }
            | QueueEvent::QueueSettingsChanged { .. }
            | QueueEvent::QueueHandlerAdded { .. }
            | QueueEvent::QueueHandlerRemoved { .. } => queue(tx, event, queue_event).await?,
            // A left message waits in no line.
            QueueEvent::MessageLeft { .. } => {}
            QueueEvent::CustomerJoinedQueue { .. }
            | QueueEvent::ConversationTransferred { .. }
            | QueueEvent::CustomerLeftQueue { .. }
            | QueueEvent::CustomerPicked { .. } => line(tx, event, queue_event).await?,
            // Offers change nobody's place (the queue's stream keeps them).
            QueueEvent::CustomerOffered { .. }
            | QueueEvent::OfferAccepted { .. }
            | QueueEvent::OfferDeclined { .. }
            | QueueEvent::OfferExpired { .. } => {}
        }
        Ok(())
    }
}

async fn wait(
    tx: &mut Tx,
    conversation_id: uuid::Uuid,
    queue_id: uuid::Uuid,
    organization_id: uuid::Uuid,
    rank: i64,
    since: i64,
) -> Result<(), ProjectionError> {
    // A conversation waits in one queue at a time; a transfer's arrival replaces any stale row.
    tx.execute(
        "DELETE FROM rm_queue_waiting{s} WHERE conversation_id = $1",
        params![conversation_id],
    )
    .await?;
    tx.execute(
        "INSERT INTO rm_queue_waiting{s} (conversation_id, queue_id, organization_id, rank, since)
         VALUES ($1, $2, $3, $4, $5)",
        params![conversation_id, queue_id, organization_id, rank, since],
    )
    .await?;
    Ok(())
}

/// A queue's row: its creation, opening and closing, settings and handlers.
async fn queue(
    tx: &mut Tx,
    event: &StoredEvent,
    queue_event: &QueueEvent,
) -> Result<(), ProjectionError> {
    let at = micros(event.recorded_at);
    match queue_event {
        QueueEvent::QueueCreated {
            queue_id,
            organization_id,
            name,
        } => {
            let settings = settings_json(&QueueSettings::named(name.clone()))?;
            tx.execute(
                "INSERT INTO rm_queues{s} (queue_id, organization_id, name, open, settings,
                 created_at, created_position) VALUES ($1, $2, $3, 0, $4, $5, $6)",
                params![
                    queue_id,
                    organization_id,
                    name.as_str(),
                    settings,
                    at,
                    event.position
                ],
            )
            .await?;
        }
        QueueEvent::QueueOpened { queue_id, .. } | QueueEvent::QueueClosed { queue_id, .. } => {
            let open = matches!(queue_event, QueueEvent::QueueOpened { .. });
            tx.execute(
                "UPDATE rm_queues{s} SET open = $1 WHERE queue_id = $2",
                params![open, queue_id],
            )
            .await?;
        }
        QueueEvent::QueueSettingsChanged {
            queue_id, settings, ..
        } => {
            tx.execute(
                "UPDATE rm_queues{s} SET name = $1, settings = $2 WHERE queue_id = $3",
                params![settings.name.as_str(), settings_json(settings)?, queue_id],
            )
            .await?;
        }
        QueueEvent::QueueHandlerAdded {
            queue_id, agent_id, ..
        } => {
            tx.execute(
                "INSERT INTO rm_queue_handlers{s} (queue_id, agent_id) VALUES ($1, $2)
                 ON CONFLICT (queue_id, agent_id) DO NOTHING",
                params![queue_id, agent_id],
            )
            .await?;
        }
        QueueEvent::QueueHandlerRemoved {
            queue_id, agent_id, ..
        } => {
            tx.execute(
                "DELETE FROM rm_queue_handlers{s} WHERE queue_id = $1 AND agent_id = $2",
                params![queue_id, agent_id],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Who waits in a queue's line: a join at the back, a transfer's arrival at the front, and
/// whoever leaves or is picked.
async fn line(
    tx: &mut Tx,
    event: &StoredEvent,
    queue_event: &QueueEvent,
) -> Result<(), ProjectionError> {
    let at = micros(event.recorded_at);
    match queue_event {
        QueueEvent::CustomerJoinedQueue {
            queue_id,
            organization_id,
            conversation_id,
            ..
        } => {
            wait(
                tx,
                *conversation_id,
                *queue_id,
                *organization_id,
                event.position,
                at,
            )
            .await?;
        }
        QueueEvent::ConversationTransferred {
            queue_id,
            organization_id,
            conversation_id,
            ..
        } => {
            wait(
                tx,
                *conversation_id,
                *queue_id,
                *organization_id,
                -event.position,
                at,
            )
            .await?;
        }
        QueueEvent::CustomerLeftQueue {
            queue_id,
            conversation_id,
            ..
        }
        | QueueEvent::CustomerPicked {
            queue_id,
            conversation_id,
            ..
        } => {
            tx.execute(
                "DELETE FROM rm_queue_waiting{s} WHERE conversation_id = $1 AND queue_id = $2",
                params![conversation_id, queue_id],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}
