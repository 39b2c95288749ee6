//! The projector runtime: exactly once across a crash between rows and checkpoint, a failing
//! event that stops its projector (and nothing else), and a rebuild while the live projector
//! runs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::Event;
use projections::database::Tx;
use projections::params;
use projections::runtime::{self, Options, Projection, ProjectionError, ProjectorState, Table};
use serde_json::json;
use store::event::StoredEvent;
use store::log::{Backend, EventStore};
use uuid::Uuid;

use crate::common::{dump, last_committed, Running, TestDb, World};
use crate::on_both_backends;
use crate::reads::{join, org};

/// Counts the events it applies: a second application of any event would show.
struct Counter {
    /// Fail on every event of this type while set.
    fail_on: Option<(&'static str, Arc<AtomicBool>)>,
}

const COUNTER_TABLES: &[Table] = &[Table {
    name: "rm_test_counter",
    columns: "id TEXT PRIMARY KEY, n BIGINT NOT NULL, last BIGINT NOT NULL",
    indexes: &[],
    full_text: None,
}];

#[async_trait]
impl Projection for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [Table] {
        COUNTER_TABLES
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        event: &StoredEvent,
        _decoded: &Event,
    ) -> Result<(), ProjectionError> {
        if let Some((event_type, failing)) = &self.fail_on {
            if event.event_type == *event_type && failing.load(Ordering::SeqCst) {
                return Err(ProjectionError::Invalid(format!(
                    "cannot count a {event_type}"
                )));
            }
        }
        tx.execute(
            "INSERT INTO rm_test_counter{s} (id, n, last) VALUES ('all', 1, $1)
             ON CONFLICT (id) DO UPDATE SET n = rm_test_counter{s}.n + 1, last = excluded.last",
            params![event.position],
        )
        .await?;
        Ok(())
    }
}

fn counter() -> Arc<dyn Projection> {
    Arc::new(Counter { fail_on: None })
}

async fn count(store: &EventStore) -> (i64, i64) {
    let row: Option<(i64, i64)> = projections::database::fetch_optional(
        store.backend(),
        "SELECT n, last FROM rm_test_counter WHERE id = 'all'",
        &[],
    )
    .await
    .unwrap();
    row.unwrap_or((0, 0))
}

/// `n` customers join one queue (each join is two events with its conversation's start).
async fn history(world: &World, n: usize) -> Uuid {
    let org = org(world, &format!("o{}", Uuid::new_v4().simple())).await;
    for _ in 0..n {
        join(world, org.queue, json!({})).await;
    }
    org.queue
}

async fn events_in_log(store: &EventStore) -> i64 {
    let mut total = 0;
    let mut after = 0;
    loop {
        let batch = store.read_after(after, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        total += batch.len() as i64;
    }
    total
}

async fn a_crash_between_rows_and_checkpoint_applies_nothing_twice(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    history(&world, 10).await;
    let total = events_in_log(&store).await;

    // Batches of 4; the third batch is interrupted after its rows, before its checkpoint.
    let batches = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&batches);
    let options = Options {
        batch: 4,
        crash: Some(Arc::new(move |_name: &str, _position: i64| {
            if seen.fetch_add(1, Ordering::SeqCst) == 2 {
                Err("crash".to_owned())
            } else {
                Ok(())
            }
        })),
        exclusive: false,
    };
    let crashed = Running::start(&store, vec![counter()], options);
    let stopped = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let state = crashed.projectors.statuses.snapshot()["counter"].clone();
            if matches!(state, ProjectorState::Stopped { .. }) {
                break state;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let state = stopped.expect("the projector stops at the crash point");
    let at = state.position().unwrap();
    assert!(matches!(state, ProjectorState::Stopped { .. }));
    assert_eq!(
        count(&store).await,
        (8, at),
        "two whole batches, nothing of the third"
    );
    assert_eq!(
        runtime::checkpoint(&store, "counter")
            .await
            .unwrap()
            .unwrap()
            .0,
        at
    );
    crashed.stop().await;

    // Restarted: it resumes after its checkpoint, and every event counts exactly once.
    let running = Running::start(&store, vec![counter()], Options::default());
    running.caught_up(&store).await;
    let (n, last) = count(&store).await;
    assert_eq!(n, total);
    assert_eq!(last, last_committed(&store).await);
    running.stop().await;
}

async fn a_failing_event_stops_its_projector_there_and_skips_nothing(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let failing = Arc::new(AtomicBool::new(true));
    let picky: Arc<dyn Projection> = Arc::new(Counter {
        fail_on: Some(("CustomerJoinedQueue", Arc::clone(&failing))),
    });
    let org = org(&world, "f").await;
    let before = events_in_log(&store).await;
    join(&world, org.queue, json!({})).await;
    join(&world, org.queue, json!({})).await;
    let failed_at: i64 = {
        let events = store.read_after(0, 1000).await.unwrap();
        events
            .iter()
            .find(|e| e.event_type == "CustomerJoinedQueue")
            .unwrap()
            .position
    };

    let mut projections = projections::all();
    projections.push(picky);
    let running = Running::start(&store, projections, Options::default());
    let head = last_committed(&store).await;
    let reason = running
        .projectors
        .statuses
        .wait_for(head, Duration::from_millis(1500))
        .await
        .expect_err("a failed projector is not caught up");
    assert!(reason.contains("counter failed at position"), "{reason}");
    let applied = match running.projectors.statuses.snapshot()["counter"].clone() {
        ProjectorState::Failed {
            position,
            failed_at: at,
            error,
        } => {
            assert_eq!(at, failed_at);
            assert!(position < failed_at);
            assert!(error.contains("cannot count"), "{error}");
            position
        }
        other => panic!("expected a failure, got {other:?}"),
    };
    // A read that needs no more than what the failed projector applied has it: it does not
    // wait for the failure to clear (without `has_applied` this waits out the 20 s and fails).
    running
        .projectors
        .statuses
        .wait_for(applied, Duration::from_secs(20))
        .await
        .expect("what the failed projector applied is there to read");
    assert_eq!(
        running.projectors.statuses.reached(),
        applied,
        "the read models have reached what the failed one applied"
    );
    // Everything before the failing event is applied, nothing after it.
    assert_eq!(count(&store).await.0, before);
    // The other projectors go on.
    assert_eq!(
        projections::queues::read::queue(store.backend(), org.queue)
            .await
            .unwrap()
            .unwrap()
            .waiting,
        2
    );

    // Once the event can be applied, the projector takes it up where it stopped.
    failing.store(false, Ordering::SeqCst);
    running.caught_up(&store).await;
    assert_eq!(count(&store).await.0, events_in_log(&store).await);
    running.stop().await;
}

async fn a_rebuild_while_the_live_projector_runs_swaps_in_the_same_rows(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let queue = history(&world, 20).await;
    let running = Running::start(&store, vec![counter()], Options::default());
    running.caught_up(&store).await;

    // Appends go on during the rebuild; the live projector keeps up with them meanwhile.
    let writer = {
        let world = world.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                join(&world, queue, json!({})).await;
            }
        })
    };
    let options = Options {
        batch: 7,
        crash: None,
        exclusive: false,
    };
    let progress = Arc::new(AtomicUsize::new(0));
    let calls = Arc::clone(&progress);
    let at = runtime::rebuild(&store, counter().as_ref(), &options, &move |_| {
        calls.fetch_add(1, Ordering::SeqCst);
    })
    .await
    .unwrap();
    assert!(progress.load(Ordering::SeqCst) >= 1);
    assert!(at > 0);
    writer.await.unwrap();
    running.caught_up(&store).await;
    assert_eq!(count(&store).await.0, events_in_log(&store).await);
    // The fresh tables are gone; the checkpoint is the live one's.
    assert!(runtime::checkpoint(&store, "counter__rebuild")
        .await
        .unwrap()
        .is_none());

    // A second rebuild works the same (no leftover names in the way).
    runtime::rebuild(&store, counter().as_ref(), &options, &|_| {})
        .await
        .unwrap();
    running.caught_up(&store).await;
    assert_eq!(count(&store).await.0, events_in_log(&store).await);
    running.stop().await;
}

/// Every projection rebuilt together, a few positions per fill transaction (so the fill, not
/// only the swap, does the work), gives exactly the live rows; a crash in the fill leaves the
/// live tables as they were, and the next rebuild starts afresh.
async fn rebuilding_every_projection_together_gives_the_live_rows(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let running = Running::all(&store);
    history(&world, 12).await;
    running.caught_up(&store).await;
    let all = projections::all();
    let live = dump(store.backend(), &all).await;
    let together: Vec<&dyn Projection> = all.iter().map(|p| p.as_ref()).collect();

    let spans = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&spans);
    let crashing = Options {
        batch: 5,
        crash: Some(Arc::new(move |_name: &str, _position: i64| {
            // The second fill transaction's first projection, after the first committed (on
            // SQLite a transaction takes several spans): after its rows, before its checkpoint.
            if seen.fetch_add(1, Ordering::SeqCst) == all_len() {
                Err("crash".to_owned())
            } else {
                Ok(())
            }
        })),
        exclusive: false,
    };
    let crashed = runtime::rebuild_all(&store, &together, &crashing, &|_| {}).await;
    assert!(
        matches!(crashed, Err(ProjectionError::Interrupted(_))),
        "{crashed:?}"
    );
    assert_eq!(
        dump(store.backend(), &all).await,
        live,
        "the live rows stay"
    );

    let options = Options {
        batch: 5,
        crash: None,
        exclusive: false,
    };
    let at = runtime::rebuild_all(&store, &together, &options, &|_| {})
        .await
        .unwrap();
    assert_eq!(at, last_committed(&store).await);
    assert_eq!(
        dump(store.backend(), &all).await,
        live,
        "a rebuild gives the live rows"
    );
    for projection in &all {
        let name = projection.name();
        let (position, _) = runtime::checkpoint(&store, name).await.unwrap().unwrap();
        assert_eq!(position, at, "{name}");
        assert!(runtime::checkpoint(&store, &runtime::rebuild_name(name))
            .await
            .unwrap()
            .is_none());
    }

    // Exclusive (a projector group building its own empty read models at start): on SQLite
    // one fill transaction, so the checkpoints move once, each projection's hook called once;
    // on Postgres still a transaction per span.
    let commits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&commits);
    let exclusive = Options {
        batch: 5,
        crash: Some(Arc::new(move |_name: &str, _position: i64| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })),
        exclusive: true,
    };
    let again = runtime::rebuild_all(&store, &together, &exclusive, &|_| {})
        .await
        .unwrap();
    assert_eq!(again, at);
    assert_eq!(dump(store.backend(), &all).await, live);
    let hooks = commits.load(Ordering::SeqCst);
    match store.backend() {
        Backend::Sqlite(..) => assert_eq!(hooks, all_len(), "one fill transaction"),
        Backend::Postgres(_) => assert!(hooks > all_len(), "a transaction per span: {hooks}"),
    }
    running.stop().await;
}

fn all_len() -> usize {
    projections::all().len()
}

/// During a rolling upgrade an older node meets events a newer one wrote: every projector (and
/// a rebuild) skips an event of a type this version does not know and goes on, instead of
/// stalling there (issue 14).
async fn an_event_of_an_unknown_type_is_skipped_not_stalled_on(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let org = org(&world, "u").await;
    join(&world, org.queue, json!({})).await;
    let stream = Uuid::new_v4().to_string();
    store
        .append(store::log::AppendRequest {
            events: vec![store::event::NewEvent {
                event_id: Uuid::new_v4(),
                aggregate_type: "Queue".into(),
                aggregate_id: stream.clone(),
                sequence: 1,
                event_type: "CustomerTeleported".into(),
                event_version: "1".into(),
                payload: json!({"type": "CustomerTeleported", "queue_id": stream}),
                actor: None,
            }],
            expected: vec![("Queue".into(), stream, 0)],
            idempotency: None,
        })
        .await
        .unwrap();
    join(&world, org.queue, json!({})).await;

    let mut projections = projections::all();
    projections.push(counter());
    let running = Running::start(&store, projections, Options::default());
    running.caught_up(&store).await;
    assert!(
        running
            .projectors
            .statuses
            .snapshot()
            .values()
            .all(|state| matches!(state, ProjectorState::Running { .. })),
        "{:?}",
        running.projectors.statuses.snapshot()
    );
    // The join after the unknown event is there; the unknown one was not counted.
    let waiting = projections::queues::read::queue(store.backend(), org.queue)
        .await
        .unwrap()
        .unwrap()
        .waiting;
    assert_eq!(waiting, 2);
    assert_eq!(count(&store).await.0, events_in_log(&store).await - 1);
    assert_eq!(count(&store).await.1, last_committed(&store).await);

    // A rebuild skips it the same way.
    runtime::rebuild(&store, counter().as_ref(), &Options::default(), &|_| {})
        .await
        .unwrap();
    running.caught_up(&store).await;
    assert_eq!(count(&store).await.0, events_in_log(&store).await - 1);
    running.stop().await;
}

on_both_backends!(
    an_event_of_an_unknown_type_is_skipped_not_stalled_on,
    rebuilding_every_projection_together_gives_the_live_rows,
    a_crash_between_rows_and_checkpoint_applies_nothing_twice,
    a_failing_event_stops_its_projector_there_and_skips_nothing,
    a_rebuild_while_the_live_projector_runs_swaps_in_the_same_rows,
    while_its_database_is_unavailable_a_projector_tries_again_every_few_seconds,
);

/// Its database unavailable for a while (here its first attempts meet a pool that times out;
/// in `tests/tests/full_disk.rs` a full disk), how often a projector tries again.
struct Unreachable {
    /// The attempts that meet an unavailable database; after them, it applies.
    failing_attempts: usize,
    attempts: std::sync::Mutex<Vec<std::time::Instant>>,
}

#[async_trait]
impl Projection for Unreachable {
    fn name(&self) -> &'static str {
        "unreachable"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [Table] {
        &[]
    }

    async fn apply(
        &self,
        _tx: &mut Tx,
        _event: &StoredEvent,
        _decoded: &Event,
    ) -> Result<(), ProjectionError> {
        let mut attempts = self.attempts.lock().unwrap();
        if attempts.len() < self.failing_attempts {
            attempts.push(std::time::Instant::now());
            return Err(ProjectionError::Sql(sqlx::Error::PoolTimedOut));
        }
        Ok(())
    }
}

/// While the database cannot be used, a projector tries again at most
/// `UNAVAILABLE_BACKOFF` (2 s) apart — not after a pause that doubled up to 30 s while the disk
/// was full, so that once space was freed the read models stayed behind for up to half a
/// minute (the full-disk test failed so, about one run in three). Four attempts after the
/// first would be 1, 2, 4 and 8 s apart with the doubling; they must all be under 4 s.
async fn while_its_database_is_unavailable_a_projector_tries_again_every_few_seconds(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    history(&world, 1).await;
    let unreachable = Arc::new(Unreachable {
        failing_attempts: 5,
        attempts: std::sync::Mutex::new(Vec::new()),
    });
    let projection: Arc<dyn Projection> = unreachable.clone();
    let running = Running::start(&store, vec![projection], Options::default());
    running.caught_up(&store).await;
    let attempts = unreachable.attempts.lock().unwrap().clone();
    assert_eq!(
        attempts.len(),
        5,
        "it met the unavailable database five times"
    );
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|gap| *gap < Duration::from_secs(4)),
        "the attempts came {gaps:?} apart"
    );
    running.stop().await;
}
