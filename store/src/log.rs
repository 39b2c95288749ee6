//! The backend-neutral event log: opening, appending through the group-commit writer, reading
//! streams, idempotency records and checkpoints.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use sqlx::{PgPool, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::{AppendError, StoreError};
use crate::event::{NewEvent, StoredEvent};
use crate::log_statements::{self as statements, COLUMNS};
use crate::metrics::StoreMetrics;
use crate::{postgres, sqlite};

/// The most requests one transaction takes; the rest wait for the next commit.
const MAX_BATCH: usize = 512;

/// An idempotency key with the hash of the request that first used it. The key is already
/// scoped by the caller (e.g. to the organization and agent), the store treats it as opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: String,
    pub request_hash: String,
}

/// One atomic append: all of `events` are written, with `idempotency` if given, or nothing is.
#[derive(Debug, Clone, Default)]
pub struct AppendRequest {
    pub events: Vec<NewEvent>,
    /// `(aggregate_type, aggregate_id, expected_version)`: each stream must be at exactly this
    /// version (0 for a stream without events). Every stream the events touch must be listed.
    pub expected: Vec<(String, String, i64)>,
    pub idempotency: Option<IdempotencyRecord>,
}

/// The database behind the store; projections use the pool to keep their read models next to
/// the log.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The pool, for writes and transactions; the readers, for reads in the calling thread.
    Sqlite(SqlitePool, crate::sqlite::Readers),
    Postgres(PgPool),
}

/// The event log. Cheap to clone; every clone shares one writer task and one pool.
#[derive(Clone)]
pub struct EventStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    /// Where read models write: on SQLite their own file, without a flush per commit.
    read_models: Backend,
    writer: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    /// Dropped with the last clone of the store: background tasks watch it and stop.
    _shutdown: watch::Sender<()>,
}

/// The pools one store works through (on Postgres, one pool three times).
struct Backends {
    /// Reads, and writes other than the log's appends.
    log: Backend,
    /// The log's appends, by the one writer task.
    writer: Appender,
    /// The read models' writes.
    read_models: Backend,
}

/// What the writer task appends through.
enum Appender {
    Sqlite(sqlite::Writer),
    Postgres(PgPool),
}

/// What the background tasks share with the handles.
pub(crate) struct Shared {
    pub(crate) head: watch::Sender<i64>,
    pub(crate) metrics: StoreMetrics,
    /// Postgres only: asks the listener task to recompute the readable head.
    pub(crate) refresh: Notify,
    /// The data subjects' keys the writer has looked up (see [`crate::seal`]).
    pub(crate) keys: std::sync::Mutex<crate::seal::KeyCache>,
    /// The newest commits of this process's writer, for the followers ([`crate::tail`]).
    pub(crate) tail: std::sync::Mutex<crate::tail::Tail>,
}

pub(crate) type AppendResult = Result<Vec<StoredEvent>, AppendError>;

struct Job {
    request: AppendRequest,
    reply: oneshot::Sender<AppendResult>,
    /// When the request was handed to the writer.
    queued: std::time::Instant,
}

/// What a backend made of one batch: one answer per request, in order, all committed together.
pub(crate) struct BatchOutcome {
    pub(crate) results: Vec<AppendResult>,
    /// How long the COMMIT took: the fsync's share of the batch's time.
    pub(crate) commit_seconds: f64,
}

impl EventStore {
    /// Opens (creating if needed) the SQLite log at `DATA_DIR/jono.db`.
    pub async fn open_sqlite(data_dir: &Path) -> Result<EventStore, StoreError> {
        let pools = sqlite::open(data_dir).await?;
        let head = sqlite::head(&pools.readers).await?;
        let store = Self::start(
            Backends {
                log: Backend::Sqlite(pools.reader, pools.readers.clone()),
                writer: Appender::Sqlite(pools.writer),
                read_models: Backend::Sqlite(pools.read_models, pools.read_model_readers),
            },
            head,
        );
        sqlite::spawn_watcher(
            pools.readers.clone(),
            Arc::clone(&store.inner.shared),
            store.inner._shutdown.subscribe(),
        );
        sqlite::spawn_checkpointer(data_dir, store.inner._shutdown.subscribe());
        Ok(store)
    }

    /// Connects to Postgres at `url` and prepares the schema.
    pub async fn open_postgres(url: &str) -> Result<EventStore, StoreError> {
        let pool = postgres::open(url).await?;
        let head = postgres::head(&pool).await?;
        let store = Self::start(
            Backends {
                log: Backend::Postgres(pool.clone()),
                writer: Appender::Postgres(pool.clone()),
                read_models: Backend::Postgres(pool.clone()),
            },
            head,
        );
        postgres::spawn_listener(
            pool,
            Arc::clone(&store.inner.shared),
            store.inner._shutdown.subscribe(),
        );
        Ok(store)
    }

    fn start(backends: Backends, head: i64) -> EventStore {
        let Backends {
            log: backend,
            writer: appends,
            read_models,
        } = backends;
        let (writer, jobs) = mpsc::channel(4096);
        let (head_tx, _) = watch::channel(head);
        let shared = Arc::new(Shared {
            head: head_tx,
            metrics: StoreMetrics::default(),
            refresh: Notify::new(),
            keys: std::sync::Mutex::new(crate::seal::KeyCache::default()),
            tail: std::sync::Mutex::default(),
        });
        let (shutdown, _) = watch::channel(());
        spawn_writer(appends, jobs, Arc::clone(&shared));
        EventStore {
            inner: Arc::new(Inner {
                backend,
                read_models,
                writer,
                shared,
                _shutdown: shutdown,
            }),
        }
    }

    /// Reads (the log, the read models, everything else) and the small writes beside the log
    /// (tokens, keys, idempotency records). On SQLite it never holds the log's writer up: that
    /// has a pool of its own.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The backend read models write through: on SQLite a pool on their own file
    /// (`read-models.db`, so their commits never take the log's write lock), whose commits are
    /// not flushed one by one (a read model is rebuilt from the log, and its checkpoint commits
    /// with its rows, so losing its last commits to a power cut only repeats work); on Postgres
    /// the same pool as the log. Never for the log, tokens or anything else that must survive.
    /// Reads of the read models go through [`EventStore::backend`], which sees them too.
    pub fn read_model_backend(&self) -> &Backend {
        &self.inner.read_models
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.inner.shared.metrics
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Appends atomically, answering only once the events are committed (and fsynced).
    #[tracing::instrument(name = "append", skip_all, fields(events = request.events.len()))]
    pub async fn append(&self, request: AppendRequest) -> Result<Vec<StoredEvent>, AppendError> {
        validate(&request)?;
        let started = std::time::Instant::now();
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(Job {
                request,
                reply,
                queued: started,
            })
            .await
            .map_err(|_| AppendError::Unavailable("the event writer has stopped".into()))?;
        let answered = answer
            .await
            .map_err(|_| AppendError::Unavailable("the event writer has stopped".into()))?;
        self.metrics()
            .record_append(started.elapsed().as_secs_f64());
        answered
    }

    /// Every event of one stream, in sequence order.
    pub async fn load_stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.load_stream_after(aggregate_type, aggregate_id, 0)
            .await
    }

    /// The events of one stream with a sequence above `after_sequence`, in sequence order.
    pub async fn load_stream_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
             AND sequence > $3 ORDER BY sequence"
        );
        let params = params![aggregate_type, aggregate_id, after_sequence];
        let events = statements::events(self.backend(), &sql, params).await?;
        self.opened(events).await
    }

    /// A stream's version: the sequence of its last event, 0 without events.
    pub async fn stream_version(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<i64, StoreError> {
        let version: Option<(i64,)> = dialect::fetch_optional(
            self.backend(),
            statements::STREAM_VERSION,
            params![aggregate_type, aggregate_id],
        )
        .await?;
        Ok(version.map_or(0, |(version,)| version))
    }

    /// As [`EventStore::load_stream_after`], from this process's newest commits when they hold
    /// every event of the stream after `after_sequence` that this process has heard of
    /// ([`crate::tail::Tail::stream_after`]); else from the database. For a command's check
    /// of its cached aggregate: an event of another process it has not heard of yet makes the
    /// append's expected-version check refuse, and the command decides again from the
    /// database. `from_memory` says where the answer came from.
    pub(crate) async fn load_stream_after_recent(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
    ) -> Result<(Vec<StoredEvent>, bool), StoreError> {
        let known = *self.shared().head.borrow();
        let kept = self.shared().tail.lock().ok().and_then(|mut tail| {
            tail.stream_after(aggregate_type, aggregate_id, after_sequence, known)
        });
        match kept {
            Some(kept) => Ok((self.opened(kept).await?, true)),
            None => {
                let events = self
                    .load_stream_after(aggregate_type, aggregate_id, after_sequence)
                    .await?;
                Ok((events, false))
            }
        }
    }

    /// The events of one stream with a global position above `after_position`, in order: what
    /// a WebSocket topic replays after the position a client last saw. See
    /// [`EventStore::load_stream_window`].
    pub async fn load_stream_since(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_position: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.load_stream_window(aggregate_type, aggregate_id, after_position, None, None)
            .await
    }

    /// The events of one stream with a global position in `(after, upto]` (`upto` `None`:
    /// to the stream's end), in order, at most `limit` of them. The stream's sequences where
    /// the window begins and ends are found by a binary search in its index
    /// ([`statements::sequence_at`]) and the events between them read in sequence order, so
    /// the cost is that of the events returned, never of the stream's history before or after
    /// the window (a queue's stream never ends).
    pub async fn load_stream_window(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
        upto: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut with = vec![statements::sequence_at("below", "$3")];
        let mut within = String::from("sequence > (SELECT lo FROM below WHERE lo >= hi)");
        if upto.is_some() {
            with.push(statements::sequence_at("upto", "$4"));
            within.push_str(" AND sequence <= (SELECT lo FROM upto WHERE lo >= hi)");
        }
        let limit = limit.map_or(String::new(), |limit| format!(" LIMIT {limit}"));
        let sql = format!(
            "WITH RECURSIVE {} SELECT {COLUMNS} FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND {within} \
             ORDER BY sequence{limit}",
            with.join(", ")
        );
        let events = match upto {
            Some(upto) => {
                let params = params![aggregate_type, aggregate_id, after, upto];
                statements::events(self.backend(), &sql, params).await?
            }
            None => {
                let params = params![aggregate_type, aggregate_id, after];
                statements::events(self.backend(), &sql, params).await?
            }
        };
        self.opened(events).await
    }

    /// The queues' events that name `conversation_id` (their payload's `conversation_id`) with
    /// a global position in `(after, upto]`, in log order, at most `limit`: what the queues a
    /// conversation went through recorded of it (its joins, offers, pick, leaving, transfers).
    /// Read through an index of the conversation each queue event names
    /// ([`statements::named_in_queue`]), so the cost is that of the events returned, never of
    /// the queues' other customers — a queue's stream never ends.
    pub async fn load_queue_events_naming(
        &self,
        conversation_id: Uuid,
        (after, upto): (i64, i64),
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = 'queue' AND {} = $1 \
             AND position > $2 AND position <= $3 ORDER BY position LIMIT {limit}",
            statements::named_in_queue(self.backend())
        );
        let params = params![conversation_id.to_string(), after, upto];
        let events = statements::events(self.backend(), &sql, params).await?;
        self.opened(events).await
    }

    /// The request hash recorded under `key` and the events its request appended.
    pub async fn find_idempotent(
        &self,
        key: &str,
    ) -> Result<Option<(String, Vec<StoredEvent>)>, StoreError> {
        let record: Option<(String, Option<i64>, Option<i64>)> = dialect::fetch_optional(
            self.backend(),
            "SELECT request_hash, first_position, last_position FROM idempotency_keys \
             WHERE key = $1",
            params![key],
        )
        .await?;
        let Some((hash, first, last)) = record else {
            return Ok(None);
        };
        let events = match (first, last) {
            (Some(first), Some(last)) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM events WHERE position BETWEEN $1 AND $2 \
                     AND idempotency_key = $3 ORDER BY position"
                );
                statements::events(self.backend(), &sql, params![first, last, key]).await?
            }
            _ => Vec::new(),
        };
        Ok(Some((hash, self.opened(events).await?)))
    }

    /// The process manager's place in the log (`gateway::process_manager`): every follow-up of
    /// the events up to it is done. A tool that writes a history with its follow-ups already
    /// run (`jono-bench generate`) sets it at the head.
    pub const PROCESS_MANAGER_CHECKPOINT: &'static str = "process_manager";

    pub async fn get_checkpoint(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = dialect::fetch_optional(
            self.backend(),
            "SELECT position FROM checkpoints WHERE name = $1",
            params![name],
        )
        .await?;
        Ok(row.map(|(position,)| position))
    }

    pub async fn set_checkpoint(&self, name: &str, position: i64) -> Result<(), StoreError> {
        dialect::execute(
            self.backend(),
            "INSERT INTO checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            params![name, position],
        )
        .await?;
        Ok(())
    }
}

/// Refuses requests that contradict themselves before they reach the writer: each event's stream
/// must have an expected version, and its events must continue it without a gap.
fn validate(request: &AppendRequest) -> Result<(), AppendError> {
    let mut next: HashMap<(&str, &str), i64> = HashMap::new();
    for (aggregate_type, aggregate_id, expected) in &request.expected {
        if *expected < 0 {
            return Err(AppendError::Invalid(format!(
                "negative expected version for {aggregate_type}/{aggregate_id}"
            )));
        }
        if next
            .insert((aggregate_type, aggregate_id), expected + 1)
            .is_some()
        {
            return Err(AppendError::Invalid(format!(
                "{aggregate_type}/{aggregate_id} is listed twice in expected"
            )));
        }
    }
    for event in &request.events {
        let key = (event.aggregate_type.as_str(), event.aggregate_id.as_str());
        let Some(want) = next.get_mut(&key) else {
            return Err(AppendError::Invalid(format!(
                "no expected version for {}/{}",
                event.aggregate_type, event.aggregate_id
            )));
        };
        if event.sequence != *want {
            return Err(AppendError::Invalid(format!(
                "event for {}/{} has sequence {}, expected {}",
                event.aggregate_type, event.aggregate_id, event.sequence, want
            )));
        }
        *want += 1;
    }
    Ok(())
}

/// Starts the one writer of this process (invariant 5, group commit): it takes every request
/// queued, runs them in one transaction, each in its own savepoint so a conflicting request
/// fails alone, commits once (one fsync for all), and only then answers each request.
///
/// On SQLite a batch is blocking work from its first statement to its fsync, and the writer
/// runs in a thread of its own. As a runtime task it waited for a worker to take the batch, for
/// a blocking thread to run it, and for a worker again to answer: at 1,000 messages/s an append
/// took 1.9 ms on average against 0.4 ms for its commit (BENCHMARKS.md). The thread ends when
/// the store's last handle is dropped (the queue's senders with it).
fn spawn_writer(appends: Appender, jobs: mpsc::Receiver<Job>, shared: Arc<Shared>) {
    match appends {
        Appender::Sqlite(writer) => {
            let started = std::thread::Builder::new()
                .name("jono-log-writer".into())
                .spawn(move || run_sqlite_writer(writer, jobs, &shared));
            if let Err(error) = started {
                // The queue's receiver is gone with the closure: every append is refused as
                // unavailable (503), never lost.
                tracing::error!(%error, "cannot start the log's writer thread: appends fail");
            }
        }
        Appender::Postgres(pool) => {
            tokio::spawn(run_postgres_writer(pool, jobs, shared));
        }
    }
}

fn run_sqlite_writer(mut writer: sqlite::Writer, mut jobs: mpsc::Receiver<Job>, shared: &Shared) {
    while let Some(first) = jobs.blocking_recv() {
        let began = std::time::Instant::now();
        let (requests, replies) = gather(first, &mut jobs, began, shared);
        let outcome = writer.commit_batch(&requests, shared);
        answer(Log::Sqlite, outcome, replies, shared);
        shared
            .metrics
            .record_batch_time(began.elapsed().as_secs_f64());
    }
}

async fn run_postgres_writer(pool: PgPool, mut jobs: mpsc::Receiver<Job>, shared: Arc<Shared>) {
    while let Some(first) = jobs.recv().await {
        let began = std::time::Instant::now();
        let (requests, replies) = gather(first, &mut jobs, began, &shared);
        let requests: Vec<&AppendRequest> = requests.iter().collect();
        let outcome = postgres::commit_batch(&pool, &requests, &shared).await;
        answer(Log::Postgres, outcome, replies, &shared);
        shared
            .metrics
            .record_batch_time(began.elapsed().as_secs_f64());
    }
}

/// Which backend a writer appends to.
#[derive(Debug, Clone, Copy)]
enum Log {
    Sqlite,
    Postgres,
}

/// `first` and every request queued behind it, up to [`MAX_BATCH`]: one batch, begun at
/// `began` (each request's wait for it is recorded).
fn gather(
    first: Job,
    jobs: &mut mpsc::Receiver<Job>,
    began: std::time::Instant,
    shared: &Shared,
) -> (Vec<AppendRequest>, Vec<oneshot::Sender<AppendResult>>) {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    for job in &batch {
        let waited = began.saturating_duration_since(job.queued);
        shared.metrics.record_append_queue(waited.as_secs_f64());
    }
    batch
        .into_iter()
        .map(|job| (job.request, job.reply))
        .unzip()
}

/// Records a batch's outcome, moves the head and answers each request of the batch.
fn answer(
    log: Log,
    outcome: Result<BatchOutcome, AppendError>,
    replies: Vec<oneshot::Sender<AppendResult>>,
    shared: &Shared,
) {
    match outcome {
        Ok(BatchOutcome {
            results,
            commit_seconds,
        }) => {
            let backend_name = match log {
                Log::Sqlite => "sqlite",
                Log::Postgres => "postgres",
            };
            shared.metrics.record_commit(backend_name, commit_seconds);
            let mut events = 0;
            let mut conflicts = 0;
            let mut head = None;
            for result in &results {
                match result {
                    Ok(stored) => {
                        events += stored.len();
                        head = stored.iter().map(|e| e.position).max().max(head);
                    }
                    Err(AppendError::Conflict) => conflicts += 1,
                    Err(_) => {}
                }
            }
            shared
                .metrics
                .record_batch(replies.len(), events, conflicts);
            match log {
                // SQLite has one writer and commits in position order: what we just committed
                // is the readable head.
                Log::Sqlite => {
                    if let Some(head) = head {
                        shared.head.send_if_modified(|h| raise(h, head));
                    }
                }
                // On Postgres the readable head also depends on other transactions in flight;
                // the listener task recomputes it. The followers wake at once all the same (the
                // value unchanged): what this writer committed is in the tail, which they may
                // read past a readable head that older open transactions (a projector's batch)
                // hold back.
                Log::Postgres => {
                    if head.is_some() {
                        shared.head.send_modify(|_| {});
                        shared.refresh.notify_one();
                    }
                }
            }
            for (reply, result) in replies.into_iter().zip(results) {
                // A caller that stopped waiting is no reason to stop the writer.
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            tracing::warn!(%error, requests = replies.len(), "event store batch failed");
            shared.metrics.record_failed_batch(replies.len());
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

pub(crate) fn raise(head: &mut i64, to: i64) -> bool {
    if to > *head {
        *head = to;
        true
    } else {
        false
    }
}
