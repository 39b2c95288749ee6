//! Statistics read from the store: the whole log in commit order through the fold, or one
//! queue's stream for the queue at an instant.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::organization::Organization;
use domain::queue::{Queue, QueueEvent};
use domain::Event;
use serde::{Deserialize, Serialize};
use store::{EventStore, StoreError, StoredEvent};
use uuid::Uuid;

use super::figures::{compute, compute_buckets, micros, Bucket, By, QueueStats, MAX_BUCKETS};
use super::fold::{StatsFold, EVENT_TYPES};
use super::Scope;

/// How many events one read of the log takes.
const BATCH: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event at position {position} is unreadable: {reason}")]
    Corrupt { position: i64, reason: String },
    #[error("there is no queue {0} in the log")]
    UnknownQueue(Uuid),
    #[error("there is no organization {0} in the log")]
    UnknownOrganization(Uuid),
    #[error("queue {queue_id} did not exist yet at {at}")]
    NotYetCreated { queue_id: Uuid, at: DateTime<Utc> },
    #[error("the window is empty: from ({from}) must be before to ({to})")]
    EmptyWindow {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error("too many buckets (more than {MAX_BUCKETS}): narrow the window or use --by day")]
    TooManyBuckets,
}

/// `jono stats`' JSON: `{from, to, total, buckets}`; `buckets` is empty without `--by`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    pub total: QueueStats,
    pub buckets: Vec<Bucket>,
}

/// API.md's statistics of `scope` over `from ≤ t < to`, read from the log alone. `to` defaults
/// to now, `from` to the beginning of the log.
pub async fn stats_from_log(
    store: &EventStore,
    scope: Scope,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    by: Option<By>,
) -> Result<Report, StatsError> {
    let to = to.unwrap_or_else(Utc::now);
    if let Some(from) = from.filter(|from| *from >= to) {
        return Err(StatsError::EmptyWindow { from, to });
    }
    let mut fold = StatsFold::for_scope(scope);
    let mut organization_known = false;
    let organization_stream = match scope {
        Scope::Organization(id) => Some(id.to_string()),
        Scope::Queue(_) => None,
    };
    let mut position = 0;
    loop {
        let batch = store.read_after(position, BATCH).await?;
        let Some(last) = batch.last() else { break };
        position = last.position;
        for stored in batch {
            if let Some(id) = &organization_stream {
                organization_known |= stored.aggregate_type == Organization::TYPE
                    && stored.event_type == "OrganizationCreated"
                    && stored.aggregate_id == *id;
            }
            if !EVENT_TYPES.contains(&stored.event_type.as_str()) {
                continue;
            }
            let (position, at) = (stored.position, stored.recorded_at);
            fold.apply(position, at, &decode(stored)?);
        }
    }
    let samples = fold.into_samples();
    match scope {
        Scope::Queue(id) if !samples.queues.contains_key(&id) => {
            return Err(StatsError::UnknownQueue(id))
        }
        Scope::Organization(id) if !organization_known => {
            return Err(StatsError::UnknownOrganization(id))
        }
        _ => {}
    }
    let total = compute(&samples, scope, from, to);
    let buckets = match by {
        None => Vec::new(),
        Some(by) => {
            compute_buckets(&samples, scope, from, to, by).ok_or(StatsError::TooManyBuckets)?
        }
    };
    Ok(Report {
        from,
        to,
        total,
        buckets,
    })
}

fn decode(stored: StoredEvent) -> Result<Event, StatsError> {
    Event::decode(&stored.aggregate_type, stored.payload).map_err(|error| StatsError::Corrupt {
        position: stored.position,
        reason: error.to_string(),
    })
}

/// One customer in the line of a [`QueueSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingCustomer {
    /// 1 for the next to be picked.
    pub position: usize,
    pub conversation_id: Uuid,
    /// When this wait began: the join, or the transfer into this queue.
    pub since: DateTime<Utc>,
    /// From `since` to the snapshot's instant, to the millisecond.
    pub waited_seconds: f64,
}

/// A queue as it stood at instant `at`: after every event of its stream recorded before `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    pub queue_id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub at: DateTime<Utc>,
    pub open: bool,
    pub waiting: Vec<WaitingCustomer>,
}

/// The queue at instant `at`, from its own stream: the `Queue` aggregate itself is folded, so the
/// line's order is the domain's (transfers in go first).
pub async fn queue_at(
    store: &EventStore,
    queue_id: Uuid,
    at: DateTime<Utc>,
) -> Result<QueueSnapshot, StatsError> {
    let stream = store
        .load_stream(Queue::TYPE, &queue_id.to_string())
        .await?;
    if stream.is_empty() {
        return Err(StatsError::UnknownQueue(queue_id));
    }
    let mut queue = Queue::default();
    let mut since: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    for stored in stream.into_iter().take_while(|e| e.recorded_at < at) {
        let recorded_at = stored.recorded_at;
        let Event::Queue(event) = decode(stored)? else {
            continue;
        };
        if let QueueEvent::CustomerJoinedQueue {
            conversation_id, ..
        }
        | QueueEvent::ConversationTransferred {
            conversation_id, ..
        } = &event
        {
            since.insert(*conversation_id, recorded_at);
        }
        queue.apply(event);
    }
    if queue.id.is_none() {
        return Err(StatsError::NotYetCreated { queue_id, at });
    }
    let waiting = queue
        .waiting
        .iter()
        .enumerate()
        .map(|(index, conversation_id)| {
            let since = since.get(conversation_id).copied().unwrap_or(at);
            WaitingCustomer {
                position: index + 1,
                conversation_id: *conversation_id,
                since,
                waited_seconds: super::figures::seconds(micros(since, at)),
            }
        })
        .collect();
    Ok(QueueSnapshot {
        queue_id,
        organization_id: queue.organization_id,
        name: queue
            .settings
            .map(|settings| settings.name.as_str().to_owned())
            .unwrap_or_default(),
        at,
        open: queue.open,
        waiting,
    })
}
