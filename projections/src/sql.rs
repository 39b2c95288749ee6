//! SQL written once for both backends. Every statement uses the dialect SQLite and Postgres
//! share: `$1`… placeholders in order of first appearance, TEXT ids and JSON, BIGINT numbers,
//! flags and times (microseconds since the epoch). Read-model tables are named `rm_…{s}`: `{s}`
//! is empty for the live tables and `__rebuild` while a rebuild fills fresh ones.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Postgres, Sqlite, Transaction};
use store::log::Backend;
use uuid::Uuid;

/// A bound value: the two column types every read model uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(Some(value.to_owned()))
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(Some(value))
    }
}

impl From<&String> for Param {
    fn from(value: &String) -> Self {
        Param::Text(Some(value.clone()))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Param::Text(value)
    }
}

impl From<Uuid> for Param {
    fn from(value: Uuid) -> Self {
        Param::Text(Some(value.to_string()))
    }
}

impl From<&Uuid> for Param {
    fn from(value: &Uuid) -> Self {
        Param::Text(Some(value.to_string()))
    }
}

impl From<Option<Uuid>> for Param {
    fn from(value: Option<Uuid>) -> Self {
        Param::Text(value.map(|id| id.to_string()))
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(Some(value))
    }
}

impl From<Option<i64>> for Param {
    fn from(value: Option<i64>) -> Self {
        Param::Int(value)
    }
}

impl From<u64> for Param {
    fn from(value: u64) -> Self {
        Param::Int(Some(i64::try_from(value).unwrap_or(i64::MAX)))
    }
}

impl From<bool> for Param {
    fn from(value: bool) -> Self {
        Param::Int(Some(i64::from(value)))
    }
}

/// `params![a, b]` is `&[Param::from(a), Param::from(b)]`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::sql::Param::from($value)),*][..]
    };
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Text(text) => query.bind(text.clone()),
                Param::Int(int) => query.bind(*int),
            };
        }
        query
    }};
}

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
}

impl Tx {
    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so it waits for other writers instead of failing to upgrade a read.
    pub async fn begin(backend: &Backend, suffix: &'static str) -> Result<Tx, sqlx::Error> {
        let inner = match backend {
            Backend::Sqlite(pool) => Inner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres(pool) => Inner::Postgres(pool.begin().await?),
        };
        Ok(Tx { inner, suffix })
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
        })
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
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
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
        }
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.inner {
            Inner::Sqlite(tx) => tx.commit().await,
            Inner::Postgres(tx) => tx.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.inner {
            Inner::Sqlite(tx) => tx.rollback().await,
            Inner::Postgres(tx) => tx.rollback().await,
        }
    }
}

/// Every row of a query against the live tables, as `T`.
pub async fn fetch_all<T>(
    backend: &Backend,
    sql: &str,
    params: &[Param],
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let sql = sql.replace("{s}", "");
    match backend {
        Backend::Sqlite(pool) => {
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

/// The first row of a query against the live tables, as `T`.
pub async fn fetch_optional<T>(
    backend: &Backend,
    sql: &str,
    params: &[Param],
) -> Result<Option<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let sql = sql.replace("{s}", "");
    match backend {
        Backend::Sqlite(pool) => {
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
