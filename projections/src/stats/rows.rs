//! `stats`: the statistics' samples as read-model rows — one row per wait, per handle and per
//! rating, and one per offer event of auto routing — so that `GET /v1/queues/{queue}/stats`
//! reads one queue's rows instead of the log.
//!
//! The rows are the [`StatsFold`](super::StatsFold)'s samples (and its first responses, and each
//! queue's targets as they stand), kept by the same rules: a wait
//! starts with a join or a transfer in and ends with the pick, leave or transfer that ends it; a
//! handle starts with a pick and ends with `ConversationEnded` or a transfer out. Each row is
//! keyed by the position of the event that started it, so rows read in key order are the
//! fold's samples in the order they started. [`samples_from_rows`] turns them back into
//! [`Samples`], and [`compute`](super::compute) makes the figures from them exactly as
//! `jono stats` does from the log; a test over random histories holds the rows to the fold.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::conversation::ConversationEvent;
use domain::queue::{LeaveReason, QueueEvent};
use domain::values::AuthorKind;
use domain::Event;
use store::event::StoredEvent;
use store::Backend;
use uuid::Uuid;

use super::fold::{
    Handle, HandleEnd, HandleOutcome, LeftMessage, OfferEvent, OfferOutcome, Rating, Response,
    ResponseEnd, Samples, Targets, Wait, WaitEnd, WaitOutcome, EVENT_TYPES,
};
use super::Scope;
use crate::database::{fetch_all, micros, Tx};
use crate::params;
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
            },
            Index {
                name: "rm_stat_waits_by_org",
                columns: "organization_id, position",
                unique: false,
            },
            Index {
                name: "rm_stat_waits_by_conversation",
                columns: "conversation_id, end_at",
                unique: false,
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
            },
            Index {
                name: "rm_stat_handles_by_org",
                columns: "organization_id, position",
                unique: false,
            },
            Index {
                name: "rm_stat_handles_by_conversation",
                columns: "conversation_id, end_at",
                unique: false,
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
            },
            Index {
                name: "rm_stat_responses_by_org",
                columns: "organization_id, position",
                unique: false,
            },
            Index {
                name: "rm_stat_responses_by_conversation",
                columns: "conversation_id, end_at",
                unique: false,
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
            },
            Index {
                name: "rm_stat_ratings_by_org",
                columns: "organization_id, position",
                unique: false,
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
            },
            Index {
                name: "rm_stat_left_messages_by_org",
                columns: "organization_id, position",
                unique: false,
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
            },
            Index {
                name: "rm_stat_offers_by_org",
                columns: "organization_id, position",
                unique: false,
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
            }) => {
                let targets = Targets::of(settings);
                tx.execute(
                    "INSERT INTO rm_stat_targets{s} (queue_id, wait, first_response)
                     VALUES ($1, $2, $3) ON CONFLICT (queue_id)
                     DO UPDATE SET wait = excluded.wait, first_response = excluded.first_response",
                    params![queue_id, targets.wait, targets.first_response],
                )
                .await?;
            }
            Event::Queue(QueueEvent::CustomerJoinedQueue {
                queue_id,
                organization_id,
                conversation_id,
                ..
            }) => {
                let targets = start_wait(
                    tx,
                    position,
                    at,
                    (*queue_id, *organization_id, *conversation_id),
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
                let agent_id = *agent_id;
                end_wait(tx, at, *conversation_id, WaitOutcome::Picked { agent_id }).await?;
                end_handle(tx, at, *conversation_id, HandleOutcome::TransferredOut).await?;
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
            }
            Event::Queue(QueueEvent::ConversationTransferred {
                queue_id,
                organization_id,
                conversation_id,
                ..
            }) => {
                end_handle(tx, at, *conversation_id, HandleOutcome::TransferredOut).await?;
                let _ = start_wait(
                    tx,
                    position,
                    at,
                    (*queue_id, *organization_id, *conversation_id),
                    true,
                )
                .await?;
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
                tx.execute(
                    "INSERT INTO rm_stat_ratings{s} (position, queue_id, organization_id,
                     agent_id, at, score) VALUES ($1, $2, $3, $4, $5, $6)",
                    params![
                        position,
                        *queue_id,
                        organization_id,
                        *agent_id,
                        micros(at),
                        i64::from(score.get())
                    ],
                )
                .await?;
            }
            Event::Queue(
                offer @ (QueueEvent::CustomerOffered {
                    queue_id,
                    organization_id,
                    ..
                }
                | QueueEvent::OfferAccepted {
                    queue_id,
                    organization_id,
                    ..
                }
                | QueueEvent::OfferDeclined {
                    queue_id,
                    organization_id,
                    ..
                }
                | QueueEvent::OfferExpired {
                    queue_id,
                    organization_id,
                    ..
                }),
            ) => {
                let outcome = match offer {
                    QueueEvent::CustomerOffered { .. } => OfferOutcome::Offered,
                    QueueEvent::OfferAccepted { .. } => OfferOutcome::Accepted,
                    QueueEvent::OfferDeclined { .. } => OfferOutcome::Declined,
                    _ => OfferOutcome::Expired,
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
            }
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

type WaitRow = (
    i64,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);
type ResponseRow = (
    i64,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);
type HandleRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
);
type RatingRow = (i64, Option<String>, String, Option<String>, i64, i64);
type OfferRow = (i64, String, String, i64, String);

/// The samples of `scope` as the `stats` read model holds them: what the fold of the log gives
/// for the same scope (its waits, handles and ratings, in the order they started), up to the
/// read model's checkpoint. The queues' histories are not kept here; `samples.queues` is empty.
pub async fn samples_from_rows(backend: &Backend, scope: Scope) -> Result<Samples, StatsRowError> {
    let (column, id) = match scope {
        Scope::Queue(id) => ("queue_id", id),
        Scope::Organization(id) => ("organization_id", id),
    };
    let id = id.to_string();
    let waits: Vec<WaitRow> = fetch_all(
        backend,
        &format!(
            "SELECT position, queue_id, organization_id, conversation_id, start_at,
             transferred_in, end_at, outcome, agent_id, target
             FROM rm_stat_waits WHERE {column} = $1 ORDER BY position"
        ),
        params![id.as_str()],
    )
    .await?;
    let handles: Vec<HandleRow> = fetch_all(
        backend,
        &format!(
            "SELECT position, queue_id, organization_id, agent_id, conversation_id, start_at,
             end_at, outcome FROM rm_stat_handles WHERE {column} = $1 ORDER BY position"
        ),
        params![id.as_str()],
    )
    .await?;
    let ratings: Vec<RatingRow> = fetch_all(
        backend,
        &format!(
            "SELECT position, queue_id, organization_id, agent_id, at, score
             FROM rm_stat_ratings WHERE {column} = $1 ORDER BY position"
        ),
        params![id.as_str()],
    )
    .await?;
    let responses: Vec<ResponseRow> = fetch_all(
        backend,
        &format!(
            "SELECT position, queue_id, organization_id, conversation_id, start_at, target,
             end_at, answered FROM rm_stat_responses WHERE {column} = $1 ORDER BY position"
        ),
        params![id.as_str()],
    )
    .await?;

    let offers: Vec<OfferRow> = fetch_all(
        backend,
        &format!(
            "SELECT position, queue_id, organization_id, at, outcome
             FROM rm_stat_offers WHERE {column} = $1 ORDER BY position"
        ),
        params![id.as_str()],
    )
    .await?;
    let left: Vec<(i64, String, String, i64)> = fetch_all(
        backend,
        &format!(
            "SELECT position, queue_id, organization_id, at
             FROM rm_stat_left_messages WHERE {column} = $1 ORDER BY position"
        ),
        params![id.as_str()],
    )
    .await?;
    let mut samples = Samples::default();
    for (position, queue, org, conversation, start, transferred_in, end, outcome, agent, target) in
        waits
    {
        let end = match (end, outcome) {
            (Some(end), Some(outcome)) => Some(WaitEnd {
                at: time(end)?,
                outcome: match (outcome.as_str(), agent) {
                    ("picked", Some(agent)) => WaitOutcome::Picked {
                        agent_id: uuid(&agent)?,
                    },
                    ("abandoned", _) => WaitOutcome::Abandoned,
                    ("timed_out", _) => WaitOutcome::TimedOut,
                    ("transferred_out", _) => WaitOutcome::TransferredOut,
                    ("removed", _) => WaitOutcome::Removed,
                    (other, _) => return Err(StatsRowError::corrupt("wait outcome", other)),
                },
            }),
            _ => None,
        };
        samples.position = samples.position.max(position);
        samples.waits.push(Wait {
            queue_id: uuid(&queue)?,
            organization_id: uuid(&org)?,
            conversation_id: uuid(&conversation)?,
            start: time(start)?,
            transferred_in: transferred_in != 0,
            target,
            end,
        });
    }
    for (position, queue, org, conversation, start, target, end, answered) in responses {
        samples.position = samples.position.max(position);
        samples.responses.push(Response {
            queue_id: uuid(&queue)?,
            organization_id: uuid(&org)?,
            conversation_id: uuid(&conversation)?,
            start: time(start)?,
            target,
            end: match end {
                Some(end) => Some(ResponseEnd {
                    at: time(end)?,
                    answered: answered.unwrap_or(0) != 0,
                }),
                None => None,
            },
        });
    }
    for (position, queue, org, agent, conversation, start, end, outcome) in handles {
        let end = match (end, outcome) {
            (Some(end), Some(outcome)) => Some(HandleEnd {
                at: time(end)?,
                outcome: match outcome.as_str() {
                    "ended" => HandleOutcome::Ended,
                    "transferred_out" => HandleOutcome::TransferredOut,
                    other => return Err(StatsRowError::corrupt("handle outcome", other)),
                },
            }),
            _ => None,
        };
        samples.position = samples.position.max(position);
        samples.handles.push(Handle {
            queue_id: uuid(&queue)?,
            organization_id: uuid(&org)?,
            agent_id: uuid(&agent)?,
            conversation_id: uuid(&conversation)?,
            start: time(start)?,
            end,
        });
    }
    for (position, queue, org, agent, at, score) in ratings {
        samples.position = samples.position.max(position);
        samples.ratings.push(Rating {
            queue_id: queue.as_deref().map(uuid).transpose()?,
            organization_id: uuid(&org)?,
            agent_id: agent.as_deref().map(uuid).transpose()?,
            at: time(at)?,
            score: u8::try_from(score).map_err(|_| StatsRowError::corrupt("score", score))?,
        });
    }
    for (position, queue, org, at, outcome) in offers {
        samples.position = samples.position.max(position);
        samples.offers.push(OfferEvent {
            queue_id: uuid(&queue)?,
            organization_id: uuid(&org)?,
            at: time(at)?,
            outcome: match outcome.as_str() {
                "offered" => OfferOutcome::Offered,
                "accepted" => OfferOutcome::Accepted,
                "declined" => OfferOutcome::Declined,
                "expired" => OfferOutcome::Expired,
                other => return Err(StatsRowError::corrupt("offer outcome", other)),
            },
        });
    }
    for (position, queue, org, at) in left {
        samples.position = samples.position.max(position);
        samples.left_messages.push(LeftMessage {
            queue_id: uuid(&queue)?,
            organization_id: uuid(&org)?,
            at: time(at)?,
        });
    }
    Ok(samples)
}

fn uuid(text: &str) -> Result<Uuid, StatsRowError> {
    Uuid::parse_str(text).map_err(|_| StatsRowError::corrupt("id", text))
}

fn time(micros: i64) -> Result<DateTime<Utc>, StatsRowError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| StatsRowError::corrupt("time", micros))
}

#[derive(Debug, thiserror::Error)]
pub enum StatsRowError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("the stats read model holds an unreadable {what}: {value}")]
    Corrupt { what: &'static str, value: String },
}

impl StatsRowError {
    fn corrupt(what: &'static str, value: impl ToString) -> Self {
        StatsRowError::Corrupt {
            what,
            value: value.to_string(),
        }
    }
}
