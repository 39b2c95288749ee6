//! The live projectors: every projection of a process follows the log as one group. Each batch
//! is read from the log once, each event decoded once and applied to every projection that
//! wants its type, all in one transaction that also moves each projection's checkpoint
//! (invariant 4). Seven projections used to be seven readers of the log and seven commits per
//! batch, taking turns at the read models' write lock; now they are one of each.
//!
//! A projection that fails on an event leaves the group: the events before that one are
//! committed for everybody, and the failing projection goes on in a group of its own, which
//! tries the same event again with back-off while the others go on (one projection's bug
//! never stops the rest). A failure of the database itself (unreachable, disk full) is nobody's
//! fault: the whole group waits and tries again.

use std::sync::Arc;
use std::time::Duration;

use domain::Event;
use store::event::StoredEvent;
use store::follow::{pause, Follower};
use store::log::{Backend, EventStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::rebuild::own_connection;
use super::{
    batch_on, checkpoints, now_and_then, prepare, rebuild_all, wants, Options, Progress,
    Projection, ProjectionError, ProjectorState, Statuses, IDLE, MAX_BACKOFF, REBUILD_BATCH,
    UNAVAILABLE_BACKOFF,
};
use crate::database::Tx;
use crate::params;
use crate::runs::Applied;

/// A projection of the group and the position it has applied up to.
struct Member {
    projection: Arc<dyn Projection>,
    position: i64,
}

/// Spawns the group of `projections`; it runs until `shutdown` becomes true.
pub(super) fn spawn(
    store: EventStore,
    projections: Vec<Arc<dyn Projection>>,
    options: Options,
    statuses: Statuses,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(run(store, projections, options, statuses, shutdown))
}

async fn run(
    store: EventStore,
    projections: Vec<Arc<dyn Projection>>,
    options: Options,
    statuses: Statuses,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut apart: Vec<JoinHandle<()>> = Vec::new();
    let Some(mut members) = start_members(
        &store,
        projections,
        &options,
        &statuses,
        &mut shutdown,
        &mut apart,
    )
    .await
    else {
        return;
    };
    let batch = batch_on(store.read_model_backend(), options.batch);
    let mut feed = Follower::new("projectors", &store, 0)
        .batch(batch)
        .idle(IDLE);
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    let mut own = None;
    while !members.is_empty() {
        if *shutdown.borrow() {
            break;
        }
        match step(&mut feed, &store, &mut members, &mut own, &options).await {
            Ok(applied) => {
                backoff = Duration::from_secs(1);
                if failing {
                    failing = false;
                    for member in &members {
                        checkpoints::clear_failure(
                            store.read_model_backend(),
                            member.projection.name(),
                        )
                        .await;
                    }
                }
                report_running(&statuses, &members);
                if !applied && feed.wait(&mut shutdown).await {
                    break;
                }
            }
            Err(StepError::Crashed) => {
                tracing::warn!(projections = %names(&members), "projectors interrupted");
                break;
            }
            Err(StepError::Failed {
                member,
                failed_at,
                error,
            }) => {
                report_failed(&store, &statuses, &members[member], failed_at, error).await;
                if members.len() > 1 {
                    // The others go on; it tries again in a group of its own.
                    let alone = members.remove(member);
                    apart.push(spawn(
                        store.clone(),
                        vec![alone.projection],
                        options.clone(),
                        statuses.clone(),
                        shutdown.clone(),
                    ));
                    report_running(&statuses, &members);
                    continue;
                }
                failing = true;
                if pause(&mut shutdown, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(StepError::Unavailable(error)) => {
                report_unavailable(&statuses, &members, error);
                failing = true;
                backoff = backoff.min(UNAVAILABLE_BACKOFF);
                if pause(&mut shutdown, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(UNAVAILABLE_BACKOFF);
            }
        }
    }
    for member in &members {
        statuses.set(
            member.projection.name(),
            ProjectorState::Stopped {
                position: member.position,
            },
        );
    }
    for task in apart {
        let _ = task.await;
    }
}

/// Prepares each projection (tables, checkpoint, a rebuild if its version changed). One that
/// cannot start, in a group of several, goes to a group of its own that keeps trying; alone, it
/// keeps trying here. `None` when shutdown came first.
async fn start_members(
    store: &EventStore,
    projections: Vec<Arc<dyn Projection>>,
    options: &Options,
    statuses: &Statuses,
    shutdown: &mut watch::Receiver<bool>,
    apart: &mut Vec<JoinHandle<()>>,
) -> Option<Vec<Member>> {
    let alone = projections.len() == 1;
    let mut members = Vec::with_capacity(projections.len());
    let mut pending = projections;
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut failed = Vec::new();
        for projection in pending {
            let name = projection.name();
            match prepare(store, projection.as_ref(), options).await {
                Ok(position) => {
                    // One that left a group failing stays reported so until it moves on.
                    let failing = matches!(
                        statuses.snapshot().get(name),
                        Some(ProjectorState::Failed { position: at, .. }) if *at == position
                    );
                    if !failing {
                        statuses.set(name, ProjectorState::Running { position });
                    }
                    members.push(Member {
                        projection,
                        position,
                    });
                }
                Err(error) => {
                    tracing::error!(projection = name, %error, "projector cannot start; retrying");
                    statuses.set(
                        name,
                        ProjectorState::Failed {
                            position: 0,
                            failed_at: 0,
                            error: error.to_string(),
                        },
                    );
                    failed.push(projection);
                }
            }
        }
        if failed.is_empty() {
            build_fresh(store, &mut members, options).await;
            return Some(members);
        }
        if !alone {
            for projection in failed {
                apart.push(spawn(
                    store.clone(),
                    vec![projection],
                    options.clone(),
                    statuses.clone(),
                    shutdown.clone(),
                ));
            }
            return Some(members);
        }
        if pause(shutdown, backoff).await {
            return None;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        pending = failed;
    }
}

/// Read models that start empty over a long log (a fresh data directory on an old log, an
/// import, the move to `read-models.db`) are built the way a rebuild builds them, in one pass
/// for all of them at the rebuild's speed, rather than by the live path's smaller batches.
/// If that fails, the live path catches them up instead.
async fn build_fresh(store: &EventStore, members: &mut [Member], options: &Options) {
    let head = match store.head().await {
        Ok(head) => head,
        Err(_) => return,
    };
    let fresh: Vec<usize> = (0..members.len())
        .filter(|&index| members[index].position == 0)
        .collect();
    if fresh.is_empty() || head <= i64::try_from(REBUILD_BATCH).unwrap_or(i64::MAX) {
        return;
    }
    let projections: Vec<&dyn Projection> = fresh
        .iter()
        .map(|&index| members[index].projection.as_ref())
        .collect();
    let names = projections
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ");
    tracing::info!(projections = %names, head, "building empty read models from the log");
    // This group's live projectors, the read models' only writer in this process, wait for
    // this anyway: the fill keeps the lock until it is done.
    let options = Options {
        batch: REBUILD_BATCH,
        crash: options.crash.clone(),
        exclusive: true,
    };
    let shown = std::sync::atomic::AtomicI64::new(0);
    let progress = |progress: Progress| {
        // A line per tenth of the log.
        let step = (progress.head / 10).max(1);
        let tenth = progress.position / step;
        if shown.fetch_max(tenth, std::sync::atomic::Ordering::Relaxed) < tenth {
            tracing::info!(
                position = progress.position,
                head = progress.head,
                "building read models"
            );
        }
    };
    match rebuild_all(store, &projections, &options, &progress).await {
        Ok(position) => {
            for index in fresh {
                members[index].position = position;
            }
            tracing::info!(projections = %names, position, "read models built");
        }
        Err(error) => tracing::warn!(
            projections = %names,
            %error,
            "cannot build the empty read models in one pass; catching up instead"
        ),
    }
}

/// `member` failed on the event at `failed_at`: logged, recorded beside its checkpoint, and
/// its status says so.
async fn report_failed(
    store: &EventStore,
    statuses: &Statuses,
    member: &Member,
    failed_at: i64,
    error: String,
) {
    let name = member.projection.name();
    let position = member.position;
    tracing::error!(
        projection = name,
        position,
        failed_at,
        %error,
        "projector failed; it will try the same event again"
    );
    checkpoints::record_failure(store.read_model_backend(), name, failed_at, &error).await;
    statuses.set(
        name,
        ProjectorState::Failed {
            position,
            failed_at,
            error,
        },
    );
}

/// The database cannot be used: every member waits at the event after its position.
fn report_unavailable(statuses: &Statuses, members: &[Member], error: String) {
    tracing::error!(
        projections = %names(members),
        %error,
        "projectors cannot reach their database; trying again"
    );
    for member in members {
        statuses.set(
            member.projection.name(),
            ProjectorState::Failed {
                position: member.position,
                failed_at: member.position + 1,
                error: error.clone(),
            },
        );
    }
}

fn report_running(statuses: &Statuses, members: &[Member]) {
    for member in members {
        statuses.set(
            member.projection.name(),
            ProjectorState::Running {
                position: member.position,
            },
        );
    }
}

fn names(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| m.projection.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug)]
enum StepError {
    /// The crash point fired (tests): nothing of the batch stays.
    Crashed,
    /// `members[member]` failed on the event at `failed_at`; what came before is committed.
    Failed {
        member: usize,
        failed_at: i64,
        error: String,
    },
    /// The log or the read models' database cannot be used right now.
    Unavailable(String),
}

fn unavailable(error: impl ToString) -> StepError {
    StepError::Unavailable(error.to_string())
}

/// One batch: reads what follows the group's lowest checkpoint and applies it. Whether
/// anything was there. `own` keeps the group's own SQLite connection between batches.
async fn step(
    feed: &mut Follower,
    store: &EventStore,
    members: &mut [Member],
    own: &mut Option<rusqlite::Connection>,
    options: &Options,
) -> Result<bool, StepError> {
    let backend = store.read_model_backend();
    // From the group's lowest checkpoint, which a rebuild elsewhere may have moved.
    feed.seek(members.iter().map(|m| m.position).min().unwrap_or(0));
    let events = feed.read().await.map_err(unavailable)?;
    if events.is_empty() {
        // A rebuild in another process may have moved checkpoints on while nothing new came
        // (a batch reads them inside its transaction anyway): report what is stored.
        let stored = checkpoints::stored_states(backend)
            .await
            .map_err(unavailable)?;
        for member in members.iter_mut() {
            let at = stored
                .iter()
                .find(|(name, _)| name == member.projection.name())
                .and_then(|(_, state)| state.position());
            if let Some(at) = at {
                member.position = member.position.max(at);
            }
        }
        return Ok(false);
    }
    apply_batch(backend, members, own, &events, options).await?;
    Ok(true)
}

/// Begins the batch's transaction. On SQLite on the group's own connection (through rusqlite,
/// opened when missing): its statements run in this thread, where each statement through a
/// pooled sqlx connection is a round trip to that connection's worker thread — a profile of
/// Jono under 32 writers spent half its time in those threads' wake-ups.
async fn begin(backend: &Backend, own: &mut Option<rusqlite::Connection>) -> Result<Tx, StepError> {
    match backend {
        Backend::Sqlite(pool, _) => {
            let connection = match own.take() {
                Some(connection) => connection,
                None => own_connection(pool).map_err(unavailable)?,
            };
            Tx::begin_direct(connection, "").await.map_err(unavailable)
        }
        Backend::Postgres(_) => Tx::begin(backend, "").await.map_err(unavailable),
    }
}

/// Applies `events` to every member in one transaction and moves their checkpoints (those
/// read again inside it, so a concurrent projector or a rebuild's swap is never repeated). Each
/// member takes its events at once (`Projection::apply_all`: runs of messages as sets on
/// Postgres). Should one fail, the batch is applied again one event at a time
/// ([`apply_each`]), which commits the events before the failing one and names it.
async fn apply_batch(
    backend: &Backend,
    members: &mut [Member],
    own: &mut Option<rusqlite::Connection>,
    events: &[StoredEvent],
    options: &Options,
) -> Result<(), StepError> {
    let Some(last) = events.last().map(|event| event.position) else {
        return Ok(());
    };
    let mut decoded = Vec::with_capacity(events.len());
    for event in events {
        if !domain::event::is_known(&event.event_type) {
            skipping(event);
            continue;
        }
        match Event::decode_ref(&event.aggregate_type, &event.payload) {
            Ok(payload) => decoded.push((event, payload)),
            // One at a time finds the event and says which projection it fails.
            Err(_) => return apply_each(backend, members, own, events, options).await,
        }
    }
    let (mut tx, at) = open_batch(backend, members, own).await?;
    for (member, checkpoint) in members.iter().zip(&at) {
        let projection = member.projection.as_ref();
        let wanted: Vec<Applied> = decoded
            .iter()
            .filter(|(event, _)| {
                event.position > *checkpoint && wants(projection, &event.event_type)
            })
            .map(|(event, payload)| (*event, payload))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        if let Err(error) = projection.apply_all(&mut tx, &wanted).await {
            let _ = tx.rollback().await;
            if is_environmental(&error) {
                return Err(unavailable(error));
            }
            tracing::debug!(projection = projection.name(), %error, "a batch failed; applying it one event at a time");
            return apply_each(backend, members, own, events, options).await;
        }
        // The statements may run in this thread: let its other tasks run between members.
        tokio::task::yield_now().await;
    }
    finish_batch(tx, members, own, at, last, options).await
}

/// Says that `event` is of a type a newer release wrote, passed over.
fn skipping(event: &StoredEvent) {
    tracing::warn!(
        position = event.position,
        event_type = %event.event_type,
        "skipping an event of a type this version does not know (written by a newer node?)"
    );
}

/// Begins a batch's transaction and locks and reads the members' checkpoints in it.
async fn open_batch(
    backend: &Backend,
    members: &[Member],
    own: &mut Option<rusqlite::Connection>,
) -> Result<(Tx, Vec<i64>), StepError> {
    let mut tx = begin(backend, own).await?;
    tx.ready_for_batch().await.map_err(unavailable)?;
    let names: Vec<&str> = members.iter().map(|m| m.projection.name()).collect();
    let at = checkpoints::lock(&mut tx, &names)
        .await
        .map_err(unavailable)?;
    Ok((tx, at))
}

/// Applies `events` one at a time, every member in turn, in one transaction. When a member
/// fails on an event, the events before it are committed and the failure names it.
async fn apply_each(
    backend: &Backend,
    members: &mut [Member],
    own: &mut Option<rusqlite::Connection>,
    events: &[StoredEvent],
    options: &Options,
) -> Result<(), StepError> {
    let (mut tx, at) = open_batch(backend, members, own).await?;
    let mut last = None;
    for (n, event) in events.iter().enumerate() {
        // The statements run in this thread: let the other tasks on it run now and then.
        now_and_then(n).await;
        if !domain::event::is_known(&event.event_type) {
            skipping(event);
            last = Some(event.position);
            continue;
        }
        let mut decoded: Option<Event> = None;
        for (index, (member, checkpoint)) in members.iter().zip(&at).enumerate() {
            let projection = member.projection.as_ref();
            if event.position <= *checkpoint || !wants(projection, &event.event_type) {
                continue;
            }
            let applied = match &decoded {
                Some(decoded) => projection.apply(&mut tx, event, decoded).await,
                None => match Event::decode_ref(&event.aggregate_type, &event.payload) {
                    Ok(event_decoded) => {
                        let decoded = decoded.insert(event_decoded);
                        projection.apply(&mut tx, event, decoded).await
                    }
                    Err(error) => Err(ProjectionError::Decode(error.to_string())),
                },
            };
            if let Err(error) = applied {
                let _ = tx.rollback().await;
                if is_environmental(&error) {
                    return Err(unavailable(error));
                }
                // Keep what came before the failing event, then report it.
                let before = events.partition_point(|e| e.position < event.position);
                if before > 0 {
                    Box::pin(apply_each(
                        backend,
                        members,
                        own,
                        &events[..before],
                        options,
                    ))
                    .await?;
                }
                return Err(StepError::Failed {
                    member: index,
                    failed_at: event.position,
                    error: error.to_string(),
                });
            }
        }
        last = Some(event.position);
    }
    let Some(last) = last else {
        let _ = tx.rollback().await;
        return Ok(());
    };
    finish_batch(tx, members, own, at, last, options).await
}

/// Moves the checkpoints of the members `last` is past, tells the other processes (Postgres)
/// and commits the batch.
async fn finish_batch(
    mut tx: Tx,
    members: &mut [Member],
    own: &mut Option<rusqlite::Connection>,
    at: Vec<i64>,
    last: i64,
    options: &Options,
) -> Result<(), StepError> {
    let mut moved = Vec::with_capacity(members.len());
    for (member, checkpoint) in members.iter().zip(&at) {
        if last <= *checkpoint {
            continue;
        }
        let name = member.projection.name();
        if let Some(crash) = &options.crash {
            if crash(name, last).is_err() {
                // As a crash would: nothing of this transaction stays.
                let _ = tx.rollback().await;
                return Err(StepError::Crashed);
            }
        }
        moved.push((name, last, member.projection.version()));
    }
    checkpoints::write(&mut tx, &moved)
        .await
        .map_err(unavailable)?;
    if tx.is_postgres() {
        // Delivered at commit, naming the schema: the processes that report these projectors'
        // progress read it.
        tx.execute(
            "SELECT pg_notify($1, current_schema())",
            params![super::leased::CHANNEL],
        )
        .await
        .map_err(unavailable)?;
    }
    *own = tx.commit_direct().await.map_err(unavailable)?;
    for (member, checkpoint) in members.iter_mut().zip(at) {
        member.position = last.max(checkpoint);
    }
    Ok(())
}

/// A failure of the database rather than of the projection's fold: a full disk, a lost
/// connection, an I/O error. The whole group waits for it to pass.
fn is_environmental(error: &ProjectionError) -> bool {
    let ProjectionError::Sql(error) = error else {
        return false;
    };
    match error {
        sqlx::Error::Database(database) => {
            let code = database.code().unwrap_or_default();
            // SQLite: SQLITE_IOERR (10), SQLITE_FULL (13), SQLITE_BUSY (5), SQLITE_LOCKED (6)
            // and their extended codes. Postgres: insufficient resources (53…), operator
            // intervention (57…), connection exceptions (08…).
            let sqlite = code
                .parse::<i32>()
                .map(|code| matches!(code & 0xff, 5 | 6 | 10 | 13))
                .unwrap_or(false);
            sqlite || code.starts_with("53") || code.starts_with("57") || code.starts_with("08")
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}
