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

use std::fmt;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::Snapshot;
use uuid::Uuid;

use crate::error::{AppendError, StoreError};
use crate::event::{NewEvent, StoredEvent};
use crate::log::{AppendRequest, EventStore, IdempotencyRecord};
use crate::metrics::Loaded;
use crate::recent::Recent;
use crate::snapshot::StoredSnapshot;

/// Who asks, and under which idempotency key.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    /// Stored with each event, e.g. `{"agent_id": "…"}`. Never a secret.
    pub actor: Option<serde_json::Value>,
    pub idempotency: Option<IdempotencyRecord>,
}

/// What a command on two aggregates did, or why neither did anything.
pub type PairResult<A, B> = Result<
    (Executed<A>, Executed<B>),
    CommandError<Either<<A as Aggregate>::Error, <B as Aggregate>::Error>>,
>;

/// What a command on three aggregates did, or why none did anything (which one refused: the
/// first, or the second or third of the rest).
pub type ThreeResult<A, B, C> = Result<
    (Executed<A>, Executed<B>, Executed<C>),
    CommandError<
        Either<<A as Aggregate>::Error, Either<<B as Aggregate>::Error, <C as Aggregate>::Error>>,
    >,
>;

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
            } = self.current::<A>(aggregate_id).await?;
            let sink = EventSink::default();
            let decided = aggregate.handle(command.clone(), services, &sink).await;
            let typed = sink.collect().await;
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

    /// Decides `first` on aggregate `A` and `second` on aggregate `B`, each against its own
    /// stream, and appends what both decided in one transaction with both streams at the
    /// versions they were decided against: both land or neither does, and a change to either
    /// stream in between makes both decide again. For a change two aggregates must agree on
    /// at once — a picked conversation arriving in another queue's line is also the
    /// conversation waiting again — where a follow-up could find the world changed under it.
    pub async fn execute_pair<A, B>(
        &self,
        (first_id, first): (&str, A::Command),
        (second_id, second): (&str, B::Command),
        services: (&A::Services, &B::Services),
        ctx: &CommandContext,
    ) -> PairResult<A, B>
    where
        A: Snapshot,
        A::Command: Clone,
        B: Snapshot,
        B::Command: Clone,
    {
        self.execute_pair_with::<A, B>(
            (first_id, first),
            (second_id, |_: &[A::Event]| Some(second.clone())),
            services,
            ctx,
        )
        .await
    }

    /// Like [`Commands::execute_pair`], with the second command made from what the first
    /// decided in the same attempt (a join's conversation starts with the welcome message the
    /// queue gave it), so both still land in one append or neither does; `None` when the
    /// second stream has nothing to decide.
    pub async fn execute_pair_with<A, B>(
        &self,
        (first_id, first): (&str, A::Command),
        (second_id, second): (&str, impl Fn(&[A::Event]) -> Option<B::Command>),
        services: (&A::Services, &B::Services),
        ctx: &CommandContext,
    ) -> PairResult<A, B>
    where
        A: Snapshot,
        A::Command: Clone,
        B: Snapshot,
    {
        self.execute_pair_from::<A, B>(
            (first_id, first),
            (second_id, |_: &A, decided: &[A::Event]| second(decided)),
            services,
            ctx,
        )
        .await
    }

    /// Like [`Commands::execute_pair_with`], with the second command made from the first
    /// aggregate as its decision left it, too (a pick's workload takes the conversation under
    /// the capacity the queue's settings give, as the queue's stream has them).
    #[tracing::instrument(name = "command", skip_all, fields(aggregate = A::TYPE, second = B::TYPE))]
    pub async fn execute_pair_from<A, B>(
        &self,
        (first_id, first): (&str, A::Command),
        (second_id, second): (&str, impl Fn(&A, &[A::Event]) -> Option<B::Command>),
        services: (&A::Services, &B::Services),
        ctx: &CommandContext,
    ) -> PairResult<A, B>
    where
        A: Snapshot,
        A::Command: Clone,
        B: Snapshot,
    {
        if let Some(record) = &ctx.idempotency {
            if let Some((hash, events)) = self.store.find_idempotent(&record.key).await? {
                let (a_events, b_events): (Vec<_>, Vec<_>) = events
                    .into_iter()
                    .partition(|e| e.aggregate_type == A::TYPE && e.aggregate_id == first_id);
                let a = self
                    .replay::<A>(first_id, record, (hash.clone(), a_events))
                    .await
                    .map_err(first_error)?;
                let b = self
                    .replay::<B>(second_id, record, (hash, b_events))
                    .await
                    .map_err(second_error)?;
                return Ok((a, b));
            }
        }
        // Both streams' turns, always taken in the same order so two pairs cannot deadlock.
        let (x, y) = (
            self.stripe_index::<A>(first_id),
            self.stripe_index::<B>(second_id),
        );
        let _first_turn = self.stripes[x.min(y)].lock().await;
        let _second_turn = if x == y {
            None
        } else {
            Some(self.stripes[x.max(y)].lock().await)
        };
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let Found {
                aggregate: mut a,
                version: a_version,
                folded: a_folded,
            } = self.current::<A>(first_id).await.map_err(first_error)?;
            let Found {
                aggregate: mut b,
                version: b_version,
                folded: b_folded,
            } = self.current::<B>(second_id).await.map_err(second_error)?;
            let sink = EventSink::default();
            let a_decided = a.handle(first.clone(), services.0, &sink).await;
            let a_typed = sink.collect().await;
            if let Err(refusal) = a_decided {
                if a_typed.is_empty() {
                    self.recent.keep(A::TYPE, first_id, a, a_version);
                }
                self.recent.keep(B::TYPE, second_id, b, b_version);
                return Err(CommandError::Rejected(Either::First(refusal)));
            }
            let a_events =
                new_events::<A>(first_id, a_version, &a_typed, ctx).map_err(first_error)?;
            let sink = EventSink::default();
            let b_decided = match second(&a, &a_typed) {
                Some(second) => b.handle(second, services.1, &sink).await,
                None => Ok(()),
            };
            let b_typed = sink.collect().await;
            if let Err(refusal) = b_decided {
                // `a` holds what it decided, which is not in the log.
                if b_typed.is_empty() {
                    self.recent.keep(B::TYPE, second_id, b, b_version);
                }
                return Err(CommandError::Rejected(Either::Second(refusal)));
            }
            if a_typed.is_empty() && b_typed.is_empty() && ctx.idempotency.is_none() {
                self.recent.keep(A::TYPE, first_id, a, a_version);
                self.recent.keep(B::TYPE, second_id, b, b_version);
                let a = Executed {
                    events: vec![],
                    typed: a_typed,
                    version: a_version,
                    replayed: false,
                };
                let b = Executed {
                    events: vec![],
                    typed: b_typed,
                    version: b_version,
                    replayed: false,
                };
                return Ok((a, b));
            }
            let mut events = a_events;
            events.extend(
                new_events::<B>(second_id, b_version, &b_typed, ctx).map_err(second_error)?,
            );
            let request = AppendRequest {
                events,
                expected: vec![
                    (A::TYPE.to_string(), first_id.to_string(), a_version),
                    (B::TYPE.to_string(), second_id.to_string(), b_version),
                ],
                idempotency: ctx.idempotency.clone(),
            };
            match self.store.append(request).await {
                Ok(stored) => {
                    let (a_events, b_events): (Vec<_>, Vec<_>) =
                        stored.into_iter().partition(|event| {
                            event.aggregate_type == A::TYPE && event.aggregate_id == first_id
                        });
                    let a_after = a_events.last().map_or(a_version, |e| e.sequence);
                    let b_after = b_events.last().map_or(b_version, |e| e.sequence);
                    self.appended(first_id, a, a_version - a_folded, a_after);
                    self.appended(second_id, b, b_version - b_folded, b_after);
                    let executed_a = Executed {
                        version: a_after,
                        events: a_events,
                        typed: a_typed,
                        replayed: false,
                    };
                    let executed_b = Executed {
                        version: b_after,
                        events: b_events,
                        typed: b_typed,
                        replayed: false,
                    };
                    return Ok((executed_a, executed_b));
                }
                Err(AppendError::Conflict) => {
                    tracing::debug!(
                        first = A::TYPE,
                        second = B::TYPE,
                        attempt,
                        "pair append conflict, retrying"
                    );
                }
                Err(AppendError::DuplicateIdempotencyKey) => {
                    return Err(CommandError::Unavailable(
                        "a concurrent request with the same idempotency key; try again".into(),
                    ))
                }
                Err(other) => return Err(append_failed(other)),
            }
        }
        Err(CommandError::Conflict)
    }

    /// Like [`Commands::execute_pair`], over three streams: each command decided against its
    /// own stream, and all they decided appended in one transaction with the three streams at
    /// the versions they were decided against, or nothing. For a move three aggregates must
    /// agree on at once: a waiting customer leaves one queue's line, arrives in another's, which
    /// must be open, and its conversation waits there — done in two appends, the target could
    /// close, or the conversation end, between them.
    #[tracing::instrument(name = "command", skip_all, fields(aggregate = A::TYPE, second = B::TYPE, third = C::TYPE))]
    pub async fn execute_three<A, B, C>(
        &self,
        (first_id, first): (&str, A::Command),
        (second_id, second): (&str, B::Command),
        (third_id, third): (&str, C::Command),
        services: (&A::Services, &B::Services, &C::Services),
        ctx: &CommandContext,
    ) -> ThreeResult<A, B, C>
    where
        A: Snapshot,
        A::Command: Clone,
        B: Snapshot,
        B::Command: Clone,
        C: Snapshot,
        C::Command: Clone,
    {
        let streams = [
            (A::TYPE, first_id),
            (B::TYPE, second_id),
            (C::TYPE, third_id),
        ];
        if streams[0] == streams[1] || streams[0] == streams[2] || streams[1] == streams[2] {
            return Err(CommandError::Unavailable(
                "one command over three streams names a stream twice".into(),
            ));
        }
        let in_second =
            |error| map_refusal(error, |refusal| Either::Second(Either::First(refusal)));
        let in_third =
            |error| map_refusal(error, |refusal| Either::Second(Either::Second(refusal)));
        if let Some(record) = &ctx.idempotency {
            if let Some((hash, events)) = self.store.find_idempotent(&record.key).await? {
                let of = |(kind, id): (&str, &str)| -> Vec<StoredEvent> {
                    events
                        .iter()
                        .filter(|e| e.aggregate_type == kind && e.aggregate_id == id)
                        .cloned()
                        .collect()
                };
                let a = self
                    .replay::<A>(first_id, record, (hash.clone(), of(streams[0])))
                    .await
                    .map_err(first_error)?;
                let b = self
                    .replay::<B>(second_id, record, (hash.clone(), of(streams[1])))
                    .await
                    .map_err(in_second)?;
                let c = self
                    .replay::<C>(third_id, record, (hash, of(streams[2])))
                    .await
                    .map_err(in_third)?;
                return Ok((a, b, c));
            }
        }
        // The streams' turns, always taken in the same order so no two commands deadlock.
        let mut turns = vec![
            self.stripe_index::<A>(first_id),
            self.stripe_index::<B>(second_id),
            self.stripe_index::<C>(third_id),
        ];
        turns.sort_unstable();
        turns.dedup();
        let mut _turns = Vec::with_capacity(turns.len());
        for index in turns {
            _turns.push(self.stripes[index].lock().await);
        }
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let a = self.current::<A>(first_id).await.map_err(first_error)?;
            let b = self.current::<B>(second_id).await.map_err(in_second)?;
            let c = self.current::<C>(third_id).await.map_err(in_third)?;
            // A refusal leaves the streams' aggregates out of the cache: the next command
            // loads them again, from their snapshots.
            let (a, a_typed) = decided(a, first.clone(), services.0)
                .await
                .map_err(|refusal| CommandError::Rejected(Either::First(refusal)))?;
            let (b, b_typed) = decided(b, second.clone(), services.1)
                .await
                .map_err(|refusal| {
                    CommandError::Rejected(Either::Second(Either::First(refusal)))
                })?;
            let (c, c_typed) = decided(c, third.clone(), services.2)
                .await
                .map_err(|refusal| {
                    CommandError::Rejected(Either::Second(Either::Second(refusal)))
                })?;
            let mut events =
                new_events::<A>(first_id, a.version, &a_typed, ctx).map_err(first_error)?;
            events.extend(new_events::<B>(second_id, b.version, &b_typed, ctx).map_err(in_second)?);
            events.extend(new_events::<C>(third_id, c.version, &c_typed, ctx).map_err(in_third)?);
            let request = AppendRequest {
                events,
                expected: vec![
                    (A::TYPE.to_string(), first_id.to_string(), a.version),
                    (B::TYPE.to_string(), second_id.to_string(), b.version),
                    (C::TYPE.to_string(), third_id.to_string(), c.version),
                ],
                idempotency: ctx.idempotency.clone(),
            };
            match self.store.append(request).await {
                Ok(stored) => {
                    let pick = |(kind, id): (&str, &str)| -> Vec<StoredEvent> {
                        stored
                            .iter()
                            .filter(|e| e.aggregate_type == kind && e.aggregate_id == id)
                            .cloned()
                            .collect()
                    };
                    let a = self.landed(first_id, a, a_typed, pick(streams[0]));
                    let b = self.landed(second_id, b, b_typed, pick(streams[1]));
                    let c = self.landed(third_id, c, c_typed, pick(streams[2]));
                    return Ok((a, b, c));
                }
                Err(AppendError::Conflict) => {
                    tracing::debug!(attempt, "three-stream append conflict, retrying");
                }
                Err(AppendError::DuplicateIdempotencyKey) => {
                    return Err(CommandError::Unavailable(
                        "a concurrent request with the same idempotency key; try again".into(),
                    ))
                }
                Err(other) => return Err(append_failed(other)),
            }
        }
        Err(CommandError::Conflict)
    }

    /// After a successful append: `found` with `typed` decided on it, stored as `events`,
    /// kept for the next command (see [`Commands::appended`]), as the caller's answer.
    fn landed<A: Snapshot>(
        &self,
        aggregate_id: &str,
        found: Found<A>,
        typed: Vec<A::Event>,
        events: Vec<StoredEvent>,
    ) -> Executed<A> {
        let version = events.last().map_or(found.version, |e| e.sequence);
        self.appended(
            aggregate_id,
            found.aggregate,
            found.version - found.folded,
            version,
        );
        Executed {
            events,
            typed,
            version,
            replayed: false,
        }
    }

    /// The aggregate of a stream and the stream's version, as it is now: its snapshot (if
    /// any) and the events after it. For reads outside a command; commands also use the
    /// process's cache ([`Commands::execute`]).
    pub async fn load<A: Snapshot>(
        &self,
        aggregate_id: &str,
    ) -> Result<(A, i64), CommandError<A::Error>> {
        let (aggregate, version) = self.snapshot::<A>(aggregate_id).await;
        let found = self.fold_after(aggregate_id, aggregate, version).await?;
        Ok((found.aggregate, found.version))
    }

    /// The aggregate of a stream for a command to decide on, taken out of the cache (under the
    /// stream's turn, so no other command of this process holds it), or else from the
    /// snapshot, with every event stored after it folded in.
    async fn current<A: Snapshot>(
        &self,
        aggregate_id: &str,
    ) -> Result<Found<A>, CommandError<A::Error>> {
        let metrics = self.store.metrics();
        let (aggregate, version) = match self.recent.take::<A>(A::TYPE, aggregate_id) {
            Some(cached) => {
                metrics.record_load(Loaded::Cache);
                cached
            }
            None => {
                let (aggregate, version) = self.snapshot::<A>(aggregate_id).await;
                metrics.record_load(if version > 0 {
                    Loaded::Snapshot
                } else {
                    Loaded::Log
                });
                (aggregate, version)
            }
        };
        self.fold_after(aggregate_id, aggregate, version).await
    }

    /// `aggregate`, the fold of the stream up to `version`, with the later events folded in.
    async fn fold_after<A: Aggregate>(
        &self,
        aggregate_id: &str,
        mut aggregate: A,
        version: i64,
    ) -> Result<Found<A>, CommandError<A::Error>> {
        let later = self
            .store
            .load_stream_after(A::TYPE, aggregate_id, version)
            .await?;
        let mut found = Found {
            aggregate: A::default(),
            version,
            folded: 0,
        };
        for event in later {
            aggregate.apply(decode::<A>(&event)?);
            found.version = event.sequence;
            found.folded += 1;
        }
        found.aggregate = aggregate;
        Ok(found)
    }

    /// The stream's snapshot under `A`'s fold version and the version it folds, or an empty
    /// aggregate at 0 when there is none or it cannot be read (the log has it all).
    async fn snapshot<A: Snapshot>(&self, aggregate_id: &str) -> (A, i64) {
        let stored = self
            .store
            .load_snapshot(A::TYPE, aggregate_id, A::SNAPSHOT_VERSION)
            .await;
        let read = match stored {
            Ok(Some(snapshot)) => serde_json::from_value::<A>(snapshot.state)
                .map(|aggregate| Some((aggregate, snapshot.version)))
                .map_err(|e| e.to_string()),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        match read {
            Ok(Some(found)) => found,
            Ok(None) => (A::default(), 0),
            Err(reason) => {
                tracing::warn!(
                    aggregate = A::TYPE,
                    aggregate_id,
                    %reason,
                    "snapshot unreadable; replaying the stream"
                );
                (A::default(), 0)
            }
        }
    }

    /// After a successful append: keeps `aggregate` (the fold up to `version`) for the next
    /// command, and writes it as a snapshot, in a task of its own, when the stream has grown by
    /// `snapshot_every` events since `based_on` (the version of the last snapshot or cache entry
    /// this load started from, or of the last multiple of `snapshot_every` passed).
    fn appended<A: Snapshot>(&self, aggregate_id: &str, aggregate: A, based_on: i64, version: i64) {
        let every = self.snapshot_every;
        let due = version - based_on >= every || based_on / every != version / every;
        if due && version > 0 {
            match serde_json::to_value(&aggregate) {
                Ok(state) => {
                    let store = self.store.clone();
                    let id = aggregate_id.to_owned();
                    tokio::spawn(async move {
                        let snapshot = StoredSnapshot { version, state };
                        match store
                            .save_snapshot(A::TYPE, &id, A::SNAPSHOT_VERSION, &snapshot)
                            .await
                        {
                            Ok(()) => store.metrics().record_snapshot_written(),
                            // Only work saved is lost: the next load folds more of the log.
                            Err(error) => {
                                tracing::warn!(aggregate = A::TYPE, aggregate_id = %id, %error, "snapshot not written");
                            }
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(aggregate = A::TYPE, aggregate_id, %error, "snapshot not serializable");
                }
            }
        }
        self.recent.keep(A::TYPE, aggregate_id, aggregate, version);
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

/// `found`'s aggregate after it decided `command`, with what it decided; or its refusal.
async fn decided<A: Aggregate>(
    mut found: Found<A>,
    command: A::Command,
    services: &A::Services,
) -> Result<(Found<A>, Vec<A::Event>), A::Error> {
    let sink = EventSink::default();
    let decision = found.aggregate.handle(command, services, &sink).await;
    let typed = sink.collect().await;
    decision.map(|()| (found, typed))
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

/// Which of a pair of commands the domain refused.
#[derive(Debug, thiserror::Error)]
pub enum Either<A, B> {
    #[error("{0}")]
    First(A),
    #[error("{0}")]
    Second(B),
}

fn first_error<A, B>(error: CommandError<A>) -> CommandError<Either<A, B>> {
    map_refusal(error, Either::First)
}

fn second_error<A, B>(error: CommandError<B>) -> CommandError<Either<A, B>> {
    map_refusal(error, Either::Second)
}

fn map_refusal<E, F>(error: CommandError<E>, wrap: impl FnOnce(E) -> F) -> CommandError<F> {
    match error {
        CommandError::Rejected(refusal) => CommandError::Rejected(wrap(refusal)),
        CommandError::Unavailable(reason) => CommandError::Unavailable(reason),
        CommandError::IdempotencyMismatch => CommandError::IdempotencyMismatch,
        CommandError::Conflict => CommandError::Conflict,
        CommandError::Corrupt(reason) => CommandError::Corrupt(reason),
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
