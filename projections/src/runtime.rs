//! The projector runtime: the projections of a process fold the global feed into their tables
//! as one group (`live`), each batch read once and applied to all in one transaction.
//!
//! Invariant 4: a projection's checkpoint (`projection_checkpoints`) is written in the same
//! transaction as the rows an event produced, and inside that transaction the projector reads
//! its checkpoint again (locking it on Postgres) and skips whatever is at or below it. So an
//! event takes effect exactly once: a crash rolls back rows and checkpoint together, and a
//! second projector of the same name — another process, or a rebuild swapping fresh tables in —
//! finds the work already done instead of doing it twice.
//!
//! The group catches up at start, then follows the log with a `store::follow::Follower` (woken
//! on commit; a 5 s timer is only a safety net). A projection that fails on an event stops there, reports
//! `Failed` in the shared [`Statuses`], logs why, and tries that same event again later in a
//! group of its own; it never skips it, and the others go on.
//!
//! A rebuild ([`rebuild`], [`rebuild_all`]) fills fresh tables (`rm_…__rebuild`) from
//! position 0 while the live ones keep answering, then, in one transaction, catches up the last
//! events, drops the old tables, renames the fresh ones and moves the checkpoints.

mod checkpoints;
mod leased;
mod live;
mod rebuild;

pub use checkpoints::{checkpoint, rebuild_name, recorded_failure};
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

use crate::database::Tx;
use crate::params;

/// How many events one transaction applies at most.
pub const DEFAULT_BATCH: usize = 1_000;
/// The most events a batch holds on Postgres, live or in a rebuild's fill. A batch is one
/// transaction, and while it is open every reader of the log in every process waits before the
/// events appended after it began (they are read only below the oldest transaction in flight:
/// `store::postgres`): another node's live frames waited about a second behind batches of 1,000
/// under load (BENCHMARKS.md), and a rebuild's spans of 20,000 held them up for longer.
pub const POSTGRES_BATCH: usize = 100;

/// The events a batch holds at most on `backend` when `asked` are asked for.
fn batch_on(backend: &Backend, asked: usize) -> usize {
    match backend {
        Backend::Postgres(_) => asked.clamp(1, POSTGRES_BATCH),
        Backend::Sqlite(..) => asked.max(1),
    }
}

/// How many events a projection applies before it lets the thread's other tasks run (on
/// SQLite the statements run in the calling thread).
const YIELD_EVERY: usize = 200;

/// Lets the thread's other tasks run once every [`YIELD_EVERY`] events: call it with each
/// event's index in its batch before applying it.
pub(crate) async fn now_and_then(n: usize) {
    if n % YIELD_EVERY == YIELD_EVERY - 1 {
        tokio::task::yield_now().await;
    }
}
/// The safety net: a projector looks at the log at least this often even without a wake-up.
const IDLE: Duration = Duration::from_secs(5);
/// The longest pause between two attempts at an event that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest pause between two attempts while the database cannot be used at all (a full
/// disk, a lost connection). An attempt then costs one failed transaction, and the read models
/// should follow within seconds of space or the server coming back — not after a pause that
/// kept doubling while the disk was full.
const UNAVAILABLE_BACKOFF: Duration = Duration::from_secs(2);

/// The Postgres advisory lock the projectors' DDL takes turns on ("jono-ddl").
const DDL_LOCK: i64 = 0x6a6f_6e6f_2d64_646c;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn of(backend: &Backend) -> Dialect {
        match backend {
            Backend::Sqlite(..) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The strings of the JSON array bound as `param` (`$1`), as a subquery for `IN (…)`: a
    /// list of keys bound as one value.
    pub fn each_of(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({param})"),
            Dialect::Postgres => format!("SELECT jsonb_array_elements_text({param}::jsonb)"),
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
    /// Whether `apply` looks rows up by this index. On SQLite a rebuild fills its fresh tables
    /// with only these and the unique ones, and makes the others at the swap, in one sort each
    /// (it makes every index again under its live name there anyway): an index no `apply` reads
    /// would only cost the fill an insert at a random place per row.
    pub lookup: bool,
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
        self.ddl_with(dialect, suffix, |_| true)
    }

    /// The statements that create this table as a rebuild fills it: on SQLite without the
    /// indexes that `apply` does not read (see [`Index::lookup`]); the swap makes them.
    pub fn fill_ddl(&self, dialect: Dialect, suffix: &str) -> Vec<String> {
        self.ddl_with(dialect, suffix, |index| {
            dialect == Dialect::Postgres || index.unique || index.lookup
        })
    }

    fn ddl_with(
        &self,
        dialect: Dialect,
        suffix: &str,
        keep: impl Fn(&Index) -> bool,
    ) -> Vec<String> {
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
            let table = format!("{}{suffix}", self.name);
            return vec![
                format!(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5({}, \
                     tokenize = 'unicode61')",
                    columns.join(", ")
                ),
                // A row deleted (an erased customer's messages) leaves the index at once,
                // instead of staying in its older segments until they are merged.
                format!("INSERT INTO {table}({table}, rank) VALUES ('secure-delete', 1)"),
            ];
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
        for index in self.indexes.iter().filter(|index| keep(index)) {
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
    /// Applies a live batch's events of this projection, in log order, inside the batch's
    /// transaction: one by one through `apply`, except runs of messages on Postgres, given to
    /// [`Projection::apply_messages`] at once (`crate::runs`).
    async fn apply_all(
        &self,
        tx: &mut Tx,
        events: &[crate::runs::Applied<'_>],
    ) -> Result<(), ProjectionError> {
        for (n, part) in crate::runs::parts(tx.is_postgres(), events)
            .into_iter()
            .enumerate()
        {
            now_and_then(n).await;
            match part {
                crate::runs::Part::Messages(run) => self.apply_messages(tx, &run).await?,
                crate::runs::Part::One((event, decoded)) => self.apply(tx, event, decoded).await?,
            }
        }
        Ok(())
    }
    /// Applies two or more `MessageSent` in a row, leaving the rows `apply` would leave one
    /// by one. By default it is one by one; a projection that writes rows for messages does it
    /// in a statement or two over the whole run.
    async fn apply_messages(
        &self,
        tx: &mut Tx,
        run: &[crate::runs::Sent<'_>],
    ) -> Result<(), ProjectionError> {
        for sent in run {
            self.apply(tx, sent.event, sent.decoded).await?;
        }
        Ok(())
    }
}

/// Whether `projection` applies events of `event_type` (never one this version does not know).
fn wants(projection: &dyn Projection, event_type: &str) -> bool {
    domain::event::is_known(event_type)
        && projection
            .event_types()
            .is_none_or(|types| types.contains(&event_type))
}

/// Called after a batch's rows are written and before its checkpoint is: an error aborts the
/// transaction and stops the projector, as a crash there would. For tests.
pub type CrashHook = Arc<dyn Fn(&str, i64) -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
pub struct Options {
    /// Events per transaction.
    pub batch: usize,
    pub crash: Option<CrashHook>,
    /// Whether a rebuild's fill may keep the read models' write lock until it is done: one
    /// fill transaction on SQLite instead of one per few spans (see `rebuild`). Only where
    /// nothing else writes the read models meanwhile: a projector group building its own
    /// empty read models at start, whose live projectors are that same group.
    pub exclusive: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            batch: DEFAULT_BATCH,
            crash: None,
            exclusive: false,
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

    /// The position up to which this projector's rows hold everything, if they can be read.
    /// A failed one holds what it applied before the event that failed: a read that needs no
    /// more than that need not wait for the failure to clear (a read model that met a full disk
    /// after the last change of access made every command wait out `READ_WAIT`). One that could
    /// not start holds nothing, not even its tables (`failed_at` 0, not past its position).
    pub fn applied(&self) -> Option<i64> {
        match self {
            Self::Running { position } => Some(*position),
            Self::Failed {
                position,
                failed_at,
                ..
            } => (*failed_at > *position).then_some(*position),
            Self::Starting | Self::Stopped { .. } => None,
        }
    }

    /// Whether this projector's rows hold everything up to `position` ([`Self::applied`]).
    pub fn has_applied(&self, position: i64) -> bool {
        self.applied().is_some_and(|applied| applied >= position)
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

    /// The position every projector has applied everything up to (0 while one is starting,
    /// stopped or could not start): a read begun now shows everything up to it.
    pub fn reached(&self) -> i64 {
        let states = self.tx.borrow();
        let applied = states.values().map(|state| state.applied().unwrap_or(0));
        applied.min().unwrap_or(0)
    }

    /// Waits until every projector has applied everything up to `position`, for at most
    /// `timeout`; otherwise says which ones have not, and why.
    pub async fn wait_for(&self, position: i64, timeout: Duration) -> Result<(), String> {
        let mut rx = self.tx.subscribe();
        let reached = |states: &BTreeMap<String, ProjectorState>| {
            states.values().all(|state| state.has_applied(position))
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
            .filter(|(_, state)| !state.has_applied(position))
            .map(|(name, state)| match state {
                ProjectorState::Running { position: p } => {
                    format!("{name} is at {p} of {position}")
                }
                ProjectorState::Failed {
                    position: p,
                    failed_at,
                    error,
                } => format!("{name} failed at position {failed_at} (applied up to {p}): {error}"),
                ProjectorState::Starting => format!("{name} is starting"),
                ProjectorState::Stopped { position: p } => format!("{name} stopped at {p}"),
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

/// Starts the projectors of `projections` (one group); they run until `shutdown` becomes true.
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
    // On Postgres, one process of the deployment runs them; the others report its progress.
    let group = match store.backend() {
        Backend::Sqlite(..) => live::spawn(store, projections, options, statuses.clone(), shutdown),
        Backend::Postgres(_) => tokio::spawn(leased::run(
            store,
            projections,
            options,
            statuses.clone(),
            shutdown,
        )),
    };
    Projectors {
        statuses,
        tasks: vec![group],
    }
}

/// Creates the tables and the checkpoint row if missing, rebuilds when the projection's version
/// changed, and returns the checkpoint.
async fn prepare(
    store: &EventStore,
    projection: &dyn Projection,
    options: &Options,
) -> Result<i64, ProjectionError> {
    let backend = store.read_model_backend();
    let name = projection.name();
    let mut tx = Tx::begin(backend, "").await?;
    if tx.is_postgres() {
        // The projectors of a deployment start together, and Postgres's concurrent
        // `CREATE TABLE IF NOT EXISTS` of one name collide in its catalog (a duplicate key in
        // `pg_type`): their DDL takes turns, until each transaction ends.
        tx.execute("SELECT pg_advisory_xact_lock($1)", params![DDL_LOCK])
            .await?;
    }
    tx.execute(checkpoints::CHECKPOINTS, &[]).await?;
    tx.execute(checkpoints::FAILURES, &[]).await?;
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
                exclusive: false,
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

/// Drops a projection's tables and checkpoint: the next projector start replays the log.
pub async fn reset(store: &EventStore, projection: &dyn Projection) -> Result<(), ProjectionError> {
    let mut tx = Tx::begin(store.read_model_backend(), "").await?;
    tx.execute(checkpoints::CHECKPOINTS, &[]).await?;
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
