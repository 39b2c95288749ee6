//! Rebuilding projections: fresh tables filled from position 0 while the live ones keep
//! answering, then swapped in, in one transaction.
//!
//! Several projections are rebuilt in one pass over the log: each batch is read once, each event
//! decoded once and applied to every projection that wants its type. Each projection still has
//! its own checkpoint for its fresh tables (`NAME__rebuild`), written in the transaction that
//! writes its rows (invariant 4), so an event never takes effect twice.
//!
//! Where the time went before (one pass per projection, every payload parsed into a
//! `serde_json::Value` and cloned, a fsynced commit every 1,000 events), and what this does
//! instead:
//!
//! - On SQLite the log is read a span of positions at a time, only the event types some
//!   projection declared ([`Projection::event_types`]), the payload decoded straight from its
//!   text; reading and decoding the next span overlaps with applying this one.
//! - The log is read [`REBUILD_BATCH`] positions at a time on SQLite, at most
//!   [`super::POSTGRES_BATCH`] events on Postgres (each projection writes a run of messages
//!   as one set there: `crate::runs`). On Postgres a span is a transaction; on SQLite a fill
//!   transaction takes up to [`SPANS_PER_TRANSACTION`] spans, or what [`TRANSACTION_HOLD`]
//!   allows: a commit writes every page the transaction dirtied into the write-ahead log, and
//!   the fresh tables' index pages are dirtied again by every span, so fewer commits write
//!   them fewer times (over 1,000,000 events, one commit per 100,000 positions instead of per
//!   20,000 took the fill from about 31 s to 21 s: BENCHMARKS.md).
//!   A projector group building its own empty read models at start ([`Options::exclusive`])
//!   keeps one fill transaction to the end instead: nothing else writes the read models
//!   meanwhile, and each commit copied the pages the spans dirtied again (a start on a
//!   1,000,000-event log was 10–13 % faster: BENCHMARKS.md). Its write-ahead log then grows
//!   to about the fresh tables' size before the commit (386 MB there, against 107 MB), and is
//!   cut back after.
//! - On SQLite the fresh tables are filled with only the indexes an `apply` reads and the
//!   unique ones ([`Table::fill_ddl`](super::Table::fill_ddl)); the swap makes the others, one
//!   sort each, as it makes every index again under its live name anyway.
//! - On SQLite the fill writes through a connection of its own with `synchronous=NORMAL`: its
//!   commits are not fsynced. That loses nothing that matters: the fresh tables are throwaway
//!   until the swap, a power loss takes their rows and checkpoints back together, and the
//!   swap's commit (on a pooled connection, `synchronous=FULL`) fsyncs the write-ahead log and
//!   so every frame before it. Not `OFF`: with `OFF` SQLite also skips the fsyncs of a
//!   checkpoint of the write-ahead log into the database file, which could lose the live
//!   tables' and the log's pages on a power loss, not only the fresh tables'.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use domain::Event;
use sqlx::SqlitePool;
use store::event::StoredEvent;
use store::log::{Backend, EventStore};
use uuid::Uuid;

use super::checkpoints::{self, CHECKPOINTS};
use super::{
    batch_on, rebuild_name, wants, Dialect, Options, Progress, Projection, ProjectionError,
};
use crate::database::{Tx, REBUILD_SUFFIX};
use crate::params;
use crate::runs::Applied;

/// Positions per span of the log a rebuild reads and applies at once (what `jono projections
/// rebuild` and a projector's rebuild at start use): a few spans are in memory at a time, and
/// what is left of the log below one span is applied in the swap's transaction.
pub const REBUILD_BATCH: usize = 20_000;

/// How many spans one fill transaction takes at most on SQLite.
const SPANS_PER_TRANSACTION: usize = 5;

/// How long a fill transaction may hold the read models' write lock on SQLite before it
/// commits at the end of its span: the live projectors of a running `jono serve` wait for the
/// lock meanwhile, and reads wait for them (at most `READ_WAIT`, 5 s, in the gateway).
const TRANSACTION_HOLD: Duration = Duration::from_secs(2);

/// How many pages of SQLite's cache the fill's own connection keeps (in KiB when negative):
/// the fresh tables' indexes are written at random places, and a larger cache writes each page
/// once per transaction instead of again and again.
const FILL_CACHE_KIB: &str = "-262144";

/// After how many pages of write-ahead log a commit of the fill's connection copies them into
/// the database file (SQLite's default is 1,000): a page the fill writes again and again is
/// then copied once per checkpoint, not once per transaction.
const FILL_CHECKPOINT_PAGES: u32 = 10_000;

/// An event as read once for every projection being rebuilt.
struct Read {
    stored: StoredEvent,
    event: Event,
}

/// One batch of the fill: the events in `(after, upto]` that some projection wants.
struct Span {
    events: Vec<Read>,
    upto: i64,
}

/// The event types any of `projections` applies: those they declare, or every type this
/// version knows for one that takes them all (a newer node's types are never read).
fn wanted_types(projections: &[&dyn Projection]) -> Vec<&'static str> {
    let mut types = BTreeSet::new();
    for projection in projections {
        let declared = projection
            .event_types()
            .unwrap_or(&domain::event::EVENT_TYPES);
        types.extend(declared.iter().copied());
    }
    types.into_iter().collect()
}

fn failed(names: &str, position: i64, error: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Invalid(format!(
        "rebuilding {names} failed at position {position}: {error}"
    ))
}

/// Rebuilds `projections` together, in one pass over the log, and swaps all their fresh tables
/// in in one transaction. Returns the position the swapped tables are at.
pub async fn rebuild_all(
    store: &EventStore,
    projections: &[&dyn Projection],
    options: &Options,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<i64, ProjectionError> {
    let names = projections
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ");
    create_fresh_tables(store.read_model_backend(), projections).await?;
    fill_fresh_tables(store, projections, options, progress, &names).await?;
    let position = swap_in(store, projections, options, &names).await?;
    let head = store.head().await.unwrap_or(position);
    progress(Progress { position, head });
    Ok(position)
}

/// Fresh, empty tables (a previous rebuild's leftovers dropped), each projection's fresh
/// checkpoint at 0.
async fn create_fresh_tables(
    backend: &Backend,
    projections: &[&dyn Projection],
) -> Result<(), ProjectionError> {
    let dialect = Dialect::of(backend);
    let mut tx = Tx::begin(backend, REBUILD_SUFFIX).await?;
    tx.execute(CHECKPOINTS, &[]).await?;
    for projection in projections {
        for table in projection.tables() {
            tx.execute(&format!("DROP TABLE IF EXISTS {}{{s}}", table.name), &[])
                .await?;
        }
        for table in projection.tables() {
            tx.batch(&table.fill_ddl(dialect, REBUILD_SUFFIX)).await?;
        }
        let fresh = rebuild_name(projection.name());
        checkpoints::write(&mut tx, &[(&fresh, 0, projection.version())]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Fills the fresh tables while the live ones answer, until what is left is less than a batch.
async fn fill_fresh_tables(
    store: &EventStore,
    projections: &[&dyn Projection],
    options: &Options,
    progress: &(dyn Fn(Progress) + Send + Sync),
    names: &str,
) -> Result<(), ProjectionError> {
    let backend = store.read_model_backend();
    let batch = batch_on(backend, options.batch);
    let types = wanted_types(projections);
    // One fill transaction on SQLite when nobody else waits for the lock (Postgres's would
    // hold back every reader of the log: one span each there).
    let exclusive = options.exclusive && matches!(backend, Backend::Sqlite(..));
    let mut own = match backend {
        Backend::Sqlite(pool, _) => Some(own_connection(pool)?),
        Backend::Postgres(_) => None,
    };
    let mut position = 0;
    // Where the fill's time goes, logged at its end: applying, or waiting for the log's reader.
    let started = Instant::now();
    let (mut applying, mut waiting, mut events) = (Duration::ZERO, Duration::ZERO, 0);
    let mut transactions = 0;
    loop {
        let head = store.head().await?;
        if head - position <= i64::try_from(batch).unwrap_or(i64::MAX) {
            break;
        }
        let (spans, mut received) = tokio::sync::mpsc::channel(2);
        // Reading and decoding the next span overlaps with applying this one.
        let reader = {
            let store = store.clone();
            let types = types.clone();
            tokio::spawn(async move {
                let mut after = position;
                loop {
                    let span = read_span(&store, after, head, batch, &types).await;
                    let next = span.as_ref().ok().map(|span| span.upto);
                    if spans.send(span).await.is_err() {
                        return;
                    }
                    match next {
                        Some(upto) if upto > after && upto < head => after = upto,
                        _ => return,
                    }
                }
            })
        };
        let mut open: Option<Filling> = None;
        loop {
            let asked = Instant::now();
            let Some(span) = received.recv().await else {
                break;
            };
            let span = span?;
            let got = Instant::now();
            waiting += got - asked;
            let filling = match open.take() {
                Some(filling) => filling,
                None => Filling::begin(backend, own.take(), projections).await?,
            };
            let filling = filling.apply(backend, projections, &span).await?;
            let held = filling.spans >= spans_per_transaction(backend)
                || filling.began.elapsed() >= TRANSACTION_HOLD;
            if held && !exclusive {
                own = filling.commit(projections, options, names).await?;
                transactions += 1;
            } else {
                open = Some(filling);
            }
            applying += got.elapsed();
            events += span.events.len();
            position = position.max(span.upto);
            progress(Progress { position, head });
        }
        if let Some(filling) = open {
            let committing = Instant::now();
            own = filling.commit(projections, options, names).await?;
            transactions += 1;
            applying += committing.elapsed();
        }
        let _ = reader.await;
    }
    drop(own);
    tracing::info!(
        projections = names,
        position,
        events,
        transactions,
        seconds = started.elapsed().as_secs_f64(),
        applying = applying.as_secs_f64(),
        waiting_for_the_log = waiting.as_secs_f64(),
        "rebuild: fresh tables filled"
    );
    Ok(())
}

/// Swaps the fresh tables in: one transaction catches up the last events, replaces the live
/// tables and moves the live checkpoints. The live projectors, locked out meanwhile, then find
/// their checkpoints past everything the fresh tables hold and skip it.
async fn swap_in(
    store: &EventStore,
    projections: &[&dyn Projection],
    options: &Options,
    names: &str,
) -> Result<i64, ProjectionError> {
    let backend = store.read_model_backend();
    let dialect = Dialect::of(backend);
    let batch = batch_on(backend, options.batch);
    let mut tx = Tx::begin(backend, REBUILD_SUFFIX).await?;
    // The live checkpoints too: a live projector's batch waits for the swap, then sees it.
    let fresh: Vec<String> = projections.iter().map(|p| rebuild_name(p.name())).collect();
    let locked: Vec<&str> = projections
        .iter()
        .map(|p| p.name())
        .chain(fresh.iter().map(String::as_str))
        .collect();
    let at = checkpoints::lock(&mut tx, &locked).await?[projections.len()..].to_vec();
    let mut position = at.iter().copied().min().unwrap_or(0);
    loop {
        let events = store.read_after(position, batch).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        for stored in &events {
            let mut decoded = None;
            for (projection, checkpoint) in projections.iter().zip(&at) {
                if stored.position <= *checkpoint || !wants(*projection, &stored.event_type) {
                    continue;
                }
                let event = match &decoded {
                    Some(event) => event,
                    None => decoded.insert(
                        Event::decode_ref(&stored.aggregate_type, &stored.payload)
                            .map_err(|e| failed(names, stored.position, e))?,
                    ),
                };
                projection
                    .apply(&mut tx, stored, event)
                    .await
                    .map_err(|e| failed(projection.name(), stored.position, e))?;
            }
        }
        position = last;
    }
    for (projection, checkpoint) in projections.iter().zip(&at) {
        swap_tables(&mut tx, *projection, dialect).await?;
        let name = projection.name();
        let moved = (name, position.max(*checkpoint), projection.version());
        checkpoints::write(&mut tx, &[moved]).await?;
        tx.execute(
            "DELETE FROM projection_checkpoints WHERE name = $1",
            params![rebuild_name(name)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(position)
}

/// Replaces `projection`'s live tables by its fresh ones, inside the swap's transaction.
async fn swap_tables(
    tx: &mut Tx,
    projection: &dyn Projection,
    dialect: Dialect,
) -> Result<(), ProjectionError> {
    for table in projection.tables() {
        let live = table.name;
        tx.execute(&format!("DROP TABLE IF EXISTS {live}"), &[])
            .await?;
        tx.execute(
            &format!("ALTER TABLE {live}{REBUILD_SUFFIX} RENAME TO {live}"),
            &[],
        )
        .await?;
        // An FTS5 table renames its own parts and has no other index.
        let indexes = if dialect == Dialect::Sqlite && table.full_text.is_some() {
            &[][..]
        } else {
            table.indexes
        };
        for index in indexes {
            let ix = index.name;
            match dialect {
                Dialect::Postgres => {
                    tx.execute(
                        &format!("ALTER INDEX {ix}{REBUILD_SUFFIX} RENAME TO {ix}"),
                        &[],
                    )
                    .await?;
                }
                // SQLite cannot rename an index: make it again under its live name.
                Dialect::Sqlite => {
                    tx.execute(&format!("DROP INDEX IF EXISTS {ix}{REBUILD_SUFFIX}"), &[])
                        .await?;
                    tx.batch(&[format!(
                        "CREATE {}INDEX IF NOT EXISTS {ix} ON {live} ({})",
                        if index.unique { "UNIQUE " } else { "" },
                        index.columns
                    )])
                    .await?;
                }
            }
        }
        if dialect == Dialect::Postgres {
            tx.execute(
                &format!("ALTER INDEX IF EXISTS {live}{REBUILD_SUFFIX}_pkey RENAME TO {live}_pkey"),
                &[],
            )
            .await?;
            if table.full_text.is_some() {
                tx.execute(
                    &format!("ALTER INDEX {live}_fts{REBUILD_SUFFIX} RENAME TO {live}_fts"),
                    &[],
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// A SQLite connection of the caller's own, through rusqlite (the fill's, and the live
/// projectors'): the pool's database file, no busy timeout (see `Tx::begin_direct`),
/// `synchronous=NORMAL` and a larger cache (see the module's comment). Never a pooled
/// connection: those go back to the pool, and the rest of the process counts on their settings.
pub(super) fn own_connection(pool: &SqlitePool) -> Result<rusqlite::Connection, ProjectionError> {
    let options = pool.connect_options();
    let failed =
        |e: rusqlite::Error| ProjectionError::Invalid(format!("the fill's connection: {e}"));
    let connection = rusqlite::Connection::open(options.get_filename()).map_err(failed)?;
    // No busy timeout: `Tx::begin_direct` waits for the lock without blocking the thread.
    connection.busy_timeout(Duration::ZERO).map_err(failed)?;
    connection
        .execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON; \
             PRAGMA cache_size = {FILL_CACHE_KIB}; \
             PRAGMA wal_autocheckpoint = {FILL_CHECKPOINT_PAGES}; \
             PRAGMA journal_size_limit = {};",
            store::WAL_SIZE_LIMIT
        ))
        .map_err(failed)?;
    // Every projection's statements stay prepared from one transaction to the next.
    connection.set_prepared_statement_cache_capacity(256);
    Ok(connection)
}

/// How many spans a fill transaction takes on `backend`: one on Postgres, whose open
/// transaction holds back every reader of the log (see [`super::POSTGRES_BATCH`]).
fn spans_per_transaction(backend: &Backend) -> usize {
    match backend {
        Backend::Sqlite(..) => SPANS_PER_TRANSACTION,
        Backend::Postgres(_) => 1,
    }
}

/// A fill transaction under way: each projection's fresh checkpoint as it began, and the
/// last position of the spans applied in it.
struct Filling {
    tx: Tx,
    at: Vec<i64>,
    upto: i64,
    spans: usize,
    began: Instant,
}

impl Filling {
    /// Begins a fill transaction, on the fill's own connection on SQLite, and locks the
    /// projections' fresh checkpoints.
    async fn begin(
        backend: &Backend,
        own: Option<rusqlite::Connection>,
        projections: &[&dyn Projection],
    ) -> Result<Self, ProjectionError> {
        let mut tx = match own {
            Some(connection) => Tx::begin_direct(connection, REBUILD_SUFFIX).await?,
            None => Tx::begin(backend, REBUILD_SUFFIX).await?,
        };
        // Throwaway until the swap anyway (SQLite's fill does not wait for the disk either).
        tx.ready_for_batch().await?;
        let fresh: Vec<String> = projections.iter().map(|p| rebuild_name(p.name())).collect();
        let fresh: Vec<&str> = fresh.iter().map(String::as_str).collect();
        let at = checkpoints::lock(&mut tx, &fresh).await?;
        let upto = at.iter().copied().min().unwrap_or(0);
        Ok(Self {
            tx,
            at,
            upto,
            spans: 0,
            began: Instant::now(),
        })
    }

    /// Applies one span to every projection (each takes it at once: runs of messages as sets
    /// on Postgres). On an error the transaction is rolled back and the error names the event.
    async fn apply(
        mut self,
        backend: &Backend,
        projections: &[&dyn Projection],
        span: &Span,
    ) -> Result<Self, ProjectionError> {
        for (projection, checkpoint) in projections.iter().zip(&self.at) {
            let wanted: Vec<Applied> = span
                .events
                .iter()
                .filter(|read| {
                    read.stored.position > *checkpoint
                        && wants(*projection, &read.stored.event_type)
                })
                .map(|read| (&read.stored, &read.event))
                .collect();
            if let Err(error) = projection.apply_all(&mut self.tx, &wanted).await {
                let _ = self.tx.rollback().await;
                return Err(locate(backend, *projection, &wanted, error).await);
            }
            tokio::task::yield_now().await;
        }
        self.upto = self.upto.max(span.upto);
        self.spans += 1;
        Ok(self)
    }

    /// Moves each projection's fresh checkpoint to the last span's end with its rows, and
    /// commits. Returns the fill's own connection for the next transaction.
    async fn commit(
        mut self,
        projections: &[&dyn Projection],
        options: &Options,
        names: &str,
    ) -> Result<Option<rusqlite::Connection>, ProjectionError> {
        let fresh: Vec<String> = projections.iter().map(|p| rebuild_name(p.name())).collect();
        let mut moved = Vec::with_capacity(projections.len());
        for ((projection, checkpoint), fresh) in projections.iter().zip(&self.at).zip(&fresh) {
            let last = self.upto.max(*checkpoint);
            if let Some(crash) = &options.crash {
                if crash(fresh, last).is_err() {
                    // As a crash would: nothing of this transaction stays.
                    let _ = self.tx.rollback().await;
                    return Err(ProjectionError::Interrupted(format!(
                        "rebuilding {names} at {last}"
                    )));
                }
            }
            moved.push((fresh.as_str(), last, projection.version()));
        }
        checkpoints::write(&mut self.tx, &moved).await?;
        Ok(self.tx.commit_direct().await?)
    }
}

/// Which event of `events` `projection` fails on, told by applying them one at a time in a
/// transaction that is then rolled back: the rebuild's error names it.
async fn locate(
    backend: &Backend,
    projection: &dyn Projection,
    events: &[Applied<'_>],
    error: ProjectionError,
) -> ProjectionError {
    let Ok(mut tx) = Tx::begin(backend, REBUILD_SUFFIX).await else {
        return error;
    };
    for (event, decoded) in events {
        if let Err(error) = projection.apply(&mut tx, event, decoded).await {
            let _ = tx.rollback().await;
            return failed(projection.name(), event.position, error);
        }
    }
    let _ = tx.rollback().await;
    let first = events.first().map_or(0, |(event, _)| event.position);
    failed(projection.name(), first, error)
}

/// The next events after `after` of the `types` given, decoded, and the position
/// they reach. On SQLite a span of `batch` positions up to `head`, filtered in SQL, each payload
/// decoded from its text; on Postgres the next `batch` events of the feed, as projectors read
/// it, filtered before decoding.
async fn read_span(
    store: &EventStore,
    after: i64,
    head: i64,
    batch: usize,
    types: &[&'static str],
) -> Result<Span, ProjectionError> {
    match store.backend() {
        Backend::Sqlite(_, readers) => {
            let upto = head.min(after.saturating_add(i64::try_from(batch).unwrap_or(i64::MAX)));
            let types = serde_json::Value::from(types.to_vec()).to_string();
            // Read on a blocking thread through the store's own readers (rusqlite), each row's
            // text taken as it is: reading the span used to cost a thread of sqlx's as much.
            let rows = readers
                .read_blocking(move |connection| {
                    let mut statement = connection.prepare_cached(
                        "SELECT position, event_id, aggregate_type, aggregate_id, sequence, \
                         event_type, event_version, payload, actor, recorded_at, \
                         idempotency_key FROM events WHERE position > ?1 AND position <= ?2 \
                         AND event_type IN (SELECT value FROM json_each(?3)) ORDER BY position",
                    )?;
                    let rows =
                        statement.query_map(rusqlite::params![after, upto, types], |row| {
                            Ok(Row {
                                position: row.get(0)?,
                                event_id: row.get(1)?,
                                aggregate_type: row.get(2)?,
                                aggregate_id: row.get(3)?,
                                sequence: row.get(4)?,
                                event_type: row.get(5)?,
                                event_version: row.get(6)?,
                                payload: row.get(7)?,
                                actor: row.get(8)?,
                                recorded_at: row.get(9)?,
                                idempotency_key: row.get(10)?,
                            })
                        })?;
                    rows.collect::<rusqlite::Result<Vec<Row>>>()
                })
                .await
                .map_err(|e| ProjectionError::Invalid(format!("reading the log: {e}")))?;
            // Sealed payloads (see `store::seal`) are opened with their subjects' keys, read
            // once per span; the others are decoded straight from their text.
            let sealed: Vec<(usize, serde_json::Value)> = rows
                .iter()
                .enumerate()
                .filter_map(|(at, row)| {
                    row.payload
                        .contains(store::seal::SEALED)
                        .then(|| {
                            serde_json::from_str(&row.payload)
                                .ok()
                                .map(|value| (at, value))
                        })
                        .flatten()
                })
                .collect();
            let subjects =
                store::seal::subjects_to_open(sealed.iter().map(|(_, payload)| ("", payload)));
            let keys = store.subject_keys(&subjects).await?;
            let mut opened: std::collections::HashMap<usize, serde_json::Value> =
                sealed.into_iter().collect();
            let mut events = Vec::with_capacity(rows.len());
            for (at, row) in rows.into_iter().enumerate() {
                let payload = opened.remove(&at).map(|mut payload| {
                    store::seal::open_with(&keys, &mut payload);
                    payload
                });
                events.push(sqlite_read(row, payload.as_ref())?);
            }
            Ok(Span { events, upto })
        }
        Backend::Postgres(_) => {
            let stored = store.read_after(after, batch).await?;
            let upto = stored.last().map_or(after, |e| e.position);
            let mut events = Vec::with_capacity(stored.len());
            for stored in stored {
                if !types.contains(&stored.event_type.as_str()) {
                    continue;
                }
                let event =
                    Event::decode_ref(&stored.aggregate_type, &stored.payload).map_err(|e| {
                        ProjectionError::Decode(format!("position {}: {e}", stored.position))
                    })?;
                events.push(Read { stored, event });
            }
            Ok(Span { events, upto })
        }
    }
}

/// A row of the log as the fill reads it on SQLite: its columns' text.
struct Row {
    position: i64,
    event_id: String,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    actor: Option<String>,
    recorded_at: String,
    idempotency_key: Option<String>,
}

/// A row of the log as a stored event and its decoded event. The payload is decoded straight
/// from its text and not kept as a `Value` (it stays `Null`): see [`Projection::apply`].
fn sqlite_read(row: Row, opened: Option<&serde_json::Value>) -> Result<Read, ProjectionError> {
    let position = row.position;
    let corrupt = |what: String| ProjectionError::Decode(format!("position {position}: {what}"));
    let event = match opened {
        Some(opened) => Event::decode_ref(&row.aggregate_type, opened),
        None => Event::decode_str(&row.aggregate_type, &row.payload),
    }
    .map_err(|e| corrupt(e.to_string()))?;
    let recorded_at = &row.recorded_at;
    let stored = StoredEvent {
        position,
        event_id: Uuid::parse_str(&row.event_id).map_err(|e| corrupt(format!("event_id: {e}")))?,
        aggregate_type: row.aggregate_type,
        aggregate_id: row.aggregate_id,
        sequence: row.sequence,
        event_type: row.event_type,
        event_version: row.event_version,
        payload: serde_json::Value::Null,
        actor: row
            .actor
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(format!("actor: {e}")))?,
        recorded_at: chrono::DateTime::parse_from_rfc3339(recorded_at)
            .map_err(|e| corrupt(format!("recorded_at {recorded_at:?}: {e}")))?
            .with_timezone(&chrono::Utc),
        idempotency_key: row.idempotency_key,
    };
    Ok(Read { stored, event })
}
