//! A fresh store per test, on each backend.

use std::path::PathBuf;

use serde_json::json;
use store::{AppendRequest, EventStore, NewEvent};
use uuid::Uuid;

/// Where one test's log lives; `open` may be called again to reopen it.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres {
        url: String,
        _serial: tokio::sync::MutexGuard<'static, ()>,
    },
}

/// The Postgres runs take turns: a reader's snapshot horizon spans the whole cluster, so one
/// test's open transaction would hide another test's fresh commits for a moment.
static POSTGRES_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl TestDb {
    pub fn sqlite() -> TestDb {
        TestDb::Sqlite(tempfile::tempdir().expect("a temp dir"))
    }

    /// A fresh schema in the test database, or `None` (with a note) when there is none to use
    /// outside CI.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(base) = std::env::var("JONO_TEST_DATABASE_URL") else {
            if std::env::var_os("CI").is_some() {
                panic!("CI is set but JONO_TEST_DATABASE_URL is not: the Postgres tests must run in CI");
            }
            eprintln!("skipping the Postgres run: set JONO_TEST_DATABASE_URL (see scripts/pg.sh)");
            return None;
        };
        let serial = POSTGRES_TURN.lock().await;
        let schema = format!("jono_test_{}", Uuid::new_v4().simple());
        let pool = sqlx::PgPool::connect(&base)
            .await
            .expect("connect to JONO_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .expect("create a test schema");
        pool.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(TestDb::Postgres {
            url: format!("{base}{separator}options=-csearch_path%3D{schema}"),
            _serial: serial,
        })
    }

    pub async fn open(&self) -> EventStore {
        match self {
            TestDb::Sqlite(dir) => EventStore::open_sqlite(dir.path()).await,
            TestDb::Postgres { url, .. } => EventStore::open_postgres(url).await,
        }
        .expect("open the store")
    }

    /// Another fresh schema of the same Postgres database (another deployment beside this one).
    #[allow(dead_code)]
    pub async fn neighbour(&self) -> Option<EventStore> {
        let TestDb::Postgres { url, .. } = self else {
            return None;
        };
        let (base, _) = url.split_once("options=").expect("a test URL");
        let schema = format!("jono_test_{}", Uuid::new_v4().simple());
        let pool = sqlx::PgPool::connect(base.trim_end_matches(['?', '&']))
            .await
            .expect("connect");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .expect("create a schema");
        pool.close().await;
        let url = format!("{base}options=-csearch_path%3D{schema}");
        Some(EventStore::open_postgres(&url).await.expect("open"))
    }

    #[allow(dead_code)]
    pub fn data_dir(&self) -> Option<PathBuf> {
        match self {
            TestDb::Sqlite(dir) => Some(dir.path().to_path_buf()),
            TestDb::Postgres { .. } => None,
        }
    }
}

/// Runs an `async fn(TestDb)` once per backend, as `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::TestDb::sqlite()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::common::TestDb::postgres().await {
                    super::$name(db).await
                }
            }
        }
    )*};
}

pub fn event(aggregate_type: &str, aggregate_id: &str, sequence: i64, n: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        sequence,
        event_type: "ThingHappened".into(),
        event_version: "1".into(),
        payload: json!({"type": "ThingHappened", "n": n, "text": "héllo"}),
        actor: Some(json!({"agent_id": "a1"})),
    }
}

/// One request appending `count` events to a stream at `expected`.
pub fn append_to(aggregate_id: &str, expected: i64, count: i64) -> AppendRequest {
    AppendRequest {
        events: (1..=count)
            .map(|i| event("thing", aggregate_id, expected + i, i))
            .collect(),
        expected: vec![("thing".into(), aggregate_id.into(), expected)],
        idempotency: None,
    }
}
