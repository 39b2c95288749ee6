//! Commands over two or three streams: each command decided against its own stream, and all
//! they decided appended in one transaction with every stream at the version it was decided
//! against, or nothing; the streams' turns taken in one order so no two commands deadlock.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use domain::Snapshot;

use super::{
    append_failed, backoff, new_events, CommandContext, CommandError, Commands, Executed, Found,
    Recently,
};
use crate::error::AppendError;
use crate::event::StoredEvent;
use crate::log::AppendRequest;

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

/// Which of a pair of commands the domain refused.
#[derive(Debug, thiserror::Error)]
pub enum Either<A, B> {
    #[error("{0}")]
    First(A),
    #[error("{0}")]
    Second(B),
}

impl Commands {
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
                ..
            } = self
                .current::<A>(first_id, Recently::FromDatabase)
                .await
                .map_err(first_error)?;
            let Found {
                aggregate: mut b,
                version: b_version,
                folded: b_folded,
                ..
            } = self
                .current::<B>(second_id, Recently::FromDatabase)
                .await
                .map_err(second_error)?;
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
            let a = self
                .current::<A>(first_id, Recently::FromDatabase)
                .await
                .map_err(first_error)?;
            let b = self
                .current::<B>(second_id, Recently::FromDatabase)
                .await
                .map_err(in_second)?;
            let c = self
                .current::<C>(third_id, Recently::FromDatabase)
                .await
                .map_err(in_third)?;
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
