//! `stats`: the statistics' samples as read-model rows — one row per wait, per handle and per
//! rating, and one per offer event of auto routing — so that `GET /v1/queues/{queue}/stats`
//! reads one queue's rows instead of the log.
//!
//! The rows are the [`StatsFold`](super::StatsFold)'s samples (and its first responses, and each
//! queue's targets as they stand), kept by the same rules: a wait
//! starts with a join or a transfer in and ends with the pick, leave or transfer that ends it; a
//! handle starts with a pick and ends with `ConversationEnded` or a transfer out. Each row is
//! keyed by the position of the event that started it, so rows read in key order are the
//! fold's samples in the order they started. [`samples_from_rows`](super::samples_from_rows)
//! turns them back into [`Samples`](super::Samples), and [`compute`](super::compute) makes the
//! figures from them exactly as `jono stats` does from the log; a test over random histories
//! holds the rows to the fold.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::conversation::ConversationEvent;
use domain::queue::{LeaveReason, QueueEvent};
use domain::values::AuthorKind;
use domain::Event;
use serde_json::json;
use store::event::StoredEvent;
use uuid::Uuid;

use super::fold::{HandleOutcome, OfferOutcome, Targets, WaitOutcome, EVENT_TYPES};
use crate::database::{micros, Tx};
use crate::params;
use crate::runs::{self, Sent};
use crate::runtime::{Index, Projection, ProjectionError, Table};

pub struct StatsRows;

const TABLES: &[Table] = &[
    Table {
        name: "rm_stat_waits",
        columns: "position BIGINT PRIMARY KEY, queue_id TEXT NOT NULL, \
                  organization_id TEXT NOT NULL, conversation_id TEXT NOT NULL, \
                  start_at BIGINT NOT NULL, transferred_in BIGINT NOT NULL, end_at BIGINT, \
                  outcome TEXT, agent_id TEXT, target BIGINT",
        indexes: &[
            Index {
                name: "rm_stat_waits_by_queue",
                columns: "queue_id, position",
                unique: false,
                lookup: false,
            },
            Index {
                name: "rm_stat_waits_by_org",
                columns: "organization_id, position",
                unique: false,
                lookup: false,
            },
            Index {
                name: "rm_stat_waits_by_conversation",
                columns: "conversation_id, end_at",
                unique: false,
                lookup: true,
            },
        ],
        full_text: None,
    },
    Table {
        name: "rm_stat_handles",
        columns: "position BIGINT PRIMARY KEY, queue_id TEXT NOT NULL, \
                  organization_id TEXT NOT NULL, agent_id TEXT NOT NULL, \
                  conversation_id TEXT NOT NULL, start_at BIGINT NOT NULL, end_at BIGINT, \
                  outcome TEXT",
        indexes: &[
            Index {
                name: "rm_stat_handles_by_queue",
                columns: "queue_id, position",
                unique: false,
                lookup: false,
            },
            Index {
                name: "rm_stat_handles_by_org",
                columns: "organization_id, position",
                unique: false,
                lookup: false,
            },
            Index {
                name: "rm_stat_handles_by_conversation",
                columns: "conversation_id, end_at",
                unique: false,
                lookup: true,
            },
        ],
        full_text: None,
    },
    // First responses, kept only for joins into a queue with a target; `answered` is 1 for an
    // agent's first message, 0 for an end without one.
    Table {
        name: "rm_stat_responses",
        columns: "position BIGINT PRIMARY KEY, queue_id TEXT NOT NULL, \
                  organization_id TEXT NOT NULL, conversation_id TEXT NOT NULL, \
                  start_at BIGINT NOT NULL, target BIGINT NOT NULL, end_at BIGINT, \
                  answered BIGINT",
        indexes: &[
            Index {
                name: "rm_stat_responses_by_queue",
                columns: "queue_id, position",
                unique: false,
                lookup: false,
            },
            Index {
                name: "rm_stat_responses_by_org",
                columns: "organization_id, position",
                unique: false,
                lookup: false,
            },
            Index {
                name: "rm_stat_responses_by_conversation",
                columns: "conversation_id, end_at",
                unique: false,
                lookup: true,
            },
        ],
        full_text: None,
    },
    // Each queue's service-level targets now (µs), for the samples that start next.
    Table {
        name: "rm_stat_targets",
        columns: "queue_id TEXT PRIMARY KEY, wait BIGINT, first_response BIGINT",
        indexes: &[],
        full_text: None,
    },
    Table {
        name: "rm_stat_ratings",
        columns: "position BIGINT PRIMARY KEY, queue_id TEXT, organization_id TEXT NOT NULL, \
                  agent_id TEXT, at BIGINT NOT NULL, score BIGINT NOT NULL",
        indexes: &[
            Index {
                name: "rm_stat_ratings_by_queue",
                columns: "queue_id, position",
                unique: false,
                lookup: false,
            },
            Index {
                name: "rm_stat_ratings_by_org",
                columns: "organization_id, position",
                unique: false,
                lookup: false,
            },
        ],
        full_text: None,
    },
    Table {
        name: "rm_stat_left_messages",
        columns: "position BIGINT PRIMARY KEY, queue_id TEXT NOT NULL, \
                  organization_id TEXT NOT NULL, at BIGINT NOT NULL",
        indexes: &[
            Index {
                name: "rm_stat_left_messages_by_queue",
                columns: "queue_id, position",
                unique: false,
                lookup: false,
            },
            Index {
                name: "rm_stat_left_messages_by_org",
                columns: "organization_id, position",
                unique: false,
                lookup: false,
            },
        ],
        full_text: None,
    },
    Table {
        name: "rm_stat_offers",
        columns: "position BIGINT PRIMARY KEY, queue_id TEXT NOT NULL, \
                  organization_id TEXT NOT NULL, at BIGINT NOT NULL, outcome TEXT NOT NULL",
        indexes: &[
            Index {
                name: "rm_stat_offers_by_queue",
                columns: "queue_id, position",
                unique: false,
                lookup: false,
            },
            Index {
                name: "rm_stat_offers_by_org",
                columns: "organization_id, position",
                unique: false,
                lookup: false,
            },
        ],
        full_text: None,
    },
];

fn offer_outcome(outcome: OfferOutcome) -> &'static str {
    match outcome {
        OfferOutcome::Offered => "offered",
        OfferOutcome::Accepted => "accepted",
        OfferOutcome::Declined => "declined",
        OfferOutcome::Expired => "expired",
    }
}

fn wait_outcome(outcome: WaitOutcome) -> (&'static str, Option<Uuid>) {
    match outcome {
        WaitOutcome::Picked { agent_id } => ("picked", Some(agent_id)),
        WaitOutcome::Abandoned => ("abandoned", None),
        WaitOutcome::TimedOut => ("timed_out", None),
        WaitOutcome::TransferredOut => ("transferred_out", None),
        WaitOutcome::Removed => ("removed", None),
    }
}

fn handle_outcome(outcome: HandleOutcome) -> &'static str {
    match outcome {
        HandleOutcome::Ended => "ended",
        HandleOutcome::TransferredOut => "transferred_out",
    }
}

#[async_trait]
impl Projection for StatsRows {
    fn name(&self) -> &'static str {
        "stats"
    }

    fn version(&self) -> i64 {
        // 2: service-level targets (waits' `target`, `rm_stat_responses`, `rm_stat_targets`).
        // 3: the offers of auto routing (`rm_stat_offers`).
        // 4: messages left when nobody could answer (`rm_stat_left_messages`).
        4
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&EVENT_TYPES)
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        event: &StoredEvent,
        decoded: &Event,
    ) -> Result<(), ProjectionError> {
        if !EVENT_TYPES.contains(&event.event_type.as_str()) {
            return Ok(());
        }
        let at = event.recorded_at;
        let position = event.position;
        match decoded {
            Event::Queue(QueueEvent::QueueSettingsChanged {
                queue_id, settings, ..
            }) => set_targets(tx, queue_id, Targets::of(settings)).await?,
            Event::Queue(QueueEvent::CustomerJoinedQueue {
                queue_id,
                organization_id,
                conversation_id,
                ..
            }) => {
                let ids = (*queue_id, *organization_id, *conversation_id);
                join(tx, position, at, ids).await?;
            }
            Event::Conversation(ConversationEvent::MessageSent {
                conversation_id,
                author,
                ..
            }) if author.kind == AuthorKind::Agent => {
                end_response(tx, at, *conversation_id, true).await?;
            }
            Event::Queue(QueueEvent::CustomerLeftQueue {
                conversation_id,
                reason,
                ..
            }) => {
                let outcome = match reason {
                    LeaveReason::Abandoned => WaitOutcome::Abandoned,
                    LeaveReason::Timeout => WaitOutcome::TimedOut,
                    LeaveReason::Removed => WaitOutcome::Removed,
                    LeaveReason::Transferred => WaitOutcome::TransferredOut,
                };
                end_wait(tx, at, *conversation_id, outcome).await?;
            }
            Event::Queue(QueueEvent::CustomerPicked {
                queue_id,
                organization_id,
                conversation_id,
                agent_id,
                ..
            }) => {
                let ids = (*queue_id, *organization_id, *conversation_id);
                pick(tx, position, at, ids, *agent_id).await?;
            }
            Event::Queue(QueueEvent::ConversationTransferred {
                queue_id,
                organization_id,
                conversation_id,
                ..
            }) => {
                end_handle(tx, at, *conversation_id, HandleOutcome::TransferredOut).await?;
                let ids = (*queue_id, *organization_id, *conversation_id);
                let _ = start_wait(tx, position, at, ids, true).await?;
            }
            Event::Conversation(ConversationEvent::ConversationEnded {
                conversation_id, ..
            }) => {
                end_handle(tx, at, *conversation_id, HandleOutcome::Ended).await?;
                end_response(tx, at, *conversation_id, false).await?;
            }
            Event::Conversation(ConversationEvent::ConversationRated {
                queue_id,
                organization_id,
                agent_id,
                score,
                ..
            }) => {
                let score = i64::from(score.get());
                rating(
                    tx,
                    position,
                    at,
                    (*queue_id, *organization_id, *agent_id),
                    score,
                )
                .await?;
            }
            Event::Queue(
                offer @ (QueueEvent::CustomerOffered { .. }
                | QueueEvent::OfferAccepted { .. }
                | QueueEvent::OfferDeclined { .. }
                | QueueEvent::OfferExpired { .. }),
            ) => offer_event(tx, position, at, offer).await?,
            Event::Queue(QueueEvent::MessageLeft {
                queue_id,
                organization_id,
                ..
            }) => {
                tx.execute(
                    "INSERT INTO rm_stat_left_messages{s} (position, queue_id, organization_id, at)
                     VALUES ($1, $2, $3, $4)",
                    params![position, queue_id, organization_id, micros(at)],
                )
                .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// An agent's first message in each conversation of the run ends its open first response
    /// (the later ones find it ended), in one statement.
    async fn apply_messages(&self, tx: &mut Tx, run: &[Sent<'_>]) -> Result<(), ProjectionError> {
        let mut first: HashMap<Uuid, i64> = HashMap::new();
        for sent in run
            .iter()
            .filter(|sent| sent.author.kind == AuthorKind::Agent)
        {
            first
                .entry(sent.conversation_id)
                .or_insert_with(|| micros(sent.event.recorded_at));
        }
        let rows: Vec<serde_json::Value> = first
            .into_iter()
            .map(|(conversation_id, at)| json!({"conversation_id": conversation_id, "at": at}))
            .collect();
        runs::over(
            tx,
            "UPDATE rm_stat_responses{s} AS r SET end_at = v.at, answered = 1
             FROM json_to_recordset($1::json) AS v(conversation_id text, at bigint)
             WHERE r.conversation_id = v.conversation_id AND r.end_at IS NULL",
            &rows,
        )
        .await?;
        Ok(())
    }
}

/// A queue's targets as they stand, for the waits and responses that start from now on.
async fn set_targets(
    tx: &mut Tx,
    queue_id: &Uuid,
    targets: Targets,
) -> Result<(), ProjectionError> {
    tx.execute(
        "INSERT INTO rm_stat_targets{s} (queue_id, wait, first_response)
         VALUES ($1, $2, $3) ON CONFLICT (queue_id)
         DO UPDATE SET wait = excluded.wait, first_response = excluded.first_response",
        params![queue_id, targets.wait, targets.first_response],
    )
    .await?;
    Ok(())
}

/// A join: a new wait, and a first response awaited if the queue has a target for it.
async fn join(
    tx: &mut Tx,
    position: i64,
    at: DateTime<Utc>,
    (queue_id, organization_id, conversation_id): (Uuid, Uuid, Uuid),
) -> Result<(), ProjectionError> {
    let targets = start_wait(
        tx,
        position,
        at,
        (queue_id, organization_id, conversation_id),
        false,
    )
    .await?;
    if let Some(target) = targets.first_response {
        tx.execute(
            "INSERT INTO rm_stat_responses{s} (position, queue_id, organization_id,
             conversation_id, start_at, target) VALUES ($1, $2, $3, $4, $5, $6)",
            params![
                position,
                queue_id,
                organization_id,
                conversation_id,
                micros(at),
                target
            ],
        )
        .await?;
    }
    Ok(())
}

/// A pick: the wait ends, a handle starts (ending one still open, as the fold does).
async fn pick(
    tx: &mut Tx,
    position: i64,
    at: DateTime<Utc>,
    (queue_id, organization_id, conversation_id): (Uuid, Uuid, Uuid),
    agent_id: Uuid,
) -> Result<(), ProjectionError> {
    end_wait(tx, at, conversation_id, WaitOutcome::Picked { agent_id }).await?;
    end_handle(tx, at, conversation_id, HandleOutcome::TransferredOut).await?;
    tx.execute(
        "INSERT INTO rm_stat_handles{s} (position, queue_id, organization_id,
         agent_id, conversation_id, start_at) VALUES ($1, $2, $3, $4, $5, $6)",
        params![
            position,
            queue_id,
            organization_id,
            agent_id,
            conversation_id,
            micros(at)
        ],
    )
    .await?;
    Ok(())
}

/// A rating, of the queue and the agent the conversation had (if any).
async fn rating(
    tx: &mut Tx,
    position: i64,
    at: DateTime<Utc>,
    (queue_id, organization_id, agent_id): (Option<Uuid>, Uuid, Option<Uuid>),
    score: i64,
) -> Result<(), ProjectionError> {
    tx.execute(
        "INSERT INTO rm_stat_ratings{s} (position, queue_id, organization_id,
         agent_id, at, score) VALUES ($1, $2, $3, $4, $5, $6)",
        params![
            position,
            queue_id,
            organization_id,
            agent_id,
            micros(at),
            score
        ],
    )
    .await?;
    Ok(())
}

/// One event of auto routing's offers.
async fn offer_event(
    tx: &mut Tx,
    position: i64,
    at: DateTime<Utc>,
    offer: &QueueEvent,
) -> Result<(), ProjectionError> {
    let (queue_id, organization_id, outcome) = match offer {
        QueueEvent::CustomerOffered {
            queue_id,
            organization_id,
            ..
        } => (queue_id, organization_id, OfferOutcome::Offered),
        QueueEvent::OfferAccepted {
            queue_id,
            organization_id,
            ..
        } => (queue_id, organization_id, OfferOutcome::Accepted),
        QueueEvent::OfferDeclined {
            queue_id,
            organization_id,
            ..
        } => (queue_id, organization_id, OfferOutcome::Declined),
        QueueEvent::OfferExpired {
            queue_id,
            organization_id,
            ..
        } => (queue_id, organization_id, OfferOutcome::Expired),
        _ => return Ok(()),
    };
    tx.execute(
        "INSERT INTO rm_stat_offers{s} (position, queue_id, organization_id, at,
         outcome) VALUES ($1, $2, $3, $4, $5)",
        params![
            position,
            queue_id,
            organization_id,
            micros(at),
            offer_outcome(outcome)
        ],
    )
    .await?;
    Ok(())
}

/// A new wait; like the fold, an older wait still open for the conversation (which the domain
/// never leaves) ends as moved on. Answers the queue's targets now.
async fn start_wait(
    tx: &mut Tx,
    position: i64,
    at: DateTime<Utc>,
    (queue_id, organization_id, conversation_id): (Uuid, Uuid, Uuid),
    transferred_in: bool,
) -> Result<Targets, ProjectionError> {
    end_wait(tx, at, conversation_id, WaitOutcome::TransferredOut).await?;
    let found: Option<(Option<i64>, Option<i64>)> = tx
        .fetch_optional(
            "SELECT wait, first_response FROM rm_stat_targets{s} WHERE queue_id = $1",
            params![queue_id],
        )
        .await?;
    let targets = found
        .map(|(wait, first_response)| Targets {
            wait,
            first_response,
        })
        .unwrap_or_default();
    tx.execute(
        "INSERT INTO rm_stat_waits{s} (position, queue_id, organization_id, conversation_id,
         start_at, transferred_in, target) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![
            position,
            queue_id,
            organization_id,
            conversation_id,
            micros(at),
            i64::from(transferred_in),
            targets.wait
        ],
    )
    .await?;
    Ok(targets)
}

async fn end_response(
    tx: &mut Tx,
    at: DateTime<Utc>,
    conversation_id: Uuid,
    answered: bool,
) -> Result<(), ProjectionError> {
    tx.execute(
        "UPDATE rm_stat_responses{s} SET end_at = $1, answered = $2
         WHERE conversation_id = $3 AND end_at IS NULL",
        params![micros(at), i64::from(answered), conversation_id],
    )
    .await?;
    Ok(())
}

async fn end_wait(
    tx: &mut Tx,
    at: DateTime<Utc>,
    conversation_id: Uuid,
    outcome: WaitOutcome,
) -> Result<(), ProjectionError> {
    let (outcome, agent_id) = wait_outcome(outcome);
    tx.execute(
        "UPDATE rm_stat_waits{s} SET end_at = $1, outcome = $2, agent_id = $3
         WHERE conversation_id = $4 AND end_at IS NULL",
        params![micros(at), outcome, agent_id, conversation_id],
    )
    .await?;
    Ok(())
}

async fn end_handle(
    tx: &mut Tx,
    at: DateTime<Utc>,
    conversation_id: Uuid,
    outcome: HandleOutcome,
) -> Result<(), ProjectionError> {
    tx.execute(
        "UPDATE rm_stat_handles{s} SET end_at = $1, outcome = $2
         WHERE conversation_id = $3 AND end_at IS NULL",
        params![micros(at), handle_outcome(outcome), conversation_id],
    )
    .await?;
    Ok(())
}
