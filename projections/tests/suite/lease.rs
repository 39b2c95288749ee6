//! How the projectors run on Postgres. One process of a deployment runs them (the lease
//! `jono-projectors`): another one applies nothing while it does, yet waits for the shared read
//! models as that one fills them, and takes the work over when it stops. And their transactions
//! stay short, since every reader of the log waits behind the oldest one open.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::Event;
use projections::database::Tx;
use projections::params;
use projections::runtime::{self, Options, Projection, ProjectionError, Table};
use serde_json::json;
use store::event::StoredEvent;
use store::log::EventStore;
use store::testing::TestDb;

use crate::common::{Running, World};
use crate::reads::{join, org};

/// Counts the events it applies, in its table and in the process that applied them.
struct Tally {
    name: &'static str,
    tables: &'static [Table],
    applied: Arc<AtomicUsize>,
    /// How long each event takes: a little, as real read models under load, so that two
    /// groups on one database would each get some of the events.
    pause: Duration,
}

impl Tally {
    fn new(applied: &Arc<AtomicUsize>) -> Arc<Tally> {
        Arc::new(Tally {
            name: "tally",
            tables: TALLY_TABLES,
            applied: Arc::clone(applied),
            pause: Duration::from_millis(2),
        })
    }

    /// A projection of a newer release, which an older lease holder does not run.
    fn newer() -> Arc<Tally> {
        Arc::new(Tally {
            name: "newer",
            tables: NEWER_TABLES,
            applied: Arc::default(),
            pause: Duration::ZERO,
        })
    }
}

const TALLY_TABLES: &[Table] = &[Table {
    name: "rm_test_tally",
    columns: "id TEXT PRIMARY KEY, n BIGINT NOT NULL",
    indexes: &[],
    full_text: None,
}];

const NEWER_TABLES: &[Table] = &[Table {
    name: "rm_test_newer",
    columns: "id TEXT PRIMARY KEY, n BIGINT NOT NULL",
    indexes: &[],
    full_text: None,
}];

#[async_trait]
impl Projection for Tally {
    fn name(&self) -> &'static str {
        self.name
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [Table] {
        self.tables
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        _event: &StoredEvent,
        _decoded: &Event,
    ) -> Result<(), ProjectionError> {
        tokio::time::sleep(self.pause).await;
        let table = self.tables[0].name;
        tx.execute(
            &format!(
                "INSERT INTO {table}{{s}} (id, n) VALUES ('all', 1)
                 ON CONFLICT (id) DO UPDATE SET n = {table}{{s}}.n + 1"
            ),
            params![],
        )
        .await?;
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn start(store: &EventStore) -> (Running, Arc<AtomicUsize>) {
    let applied = Arc::new(AtomicUsize::new(0));
    let tally = Tally::new(&applied);
    let options = Options {
        batch: 1,
        ..Options::default()
    };
    (Running::start(store, vec![tally], options), applied)
}

async fn tallied(store: &EventStore) -> i64 {
    counted(store, "rm_test_tally").await
}

async fn counted(store: &EventStore, table: &str) -> i64 {
    let row: Option<(i64,)> = projections::database::fetch_optional(
        store.backend(),
        &format!("SELECT n FROM {table} WHERE id = 'all'"),
        &[],
    )
    .await
    .unwrap();
    row.map_or(0, |(n,)| n)
}

async fn events_in_log(store: &EventStore) -> i64 {
    let sql = "SELECT COUNT(*) FROM events";
    match store.backend() {
        store::log::Backend::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        store::log::Backend::Sqlite(pool, _) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap()
}

async fn joins(world: &World, n: usize) {
    let org = org(world, &format!("o{}", uuid::Uuid::new_v4().simple())).await;
    for _ in 0..n {
        join(world, org.queue, json!({})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_projects_the_others_wait_for_it_and_one_takes_over_when_it_stops() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.open().await;
    let world = World::new(&store);
    joins(&world, 3).await;
    let (first, by_first) = start(&store);
    first.caught_up(&store).await;
    assert!(
        by_first.load(Ordering::SeqCst) > 0,
        "the first process projects"
    );

    // A second process on the same database: it applies nothing, and its reads wait for the
    // read models the first one fills.
    let (second, by_second) = start(&store);
    joins(&world, 20).await;
    second.caught_up(&store).await;
    assert_eq!(tallied(&store).await, events_in_log(&store).await);
    first.caught_up(&store).await;
    assert_eq!(
        by_second.load(Ordering::SeqCst),
        0,
        "the second process applied events while the first held the lease"
    );

    // The first one stops: the second takes the work over.
    first.stop().await;
    joins(&world, 3).await;
    second.caught_up(&store).await;
    assert!(
        by_second.load(Ordering::SeqCst) > 0,
        "the second process took over"
    );
    assert_eq!(tallied(&store).await, events_in_log(&store).await);
    assert_eq!(
        by_first.load(Ordering::SeqCst) + by_second.load(Ordering::SeqCst),
        usize::try_from(events_in_log(&store).await).unwrap(),
        "each event applied once"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_applies_at_most_a_hundred_events_in_its_transaction() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.open().await;
    let world = World::new(&store);
    joins(&world, 150).await;
    let ends = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ends);
    let options = Options {
        batch: runtime::DEFAULT_BATCH,
        // Called as each batch moves its checkpoint: where the batch ends.
        crash: Some(Arc::new(move |_name: &str, last: i64| {
            seen.lock().unwrap().push(last);
            Ok(())
        })),
        exclusive: false,
    };
    let tally = Tally::new(&Arc::default());
    let running = Running::start(&store, vec![tally], options);
    running.caught_up(&store).await;
    running.stop().await;
    let ends = ends.lock().unwrap().clone();
    assert!(ends.len() >= 3, "over 300 events in batches: {ends:?}");
    let mut from = 0;
    for end in ends {
        // One process appended them one after another: their positions have no gaps.
        assert!(
            end - from <= i64::try_from(runtime::POSTGRES_BATCH).unwrap(),
            "a batch of {} events",
            end - from
        );
        from = end;
    }
    assert_eq!(tallied(&store).await, events_in_log(&store).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_the_lease_holder_does_not_run_is_run_beside_it() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.open().await;
    let world = World::new(&store);
    joins(&world, 3).await;
    let (older, _) = start(&store);
    older.caught_up(&store).await;

    // A node of a newer release, with one projection more, during a rolling upgrade.
    let by_newer = Arc::new(AtomicUsize::new(0));
    let tally = Tally::new(&by_newer);
    let newer = Running::start(&store, vec![tally, Tally::newer()], Options::default());
    joins(&world, 5).await;
    newer.caught_up(&store).await;
    assert_eq!(
        counted(&store, "rm_test_newer").await,
        events_in_log(&store).await
    );
    assert_eq!(
        by_newer.load(Ordering::SeqCst),
        0,
        "what the holder runs, the newer node leaves to it"
    );
    newer.stop().await;
    older.stop().await;
}
