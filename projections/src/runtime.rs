//! The projector runtime: one task per projection folds the global feed into its tables.
//!
//! Invariant 4: a projection's checkpoint (`projection_checkpoints`) is written in the same
//! transaction as the rows an event produced, and inside that transaction the projector reads
//! its checkpoint again (locking it on Postgres) and skips whatever is at or below it. So an
//! event takes effect exactly once: a crash rolls back rows and checkpoint together, and a
//! second projector of the same name — another process, or a rebuild swapping fresh tables in —
//! finds the work already done instead of doing it twice.
//!
//! A projector catches up at start, then follows `EventStore::subscribe` (woken on commit; a 5 s
//! timer is only a safety net). One that fails on an event stops there, reports `Failed` in the
//! shared [`Statuses`], logs why, and tries that same event again later; it never skips it.
//!
//! A rebuild ([`rebuild`], [`rebuild_all`]) fills fresh tables (`rm_…__rebuild`) from
//! position 0 while the live ones keep answering, then, in one transaction, catches up the last
//! events, drops the old tables, renames the fresh ones and moves the checkpoints.

mod rebuild;

pub use rebuild::{rebuild_all, REBUILD_BATCH};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::Event;
use serde::Serialize;
use store::event::StoredEvent;
use store::log::{Backend, EventStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::params;
use crate::sql::{Tx, REBUILD_SUFFIX};

/// How many events one transaction applies at most.
pub const DEFAULT_BATCH: usize = 1_000;
/// The safety net: a projector looks at the log at least this often even without a wake-up.
const IDLE: Duration = Duration::from_secs(5);
/// The longest pause between two attempts at an event that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

const CHECKPOINTS: &str = "CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    version BIGINT NOT NULL
)";

/// The Postgres advisory lock the projectors' DDL takes turns on ("jono-ddl").
const DDL_LOCK: i64 = 0x6a6f_6e6f_2d64_646c;

/// A failing projector's last failure, so that `jono projections status` in another process
/// can show it; removed once the projector moves on.
const FAILURES: &str = "CREATE TABLE IF NOT EXISTS projection_failures (
    name TEXT PRIMARY KEY,
    failed_at BIGINT NOT NULL,
    error TEXT NOT NULL
)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn of(backend: &Backend) -> Dialect {
        match backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// An index of a read-model table; its name gets the table's suffix too, because index names
/// are global to a database.
#[derive(Debug, Clone, Copy)]
pub struct Index {
    pub name: &'static str,
    pub columns: &'static str,
    pub unique: bool,
}

/// A read-model table: `columns` is the inside of `CREATE TABLE name (…)`, in the types both
/// backends share (TEXT, BIGINT). No named or UNIQUE constraints there: put those in `indexes`,
/// so a rebuild's fresh table can be renamed over the live one without a name clash.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static str,
    pub indexes: &'static [Index],
    /// The column searched in full text, if any: on SQLite the table is then an FTS5 table
    /// (the other columns stored, not indexed; `indexes` must be empty), on Postgres a plain
    /// one with a GIN index `{name}_fts` over `to_tsvector('simple', column)`.
    pub full_text: Option<&'static str>,
}

impl Table {
    /// The statements that create this table (and its indexes) with `suffix`.
    pub fn ddl(&self, dialect: Dialect, suffix: &str) -> Vec<String> {
        if let (Some(searched), Dialect::Sqlite) = (self.full_text, dialect) {
            let columns: Vec<String> = self
                .columns
                .split(',')
                .filter_map(|column| column.split_whitespace().next())
                .map(|name| {
                    if name == searched {
                        name.to_owned()
                    } else {
                        format!("{name} UNINDEXED")
                    }
                })
                .collect();
            return vec![format!(
                "CREATE VIRTUAL TABLE IF NOT EXISTS {}{suffix} USING fts5({}, tokenize = 'unicode61')",
                self.name,
                columns.join(", ")
            )];
        }
        let mut out = vec![format!(
            "CREATE TABLE IF NOT EXISTS {}{suffix} ({})",
            self.name, self.columns
        )];
        if let Some(searched) = self.full_text {
            out.push(format!(
                "CREATE INDEX IF NOT EXISTS {name}_fts{suffix} ON {name}{suffix} \
                 USING GIN (to_tsvector('simple', {searched}))",
                name = self.name
            ));
        }
        for index in self.indexes {
            out.push(format!(
                "CREATE {}INDEX IF NOT EXISTS {}{suffix} ON {}{suffix} ({})",
                if index.unique { "UNIQUE " } else { "" },
                index.name,
                self.name,
                index.columns
            ));
        }
        out
    }
}

/// Why an event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("event store: {0}")]
    Store(#[from] store::error::StoreError),
    #[error("undecodable event: {0}")]
    Decode(String),
    #[error("{0}")]
    Invalid(String),
    /// The injected crash point fired (tests only).
    #[error("interrupted: {0}")]
    Interrupted(String),
}

/// A read model: a fold of the global feed into its own tables.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable: it names the checkpoint and is what `jono projections rebuild NAME` takes.
    fn name(&self) -> &'static str;
    /// Bump it when `apply` or the tables change: the projector then rebuilds at start.
    fn version(&self) -> i64;
    /// The tables this projection owns, all named `rm_…`.
    fn tables(&self) -> &'static [Table];
    /// The DDL of every table for `dialect`, with `suffix` ("" live, `__rebuild` fresh).
    fn ddl(&self, dialect: Dialect, suffix: &str) -> Vec<String> {
        self.tables()
            .iter()
            .flat_map(|table| table.ddl(dialect, suffix))
            .collect()
    }
    /// The stored event types `apply` does something with (`event_type`, e.g. `"MessageSent"`);
    /// `None`, the default, for every type. A rebuild reads only these from the log, so an
    /// event of a type left out never reaches `apply` there: list every type `apply` handles.
    fn event_types(&self) -> Option<&'static [&'static str]> {
        None
    }
    /// Applies one event to the rows, inside the transaction that also moves the checkpoint.
    /// SQL names tables `rm_…{s}`. Read the event from `decoded`, and from `event` only its
    /// envelope (position, type, stream, times): a rebuild decodes the payload straight from
    /// its text, and `event.payload` is then `Null`.
    async fn apply(
        &self,
        tx: &mut Tx,
        event: &StoredEvent,
        decoded: &Event,
    ) -> Result<(), ProjectionError>;
}

/// Called after a batch's rows are written and before its checkpoint is: an error aborts the
/// transaction and stops the projector, as a crash there would. For tests.
pub type CrashHook = Arc<dyn Fn(&str, i64) -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
pub struct Options {
    /// Events per transaction.
    pub batch: usize,
    pub crash: Option<CrashHook>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            batch: DEFAULT_BATCH,
            crash: None,
        }
    }
}

/// What a projector is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ProjectorState {
    Starting,
    /// Applied everything up to `position`.
    Running {
        position: i64,
    },
    /// Applied everything up to `position`; the event at `failed_at` failed with `error`. It
    /// is tried again now and then, and nothing after it is applied before it.
    Failed {
        position: i64,
        failed_at: i64,
        error: String,
    },
    /// Stopped by the crash point, or by shutdown.
    Stopped {
        position: i64,
    },
}

impl ProjectorState {
    pub fn position(&self) -> Option<i64> {
        match self {
            Self::Starting => None,
            Self::Running { position }
            | Self::Failed { position, .. }
            | Self::Stopped { position } => Some(*position),
        }
    }
}

/// Every projector's state by name, shared with `/readyz` and the operators' commands.
#[derive(Clone)]
pub struct Statuses {
    tx: Arc<watch::Sender<BTreeMap<String, ProjectorState>>>,
}

impl Default for Statuses {
    fn default() -> Self {
        Self {
            tx: Arc::new(watch::channel(BTreeMap::new()).0),
        }
    }
}

impl Statuses {
    pub fn snapshot(&self) -> BTreeMap<String, ProjectorState> {
        self.tx.borrow().clone()
    }

    fn set(&self, name: &str, state: ProjectorState) {
        self.tx.send_modify(|states| {
            states.insert(name.to_owned(), state);
        });
    }

    /// Waits until every projector has applied everything up to `position`, for at most
    /// `timeout`; otherwise says which ones have not, and why.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> Result<(), String> {
        let mut rx = self.tx.subscribe();
        let reached = |states: &BTreeMap<String, ProjectorState>| {
            states.values().all(
                |state| matches!(state, ProjectorState::Running { position: p } if *p >= position),
            )
        };
        let waited = tokio::time::timeout(timeout, rx.wait_for(reached)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.lagging(position)),
        }
    }

    fn lagging(&self, position: i64) -> String {
        let states = self.snapshot();
        if states.is_empty() {
            return "no projector is running".to_owned();
        }
        states
            .iter()
            .filter_map(|(name, state)| match state {
                ProjectorState::Running { position: p } if *p >= position => None,
                ProjectorState::Running { position: p } => {
                    Some(format!("{name} is at {p} of {position}"))
                }
                ProjectorState::Failed {
                    position: p,
                    failed_at,
                    error,
                } => Some(format!(
                    "{name} failed at position {failed_at} (applied up to {p}): {error}"
                )),
                ProjectorState::Starting => Some(format!("{name} is starting")),
                ProjectorState::Stopped { position: p } => Some(format!("{name} stopped at {p}")),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The running projectors.
pub struct Projectors {
    pub statuses: Statuses,
    tasks: Vec<JoinHandle<()>>,
}

impl Projectors {
    /// Waits until every projector task has stopped (after shutdown, or a crash point).
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts one projector task per projection; they run until `shutdown` becomes true.
pub fn start(
    store: EventStore,
    projections: Vec<Arc<dyn Projection>>,
    options: Options,
    shutdown: watch::Receiver<bool>,
) -> Projectors {
    start_with(Statuses::default(), store, projections, options, shutdown)
}

/// As [`start`], reporting into `statuses` (e.g. the one the gateway's state already shares).
pub fn start_with(
    statuses: Statuses,
    store: EventStore,
    projections: Vec<Arc<dyn Projection>>,
    options: Options,
    shutdown: watch::Receiver<bool>,
) -> Projectors {
    for projection in &projections {
        statuses.set(projection.name(), ProjectorState::Starting);
    }
    let tasks = projections
        .into_iter()
        .map(|projection| {
            tokio::spawn(run(
                store.clone(),
                projection,
                options.clone(),
                statuses.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    Projectors { statuses, tasks }
}

/// Sleeps for `delay` unless shutdown comes first; true when it did.
async fn pause(shutdown: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => *shutdown.borrow(),
        changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
    }
}

async fn run(
    store: EventStore,
    projection: Arc<dyn Projection>,
    options: Options,
    statuses: Statuses,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = projection.name();
    let mut backoff = Duration::from_secs(1);
    let mut position = loop {
        match prepare(&store, projection.as_ref(), &options).await {
            Ok(position) => break position,
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
                if pause(&mut shutdown, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    statuses.set(name, ProjectorState::Running { position });
    let mut wake = store.subscribe();
    backoff = Duration::from_secs(1);
    let mut failing = false;
    loop {
        if *shutdown.borrow() {
            statuses.set(name, ProjectorState::Stopped { position });
            return;
        }
        // Mark the wake-up seen before reading, so a commit after the read wakes us again.
        wake.borrow_and_update();
        match step(&store, projection.as_ref(), &options, "").await {
            Ok(Step::Applied(at)) => {
                position = at;
                backoff = Duration::from_secs(1);
                if failing {
                    failing = false;
                    clear_failure(store.backend(), name).await;
                }
                statuses.set(name, ProjectorState::Running { position });
            }
            Ok(Step::Idle(at)) => {
                position = at;
                statuses.set(name, ProjectorState::Running { position });
                tokio::select! {
                    changed = wake.changed() => {
                        if changed.is_err() && pause(&mut shutdown, IDLE).await {
                            statuses.set(name, ProjectorState::Stopped { position });
                            return;
                        }
                    }
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep(IDLE) => {}
                }
            }
            Err(StepError::Crashed(at)) => {
                tracing::warn!(projection = name, position = at, "projector interrupted");
                statuses.set(name, ProjectorState::Stopped { position });
                return;
            }
            Err(StepError::Failed {
                position: at,
                failed_at,
                error,
            }) => {
                position = at;
                tracing::error!(
                    projection = name,
                    position,
                    failed_at,
                    %error,
                    "projector failed; it will try the same event again"
                );
                record_failure(store.backend(), name, failed_at, &error).await;
                failing = true;
                statuses.set(
                    name,
                    ProjectorState::Failed {
                        position,
                        failed_at,
                        error,
                    },
                );
                if pause(&mut shutdown, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Creates the tables and the checkpoint row if missing, rebuilds when the projection's version
/// changed, and returns the checkpoint.
async fn prepare(
    store: &EventStore,
    projection: &dyn Projection,
    options: &Options,
) -> Result<i64, ProjectionError> {
    let backend = store.backend();
    let name = projection.name();
    let mut tx = Tx::begin(backend, "").await?;
    if tx.is_postgres() {
        // The projectors of a deployment start together, and Postgres's concurrent
        // `CREATE TABLE IF NOT EXISTS` of one name collide in its catalog (a duplicate key in
        // `pg_type`): their DDL takes turns, until each transaction ends.
        tx.execute("SELECT pg_advisory_xact_lock($1)", params![DDL_LOCK])
            .await?;
    }
    tx.execute(CHECKPOINTS, &[]).await?;
    tx.execute(FAILURES, &[]).await?;
    let found: Option<(i64, i64)> = tx
        .fetch_optional(
            "SELECT position, version FROM projection_checkpoints WHERE name = $1",
            params![name],
        )
        .await?;
    match found {
        Some((position, version)) if version == projection.version() => {
            tx.batch(&projection.ddl(Dialect::of(backend), "")).await?;
            tx.commit().await?;
            Ok(position)
        }
        Some((_, version)) => {
            tx.commit().await?;
            tracing::info!(
                projection = name,
                from = version,
                to = projection.version(),
                "projection version changed; rebuilding"
            );
            let options = Options {
                batch: REBUILD_BATCH,
                crash: options.crash.clone(),
            };
            rebuild(store, projection, &options, &|_| {}).await
        }
        None => {
            tx.batch(&projection.ddl(Dialect::of(backend), "")).await?;
            tx.execute(
                "INSERT INTO projection_checkpoints (name, position, version) VALUES ($1, 0, $2)
                 ON CONFLICT (name) DO NOTHING",
                params![name, projection.version()],
            )
            .await?;
            tx.commit().await?;
            Ok(0)
        }
    }
}

enum Step {
    /// Applied events up to this position.
    Applied(i64),
    /// Nothing new after this position.
    Idle(i64),
}

#[derive(Debug)]
enum StepError {
    Crashed(i64),
    Failed {
        position: i64,
        failed_at: i64,
        error: String,
    },
}

impl StepError {
    fn at(position: i64, error: impl ToString) -> Self {
        StepError::Failed {
            position,
            failed_at: position + 1,
            error: error.to_string(),
        }
    }
}

async fn read_checkpoint(backend: &Backend, name: &str) -> Result<i64, ProjectionError> {
    let found: Option<(i64,)> = crate::sql::fetch_optional(
        backend,
        "SELECT position FROM projection_checkpoints WHERE name = $1",
        params![name],
    )
    .await?;
    Ok(found.map_or(0, |(position,)| position))
}

/// Reads the checkpoint inside `tx`, locking its row on Postgres so that a concurrent projector
/// of the same name (or a rebuild's swap) waits for this transaction, then sees its result.
async fn lock_checkpoint(tx: &mut Tx, name: &str) -> Result<i64, sqlx::Error> {
    let sql = if tx.is_postgres() {
        "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT position FROM projection_checkpoints WHERE name = $1"
    };
    let found: Option<(i64,)> = tx.fetch_optional(sql, params![name]).await?;
    Ok(found.map_or(0, |(position,)| position))
}

async fn write_checkpoint(
    tx: &mut Tx,
    name: &str,
    position: i64,
    version: i64,
) -> Result<(), sqlx::Error> {
    tx.execute(
        "INSERT INTO projection_checkpoints (name, position, version) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, version = excluded.version",
        params![name, position, version],
    )
    .await
    .map(|_| ())
}

/// One batch: read what follows the checkpoint and apply it in one transaction.
async fn step(
    store: &EventStore,
    projection: &dyn Projection,
    options: &Options,
    suffix: &'static str,
) -> Result<Step, StepError> {
    let checkpoint_name = checkpoint_name(projection.name(), suffix);
    // Read models commit without a flush each (the store's read-model pool): a power cut can
    // only take back their last commits, rows and checkpoint together, to be applied again.
    let backend = store.read_model_backend();
    let checkpoint = read_checkpoint(backend, &checkpoint_name)
        .await
        .map_err(|e| StepError::at(0, e))?;
    let events = store
        .read_after(checkpoint, options.batch.max(1))
        .await
        .map_err(|e| StepError::at(checkpoint, e))?;
    if events.is_empty() {
        return Ok(Step::Idle(checkpoint));
    }
    apply_batch(backend, projection, &events, suffix, options).await
}

fn checkpoint_name(name: &str, suffix: &str) -> String {
    format!("{name}{suffix}")
}

/// Applies `events` (those above the checkpoint as read inside the transaction) and moves the
/// checkpoint, all in one transaction. When an event fails, the events before it are committed
/// and the failure names the one that failed.
async fn apply_batch(
    backend: &Backend,
    projection: &dyn Projection,
    events: &[StoredEvent],
    suffix: &'static str,
    options: &Options,
) -> Result<Step, StepError> {
    let name = checkpoint_name(projection.name(), suffix);
    let mut tx = Tx::begin(backend, suffix)
        .await
        .map_err(|e| StepError::at(0, e))?;
    if tx.is_postgres() {
        // The same reasoning on Postgres: this transaction's commit need not wait for its
        // write-ahead log to reach the disk.
        tx.execute("SET LOCAL synchronous_commit TO OFF", &[])
            .await
            .map_err(|e| StepError::at(0, e))?;
    }
    let checkpoint = lock_checkpoint(&mut tx, &name)
        .await
        .map_err(|e| StepError::at(0, e))?;
    match apply_in(&mut tx, projection, events, checkpoint).await {
        Ok(last) if last == checkpoint => {
            let _ = tx.rollback().await;
            Ok(Step::Applied(checkpoint))
        }
        Ok(last) => {
            if let Some(crash) = &options.crash {
                if crash(&name, last).is_err() {
                    // As a crash would: nothing of this transaction stays.
                    let _ = tx.rollback().await;
                    return Err(StepError::Crashed(checkpoint));
                }
            }
            write_checkpoint(&mut tx, &name, last, projection.version())
                .await
                .map_err(|e| StepError::at(checkpoint, e))?;
            tx.commit()
                .await
                .map_err(|e| StepError::at(checkpoint, e))?;
            Ok(Step::Applied(last))
        }
        Err((failed_at, error)) => {
            let _ = tx.rollback().await;
            let before = events.partition_point(|e| e.position < failed_at);
            if before == 0 || events[..before].iter().all(|e| e.position <= checkpoint) {
                return Err(StepError::Failed {
                    position: checkpoint,
                    failed_at,
                    error: error.to_string(),
                });
            }
            // Keep the progress made before the failing event, then report it.
            let committed = Box::pin(apply_batch(
                backend,
                projection,
                &events[..before],
                suffix,
                options,
            ))
            .await?;
            let position = match committed {
                Step::Applied(p) | Step::Idle(p) => p,
            };
            Err(StepError::Failed {
                position,
                failed_at,
                error: error.to_string(),
            })
        }
    }
}

/// Applies the events above `checkpoint` in `tx`; the last position applied, or the position
/// that failed and why.
async fn apply_in(
    tx: &mut Tx,
    projection: &dyn Projection,
    events: &[StoredEvent],
    checkpoint: i64,
) -> Result<i64, (i64, ProjectionError)> {
    let mut last = checkpoint;
    for event in events.iter().filter(|e| e.position > checkpoint) {
        if !domain::event::is_known(&event.event_type) {
            tracing::warn!(
                projection = projection.name(),
                position = event.position,
                event_type = %event.event_type,
                "skipping an event of a type this version does not know (written by a newer node?)"
            );
            last = event.position;
            continue;
        }
        let decoded = Event::decode_ref(&event.aggregate_type, &event.payload)
            .map_err(|e| (event.position, ProjectionError::Decode(e.to_string())))?;
        projection
            .apply(tx, event, &decoded)
            .await
            .map_err(|e| (event.position, e))?;
        last = event.position;
    }
    Ok(last)
}

/// How far a rebuild has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub position: i64,
    pub head: i64,
}

/// Rebuilds `projection` from position 0 into fresh tables and swaps them in atomically; the
/// live tables keep answering meanwhile. Returns the position the swapped tables are at. A
/// fill transaction spans `options.batch` positions: [`REBUILD_BATCH`] is the size to use
/// outside tests.
pub async fn rebuild(
    store: &EventStore,
    projection: &dyn Projection,
    options: &Options,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<i64, ProjectionError> {
    rebuild_all(store, &[projection], options, progress).await
}

/// Best effort: a failure that cannot be recorded is still logged and in the statuses.
async fn record_failure(backend: &Backend, name: &str, failed_at: i64, error: &str) {
    let sql = "INSERT INTO projection_failures (name, failed_at, error) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET failed_at = excluded.failed_at,
               error = excluded.error";
    if let Err(error) = execute(backend, sql, params![name, failed_at, error]).await {
        tracing::warn!(projection = name, %error, "cannot record the projector's failure");
    }
}

async fn clear_failure(backend: &Backend, name: &str) {
    let sql = "DELETE FROM projection_failures WHERE name = $1";
    if let Err(error) = execute(backend, sql, params![name]).await {
        tracing::warn!(projection = name, %error, "cannot clear the projector's failure");
    }
}

async fn execute(
    backend: &Backend,
    sql: &str,
    params: &[crate::sql::Param],
) -> Result<(), sqlx::Error> {
    let mut tx = Tx::begin(backend, "").await?;
    tx.execute(sql, params).await?;
    tx.commit().await
}

/// The last failure recorded for a projector that has not moved on since: the position that
/// failed and why.
pub async fn recorded_failure(
    backend: &Backend,
    name: &str,
) -> Result<Option<(i64, String)>, ProjectionError> {
    let mut tx = Tx::begin(backend, "").await?;
    tx.execute(FAILURES, &[]).await?;
    let found = tx
        .fetch_optional(
            "SELECT failed_at, error FROM projection_failures WHERE name = $1",
            params![name],
        )
        .await?;
    tx.commit().await?;
    Ok(found)
}

/// The checkpoint name of a projection's fresh tables while it is rebuilt.
pub fn rebuild_name(name: &str) -> String {
    checkpoint_name(name, REBUILD_SUFFIX)
}

/// A projection's checkpoint and version as stored, if it has run.
pub async fn checkpoint(
    backend: &Backend,
    name: &str,
) -> Result<Option<(i64, i64)>, ProjectionError> {
    let mut tx = Tx::begin(backend, "").await?;
    tx.execute(CHECKPOINTS, &[]).await?;
    let found = tx
        .fetch_optional(
            "SELECT position, version FROM projection_checkpoints WHERE name = $1",
            params![name],
        )
        .await?;
    tx.commit().await?;
    Ok(found)
}

/// Drops a projection's tables and checkpoint: the next projector start replays the log.
pub async fn reset(backend: &Backend, projection: &dyn Projection) -> Result<(), ProjectionError> {
    let mut tx = Tx::begin(backend, "").await?;
    tx.execute(CHECKPOINTS, &[]).await?;
    for table in projection.tables() {
        tx.execute(&format!("DROP TABLE IF EXISTS {}", table.name), &[])
            .await?;
    }
    tx.execute(
        "DELETE FROM projection_checkpoints WHERE name = $1",
        params![projection.name()],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
