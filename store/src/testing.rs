//! A fresh store per test on each backend, for the test suites of `store` and of the crates
//! above it (feature `testing`): one copy of the throwaway Postgres schema and of the macro that
//! runs a test on both backends.

#![allow(clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use uuid::Uuid;

use crate::log::EventStore;

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
        let url = fresh_schema(&base).await;
        Some(TestDb::Postgres {
            url,
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
    pub async fn neighbour(&self) -> Option<EventStore> {
        let TestDb::Postgres { url, .. } = self else {
            return None;
        };
        let (base, _) = url.split_once("options=").expect("a test URL");
        let url = fresh_schema(base.trim_end_matches(['?', '&'])).await;
        Some(EventStore::open_postgres(&url).await.expect("open"))
    }

    pub fn data_dir(&self) -> Option<PathBuf> {
        match self {
            TestDb::Sqlite(dir) => Some(dir.path().to_path_buf()),
            TestDb::Postgres { .. } => None,
        }
    }
}

/// Creates a schema of its own in the database at `base`; the URL whose connections use it.
async fn fresh_schema(base: &str) -> String {
    let schema = format!("jono_test_{}", Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(base)
        .await
        .expect("connect to JONO_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .expect("create a test schema");
    pool.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-csearch_path%3D{schema}")
}

/// Runs an `async fn(TestDb)` once per backend, as `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(::store::testing::TestDb::sqlite()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = ::store::testing::TestDb::postgres().await {
                    super::$name(db).await
                }
            }
        }
    )*};
}

/// Runs one statement on `backend`, for a test that must break the store on purpose (a table
/// renamed away and back).
pub async fn execute(
    backend: &crate::log::Backend,
    statement: &str,
) -> Result<u64, crate::error::StoreError> {
    crate::dialect::execute(backend, statement, &[]).await
}
