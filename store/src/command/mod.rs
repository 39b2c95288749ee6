//! The command layer: load a stream, fold it into the aggregate, let the aggregate decide, append
//! with the expected version, and on a conflict do it all again against the new state, so the
//! loser of a race decides on what the winner left (invariant 2). Idempotency keys make a retried
//! request return its first answer (invariant 9).
//!
//! A command never folds its whole stream (invariant 10): it starts from the aggregate this
//! process's last command on the stream left (`recent`), or else from the stream's snapshot,
//! and folds only the events stored after that version — usually none. Another process may
//! have appended meanwhile; those events are read and folded before deciding, and if one lands
//! between that read and the append, the expected-version check refuses the append and the
//! command decides again from the log: the check stays the arbiter, the cache only saves work.
//! Every `snapshot_every` events (or after a load that had to fold as many) the state after a
//! successful append is written as a snapshot, in a task of its own, off the answer's path.
//!
//! cqrs-es's `CqrsFramework::execute` returns nothing and its queries run in-process after the
//! commit; here the caller gets the stored events (positions, sequences) and read models are
//! built from the log by projectors.
//!
//! The files: this one, the single-stream command (`execute`) and the answer an idempotency
//! key already has; `load`, where a command's aggregate comes from (the process's cache, the
//! stream's snapshot, the events after either) and where it goes after an append; `across`,
//! the commands that append to two or three streams at once or not at all.

mod across;
mod load;

use load::Recently;

use std::fmt;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::Snapshot;
use uuid::Uuid;

use crate::error::{AppendError, StoreError};
use crate::event::{NewEvent, StoredEvent};
use crate::log::{AppendRequest, EventStore, IdempotencyRecord};
use crate::recent::Recent;

pub use across::{Either, PairResult, ThreeResult};

/// Who asks, and under which idempotency key.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    /// Stored with each event, e.g. `{"agent_id": "…"}`. Never a secret.
    pub actor: Option<serde_json::Value>,
    pub idempotency: Option<IdempotencyRecord>,
}

/// What a command did.
pub struct Executed<A: Aggregate> {
    pub events: Vec<StoredEvent>,
    pub typed: Vec<A::Event>,
    /// The stream's version after the command.
    pub version: i64,
    /// True when an earlier request with the same idempotency key did the work.
    pub replayed: bool,
}

impl<A: Aggregate> fmt::Debug for Executed<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executed")
            .field("events", &self.events)
            .field("typed", &self.typed)
            .field("version", &self.version)
            .field("replayed", &self.replayed)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The domain refused the command.
    #[error("{0}")]
    Rejected(E),
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    /// The idempotency key was first used for a different request.
    #[error("the idempotency key was used for a different request")]
    IdempotencyMismatch,
    /// The stream kept moving under us for every attempt.
    #[error("the stream kept changing; gave up after retrying")]
    Conflict,
    /// A stored event no longer deserializes into the aggregate's events.
    #[error("a stored event is unreadable: {0}")]
    Corrupt(String),
}

impl<E> From<StoreError> for CommandError<E> {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Corrupt(reason) => CommandError::Corrupt(reason),
            other => CommandError::Unavailable(other.to_string()),
        }
    }
}

/// How many locks commands of one process share: a stream maps to one of them by hash.
const STRIPES: usize = 256;
/// How many aggregates a process keeps between commands.
const RECENT_AGGREGATES: usize = 4_096;
/// A snapshot every this many events of a stream.
const SNAPSHOT_EVERY: i64 = 100;

/// An aggregate as a command found it: the fold of its stream up to `version`, and how many
/// events of the log had to be folded to get it (beyond the cache or the snapshot).
struct Found<A> {
    aggregate: A,
    version: i64,
    folded: i64,
    /// Whether the database said `version` is the stream's last: false when the events after
    /// the cached aggregate came from this process's memory (`EventStore::load_stream_after_recent`),
    /// which an append's expected-version check confirms, and a decision that appends nothing
    /// must confirm with the database ([`Commands::moved_on`]).
    confirmed: bool,
}

/// Runs commands against the store.
///
/// Commands on one stream are taken one at a time within a process (a striped lock by stream):
/// they would conflict on the stream's version anyway, and queueing them spares a burst of
/// concurrent commands the retries that could exhaust their attempts. Across processes the
/// expected-version check and the retries still decide.
#[derive(Clone)]
pub struct Commands {
    store: EventStore,
    max_attempts: u32,
    stripes: std::sync::Arc<Vec<tokio::sync::Mutex<()>>>,
    recent: std::sync::Arc<Recent>,
    snapshot_every: i64,
}

impl Commands {
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            max_attempts: 20,
            stripes: std::sync::Arc::new(
                (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            ),
            recent: std::sync::Arc::new(Recent::new(RECENT_AGGREGATES)),
            snapshot_every: SNAPSHOT_EVERY,
        }
    }

    /// A snapshot every `events` events of a stream (at least 1).
    pub fn with_snapshot_every(mut self, events: i64) -> Self {
        self.snapshot_every = events.max(1);
        self
    }

    /// How many times a command is decided before giving up with `Conflict` (at least 1).
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    fn stripe<A: Aggregate>(&self, aggregate_id: &str) -> &tokio::sync::Mutex<()> {
        &self.stripes[self.stripe_index::<A>(aggregate_id)]
    }

    fn stripe_index<A: Aggregate>(&self, aggregate_id: &str) -> usize {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (A::TYPE, aggregate_id).hash(&mut hasher);
        usize::try_from(hasher.finish() % STRIPES as u64).unwrap_or(0)
    }

    #[tracing::instrument(name = "command", skip_all, fields(aggregate = A::TYPE))]
    pub async fn execute<A>(
        &self,
        aggregate_id: &str,
        command: A::Command,
        services: &A::Services,
        ctx: &CommandContext,
    ) -> Result<Executed<A>, CommandError<A::Error>>
    where
        A: Snapshot,
        A::Command: Clone,
    {
        if let Some(record) = &ctx.idempotency {
            if let Some(found) = self.store.find_idempotent(&record.key).await? {
                return self.replay::<A>(aggregate_id, record, found).await;
            }
        }
        let _turn = self.stripe::<A>(aggregate_id).lock().await;
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let Found {
                mut aggregate,
                version,
                folded,
                confirmed,
            } = self
                .current::<A>(aggregate_id, Recently::FromMemory)
                .await?;
            let sink = EventSink::default();
            let decided = aggregate.handle(command.clone(), services, &sink).await;
            let typed = sink.collect().await;
            let appends_nothing = decided.is_err() || typed.is_empty() && ctx.idempotency.is_none();
            if appends_nothing && !confirmed && self.moved_on::<A>(aggregate_id, version).await? {
                // Decided on what this process wrote last while another process had written
                // since: decide again on the stream as the database has it.
                continue;
            }
            if let Err(refusal) = decided {
                // What it wrote before refusing is in the aggregate but not in the log.
                if typed.is_empty() {
                    self.recent.keep(A::TYPE, aggregate_id, aggregate, version);
                }
                return Err(CommandError::Rejected(refusal));
            }
            if typed.is_empty() && ctx.idempotency.is_none() {
                self.recent.keep(A::TYPE, aggregate_id, aggregate, version);
                return Ok(Executed {
                    events: vec![],
                    typed,
                    version,
                    replayed: false,
                });
            }
            let events = new_events::<A>(aggregate_id, version, &typed, ctx)?;
            let request = AppendRequest {
                events,
                expected: vec![(A::TYPE.to_string(), aggregate_id.to_string(), version)],
                idempotency: ctx.idempotency.clone(),
            };
            match self.store.append(request).await {
                Ok(events) => {
                    let before = version;
                    let version = events.last().map_or(version, |e| e.sequence);
                    self.appended(aggregate_id, aggregate, before - folded, version);
                    return Ok(Executed {
                        events,
                        typed,
                        version,
                        replayed: false,
                    });
                }
                Err(AppendError::Conflict) => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        aggregate_id,
                        attempt,
                        "append conflict, retrying"
                    );
                }
                Err(AppendError::DuplicateIdempotencyKey) => {
                    // A concurrent twin got there first; answer what it did.
                    let record = ctx.idempotency.as_ref().ok_or_else(|| {
                        CommandError::Unavailable("duplicate idempotency key without a key".into())
                    })?;
                    let found =
                        self.store
                            .find_idempotent(&record.key)
                            .await?
                            .ok_or_else(|| {
                                CommandError::Unavailable("idempotency record vanished".into())
                            })?;
                    return self.replay::<A>(aggregate_id, record, found).await;
                }
                Err(other) => return Err(append_failed(other)),
            }
        }
        Err(CommandError::Conflict)
    }

    async fn replay<A: Aggregate>(
        &self,
        aggregate_id: &str,
        record: &IdempotencyRecord,
        (hash, events): (String, Vec<StoredEvent>),
    ) -> Result<Executed<A>, CommandError<A::Error>> {
        if hash != record.request_hash {
            return Err(CommandError::IdempotencyMismatch);
        }
        let typed = events
            .iter()
            .filter(|e| e.aggregate_type == A::TYPE)
            .map(decode::<A>)
            .collect::<Result<Vec<_>, _>>()?;
        let version = match events.iter().rev().find(|e| e.aggregate_type == A::TYPE) {
            Some(last) => last.sequence,
            None => self
                .store
                .load_stream(A::TYPE, aggregate_id)
                .await?
                .last()
                .map_or(0, |e| e.sequence),
        };
        Ok(Executed {
            events,
            typed,
            version,
            replayed: true,
        })
    }
}

/// An append that failed for a reason no retry mends.
fn append_failed<E>(error: AppendError) -> CommandError<E> {
    match error {
        AppendError::Unavailable(reason) => CommandError::Unavailable(reason),
        AppendError::Invalid(reason) => {
            CommandError::Unavailable(format!("invalid append: {reason}"))
        }
        other => CommandError::Unavailable(other.to_string()),
    }
}

/// The events `A` decided on stream `aggregate_id`, at the versions after `version`.
fn new_events<A: Aggregate>(
    aggregate_id: &str,
    version: i64,
    typed: &[A::Event],
    ctx: &CommandContext,
) -> Result<Vec<NewEvent>, CommandError<A::Error>> {
    typed
        .iter()
        .zip(version + 1..)
        .map(|(event, sequence)| {
            Ok(NewEvent {
                event_id: Uuid::new_v4(),
                aggregate_type: A::TYPE.to_string(),
                aggregate_id: aggregate_id.to_string(),
                sequence,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(event)
                    .map_err(|e| CommandError::Corrupt(format!("serializing an event: {e}")))?,
                actor: ctx.actor.clone(),
            })
        })
        .collect()
}

fn decode<A: Aggregate>(event: &StoredEvent) -> Result<A::Event, CommandError<A::Error>> {
    serde_json::from_value(event.payload.clone()).map_err(|e| {
        CommandError::Corrupt(format!(
            "{} {}/{} #{} ({} v{}): {e}",
            event.position,
            event.aggregate_type,
            event.aggregate_id,
            event.sequence,
            event.event_type,
            event.event_version
        ))
    })
}

/// A few milliseconds, growing with the attempt, jittered so racers don't collide again in step.
fn backoff(attempt: u32) -> Duration {
    let base = 2u64.saturating_mul(u64::from(attempt.min(6)));
    let jitter = (Uuid::new_v4().as_u128() % 1000) as u64; // microseconds
    Duration::from_millis(base) + Duration::from_micros(jitter * u64::from(attempt.min(6)))
}
