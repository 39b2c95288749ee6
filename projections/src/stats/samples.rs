//! The `stats` read model's rows read back as the fold's [`Samples`], for one queue or one
//! organization, in the order they started (see [`rows`](super::rows) for how they are kept).

use chrono::{DateTime, Utc};
use store::Backend;
use uuid::Uuid;

use super::fold::{
    Handle, HandleEnd, HandleOutcome, LeftMessage, OfferEvent, OfferOutcome, Rating, Response,
    ResponseEnd, Samples, Wait, WaitEnd, WaitOutcome,
};
use super::Scope;
use crate::database::fetch_all;
use crate::params;

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
type LeftMessageRow = (i64, String, String, i64);

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
    let left: Vec<LeftMessageRow> = fetch_all(
        backend,
        &format!(
            "SELECT position, queue_id, organization_id, at
             FROM rm_stat_left_messages WHERE {column} = $1 ORDER BY position"
        ),
        params![id.as_str()],
    )
    .await?;
    let mut samples = Samples::default();
    add_waits(&mut samples, waits)?;
    add_responses(&mut samples, responses)?;
    add_handles(&mut samples, handles)?;
    add_ratings(&mut samples, ratings)?;
    add_offers(&mut samples, offers)?;
    add_left_messages(&mut samples, left)?;
    Ok(samples)
}

fn add_waits(samples: &mut Samples, rows: Vec<WaitRow>) -> Result<(), StatsRowError> {
    for (position, queue, org, conversation, start, transferred_in, end, outcome, agent, target) in
        rows
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
    Ok(())
}

fn add_responses(samples: &mut Samples, rows: Vec<ResponseRow>) -> Result<(), StatsRowError> {
    for (position, queue, org, conversation, start, target, end, answered) in rows {
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
    Ok(())
}

fn add_handles(samples: &mut Samples, rows: Vec<HandleRow>) -> Result<(), StatsRowError> {
    for (position, queue, org, agent, conversation, start, end, outcome) in rows {
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
    Ok(())
}

fn add_ratings(samples: &mut Samples, rows: Vec<RatingRow>) -> Result<(), StatsRowError> {
    for (position, queue, org, agent, at, score) in rows {
        samples.position = samples.position.max(position);
        samples.ratings.push(Rating {
            queue_id: queue.as_deref().map(uuid).transpose()?,
            organization_id: uuid(&org)?,
            agent_id: agent.as_deref().map(uuid).transpose()?,
            at: time(at)?,
            score: u8::try_from(score).map_err(|_| StatsRowError::corrupt("score", score))?,
        });
    }
    Ok(())
}

fn add_offers(samples: &mut Samples, rows: Vec<OfferRow>) -> Result<(), StatsRowError> {
    for (position, queue, org, at, outcome) in rows {
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
    Ok(())
}

fn add_left_messages(
    samples: &mut Samples,
    rows: Vec<LeftMessageRow>,
) -> Result<(), StatsRowError> {
    for (position, queue, org, at) in rows {
        samples.position = samples.position.max(position);
        samples.left_messages.push(LeftMessage {
            queue_id: uuid(&queue)?,
            organization_id: uuid(&org)?,
            at: time(at)?,
        });
    }
    Ok(())
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
