//! SQL written once for both backends. Every statement uses the dialect SQLite and Postgres
//! share: `$1`… placeholders in order of first appearance, TEXT ids and JSON, BIGINT numbers,
//! flags and times (microseconds since the epoch). Read-model tables are named `rm_…{s}`: `{s}`
//! is empty for the live tables and `__rebuild` while a rebuild fills fresh ones.

use sqlx::{Postgres, Sqlite, Transaction};
use store::log::Backend;

/// How long [`Tx::begin_direct`] waits for another connection's write lock, as the pools'
/// busy timeout does.
pub(crate) const DIRECT_BUSY: std::time::Duration = std::time::Duration::from_secs(5);

pub use store::dialect::Param;

/// `params![a, b]` is `&[Param::from(a), Param::from(b)]`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::database::Param::from($value)),*][..]
    };
}

use store::bind_all;

/// A time as the read models store it.
pub fn micros(time: chrono::DateTime<chrono::Utc>) -> i64 {
    time.timestamp_micros()
}

/// The table suffix of fresh tables during a rebuild.
pub const REBUILD_SUFFIX: &str = "__rebuild";

/// One transaction on whichever backend the store has, writing to the live tables or, during a
/// rebuild, to the fresh ones.
pub struct Tx {
    inner: Inner,
    suffix: &'static str,
}

enum Inner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
    /// A rebuild's fill on SQLite: a connection of the rebuild's own (see
    /// `runtime::rebuild`), through rusqlite, so that each statement runs in the calling thread
    /// instead of a round trip to sqlx's worker thread; the transaction is begun and ended by
    /// hand. Dropped unfinished, the connection closes and SQLite rolls the transaction back.
    Direct(rusqlite::Connection),
}

impl Tx {
    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so it waits for other writers instead of failing to upgrade a read.
    pub async fn begin(backend: &Backend, suffix: &'static str) -> Result<Tx, sqlx::Error> {
        let inner = match backend {
            Backend::Sqlite(pool, _) => Inner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres(pool) => Inner::Postgres(pool.begin().await?),
        };
        Ok(Tx { inner, suffix })
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE`) on a connection of the caller's own (see
    /// [`Inner::Direct`]); [`Tx::commit_direct`] gives the connection back for the next one.
    ///
    /// Such a connection has no busy timeout: SQLite's busy handler would sleep in this thread,
    /// a runtime worker, and a task holding the lock could be waiting for that very thread (a
    /// rebuild's fill yields inside its transaction; tests run on one thread), so both would
    /// wait out the timeout. While another connection holds the write lock, this waits here
    /// instead, without the thread, for up to [`DIRECT_BUSY`].
    pub(crate) async fn begin_direct(
        connection: rusqlite::Connection,
        suffix: &'static str,
    ) -> Result<Tx, sqlx::Error> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match connection.execute_batch("BEGIN IMMEDIATE") {
                Ok(()) => {
                    return Ok(Tx {
                        inner: Inner::Direct(connection),
                        suffix,
                    })
                }
                Err(rusqlite::Error::SqliteFailure(failure, _))
                    if failure.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < DIRECT_BUSY =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                Err(error) => return Err(direct_error(error)),
            }
        }
    }

    /// Commits; the connection of a transaction begun by [`Tx::begin_direct`] comes back.
    pub(crate) async fn commit_direct(self) -> Result<Option<rusqlite::Connection>, sqlx::Error> {
        match self.inner {
            Inner::Direct(connection) => {
                connection.execute_batch("COMMIT").map_err(direct_error)?;
                Ok(Some(connection))
            }
            Inner::Sqlite(tx) => tx.commit().await.map(|()| None),
            Inner::Postgres(tx) => tx.commit().await.map(|()| None),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.inner, Inner::Postgres(_))
    }

    pub fn suffix(&self) -> &'static str {
        self.suffix
    }

    fn sql(&self, sql: &str) -> String {
        sql.replace("{s}", self.suffix)
    }

    /// Runs one statement; the number of rows it touched.
    pub async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, sqlx::Error> {
        let sql = self.sql(sql);
        Ok(match &mut self.inner {
            Inner::Sqlite(tx) => bind_all!(sqlx::query(&sql), params)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Inner::Postgres(tx) => bind_all!(sqlx::query(&sql), params)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Inner::Direct(connection) => {
                let mut statement = connection.prepare_cached(&sql).map_err(direct_error)?;
                let touched = statement
                    .execute(rusqlite::params_from_iter(params))
                    .map_err(direct_error)?;
                u64::try_from(touched).unwrap_or(u64::MAX)
            }
        })
    }

    /// Readies a projector's batch transaction (live or a rebuild's fill) on Postgres: its
    /// commit need not wait for the disk (read models are folds of the log: a crash takes rows
    /// and checkpoints back together), and joins are nested loops, so a run's rows joined with
    /// a table by key look each key up in its index (`crate::runs`). Given a set function's
    /// guess of 100 rows, the planner chose to hash the whole table instead, each run. On
    /// SQLite nothing.
    pub async fn ready_for_batch(&mut self) -> Result<(), sqlx::Error> {
        if self.is_postgres() {
            self.execute(
                "SELECT set_config('synchronous_commit', 'off', true),
                 set_config('enable_hashjoin', 'off', true),
                 set_config('enable_mergejoin', 'off', true)",
                &[],
            )
            .await?;
        }
        Ok(())
    }

    /// Runs one statement planned for this execution alone: on Postgres it is not kept
    /// prepared, so the planner sees the tables as they are now rather than reusing a plan made
    /// when they were small (a rebuild's fresh tables grow from nothing). For statements over a
    /// set of rows (`crate::runs`); elsewhere as [`Tx::execute`].
    pub async fn execute_planned(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<u64, sqlx::Error> {
        match &mut self.inner {
            Inner::Postgres(tx) => {
                let sql = sql.replace("{s}", self.suffix);
                Ok(bind_all!(sqlx::query(&sql).persistent(false), params)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected())
            }
            _ => self.execute(sql, params).await,
        }
    }

    /// Runs statements without parameters, one after another (DDL).
    pub async fn batch(&mut self, statements: &[String]) -> Result<(), sqlx::Error> {
        for statement in statements {
            self.execute(statement, &[]).await?;
        }
        Ok(())
    }

    /// The first row of a query, as `T`.
    pub async fn fetch_optional<T>(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Option<T>, sqlx::Error>
    where
        T: Row,
    {
        let sql = self.sql(sql);
        match &mut self.inner {
            Inner::Sqlite(tx) => {
                bind_all!(sqlx::query_as::<_, T>(&sql), params)
                    .fetch_optional(&mut **tx)
                    .await
            }
            Inner::Postgres(tx) => {
                bind_all!(sqlx::query_as::<_, T>(&sql), params)
                    .fetch_optional(&mut **tx)
                    .await
            }
            Inner::Direct(connection) => {
                let mut statement = connection.prepare_cached(&sql).map_err(direct_error)?;
                let mut rows = statement
                    .query(rusqlite::params_from_iter(params))
                    .map_err(direct_error)?;
                match rows.next().map_err(direct_error)? {
                    Some(row) => T::from_direct(row).map(Some).map_err(direct_error),
                    None => Ok(None),
                }
            }
        }
    }

    /// Every row of a query, as `T`.
    pub async fn fetch_all<T>(&mut self, sql: &str, params: &[Param]) -> Result<Vec<T>, sqlx::Error>
    where
        T: Row,
    {
        let sql = self.sql(sql);
        match &mut self.inner {
            Inner::Sqlite(tx) => {
                bind_all!(sqlx::query_as::<_, T>(&sql), params)
                    .fetch_all(&mut **tx)
                    .await
            }
            Inner::Postgres(tx) => {
                bind_all!(sqlx::query_as::<_, T>(&sql), params)
                    .fetch_all(&mut **tx)
                    .await
            }
            Inner::Direct(connection) => {
                let mut statement = connection.prepare_cached(&sql).map_err(direct_error)?;
                let rows = statement
                    .query_map(rusqlite::params_from_iter(params), |row| {
                        T::from_direct(row)
                    })
                    .map_err(direct_error)?;
                rows.collect::<rusqlite::Result<Vec<T>>>()
                    .map_err(direct_error)
            }
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.commit_direct().await.map(|_| ())
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.inner {
            Inner::Sqlite(tx) => tx.rollback().await,
            Inner::Postgres(tx) => tx.rollback().await,
            Inner::Direct(connection) => connection.execute_batch("ROLLBACK").map_err(direct_error),
        }
    }
}

pub use store::dialect::{FromDirectRow, Row};

/// A rusqlite error as sqlx's, the error every `Tx` method gives: a database error, so that a
/// constraint violation still reads as one.
fn direct_error(error: rusqlite::Error) -> sqlx::Error {
    let code = match &error {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.extended_code.to_string()),
        _ => None,
    };
    sqlx::Error::Database(Box::new(DirectError {
        message: error.to_string(),
        code,
        unique: matches!(
            &error,
            rusqlite::Error::SqliteFailure(failure, _)
                if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        ),
    }))
}

#[derive(Debug)]
struct DirectError {
    message: String,
    /// SQLite's extended result code, as sqlx's own SQLite errors give it.
    code: Option<String>,
    unique: bool,
}

impl std::fmt::Display for DirectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DirectError {}

impl sqlx::error::DatabaseError for DirectError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.code.as_deref().map(std::borrow::Cow::Borrowed)
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        if self.unique {
            sqlx::error::ErrorKind::UniqueViolation
        } else {
            sqlx::error::ErrorKind::Other
        }
    }
}

/// Every row of a query against the live tables, as `T`. On SQLite a list may scan (a search,
/// an export), so it is read on a blocking thread.
pub async fn fetch_all<T>(
    backend: &Backend,
    sql: &str,
    params: &[Param],
) -> Result<Vec<T>, sqlx::Error>
where
    T: Row + 'static,
{
    let sql = sql.replace("{s}", "");
    match backend {
        Backend::Sqlite(_, readers) if store::sqlite_readers::reads(&sql) => {
            let params = params.to_vec();
            readers
                .read_blocking(move |connection| {
                    store::sqlite_readers::all(connection, &sql, &params)
                })
                .await
                .map_err(direct_error)
        }
        Backend::Sqlite(pool, _) => {
            bind_all!(sqlx::query_as::<_, T>(&sql), params)
                .fetch_all(pool)
                .await
        }
        Backend::Postgres(pool) => {
            bind_all!(sqlx::query_as::<_, T>(&sql), params)
                .fetch_all(pool)
                .await
        }
    }
}

/// The few rows of a query by a key (a conversation's tags, an agent's memberships), as `T`:
/// on SQLite, read in this thread, as [`fetch_optional`] reads; [`fetch_all`] is for a list
/// that may scan.
pub async fn fetch_few<T>(
    backend: &Backend,
    sql: &str,
    params: &[Param],
) -> Result<Vec<T>, sqlx::Error>
where
    T: Row + 'static,
{
    match backend {
        Backend::Sqlite(_, readers) if store::sqlite_readers::reads(sql) => {
            let sql = sql.replace("{s}", "");
            readers
                .read(|connection| store::sqlite_readers::all(connection, &sql, params))
                .await
                .map_err(direct_error)
        }
        _ => fetch_all(backend, sql, params).await,
    }
}

/// The first row of a query against the live tables, as `T`: on SQLite, read in this thread.
pub async fn fetch_optional<T>(
    backend: &Backend,
    sql: &str,
    params: &[Param],
) -> Result<Option<T>, sqlx::Error>
where
    T: Row,
{
    let sql = sql.replace("{s}", "");
    match backend {
        Backend::Sqlite(_, readers) if store::sqlite_readers::reads(&sql) => readers
            .read(|connection| store::sqlite_readers::first(connection, &sql, params))
            .await
            .map_err(direct_error),
        Backend::Sqlite(pool, _) => {
            bind_all!(sqlx::query_as::<_, T>(&sql), params)
                .fetch_optional(pool)
                .await
        }
        Backend::Postgres(pool) => {
            bind_all!(sqlx::query_as::<_, T>(&sql), params)
                .fetch_optional(pool)
                .await
        }
    }
}
