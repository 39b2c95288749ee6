//! SQL written once for both backends, for the tables beside the log and (through
//! `projections`' transaction) the read models: every statement uses the
//! dialect SQLite and Postgres share — `$1`… placeholders (sqlx binds `$N` by its number on
//! SQLite too), TEXT ids, BIGINT epoch times, `ON CONFLICT`, `RETURNING` — and runs on whichever
//! pool the store has. A statement that must differ between the backends is written twice,
//! side by side, in the module of its table, matching on [`Backend`].

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::FromRow;
use uuid::Uuid;

use crate::error::StoreError;
use crate::log::Backend;
use crate::sqlite::readers;

/// A bound value: the column types the tables beside the log and the read models use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(Option<String>),
    Int(Option<i64>),
    /// An `INTEGER` column (4 bytes on Postgres), as an HTTP status.
    Int32(i32),
    Bytes(Vec<u8>),
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

impl From<Option<&str>> for Param {
    fn from(value: Option<&str>) -> Self {
        Param::Text(value.map(str::to_owned))
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

impl From<i32> for Param {
    fn from(value: i32) -> Self {
        Param::Int32(value)
    }
}

impl From<&[u8]> for Param {
    fn from(value: &[u8]) -> Self {
        Param::Bytes(value.to_vec())
    }
}

/// `params![a, b]` is `&[Param::from(a), Param::from(b)]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::dialect::Param::from($value)),*][..]
    };
}
pub(crate) use params;

/// Binds every [`Param`] of `$params` to the sqlx query `$query`, in order.
#[macro_export]
macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                $crate::dialect::Param::Text(text) => query.bind(text.clone()),
                $crate::dialect::Param::Int(int) => query.bind(*int),
                $crate::dialect::Param::Int32(int) => query.bind(*int),
                $crate::dialect::Param::Bytes(bytes) => query.bind(bytes.clone()),
            };
        }
        query
    }};
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(text) => text.to_sql(),
            Param::Int(int) => int.to_sql(),
            Param::Int32(int) => int.to_sql(),
            Param::Bytes(bytes) => bytes.to_sql(),
        }
    }
}

/// A row both backends (and SQLite's readers) can decode: a tuple of columns, in order.
pub trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + FromDirectRow + Send + Unpin
{
}

impl<T> Row for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + FromDirectRow + Send + Unpin
{
}

/// A row as SQLite's readers (`sqlite::readers`) and a rebuild's own connection read it,
/// through rusqlite: a tuple of columns, in order.
pub trait FromDirectRow: Sized {
    fn from_direct(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

macro_rules! tuple_from_direct_row {
    ($($index:tt $column:ident),+) => {
        impl<$($column: rusqlite::types::FromSql),+> FromDirectRow for ($($column,)+) {
            fn from_direct(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $column>($index)?,)+))
            }
        }
    };
}

tuple_from_direct_row!(0 A);
tuple_from_direct_row!(0 A, 1 B);
tuple_from_direct_row!(0 A, 1 B, 2 C);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L, 12 M);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L, 12 M, 13 N);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L, 12 M, 13 N, 14 O);
tuple_from_direct_row!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H, 8 I, 9 J, 10 K, 11 L, 12 M, 13 N, 14 O, 15 P);

/// `FromDirectRow` for a struct that derives `sqlx::FromRow`, by the same column names:
/// `from_direct_row!(Hit { id, body })`.
#[macro_export]
macro_rules! from_direct_row {
    ($row:ident { $($field:ident),+ $(,)? }) => {
        impl $crate::dialect::FromDirectRow for $row {
            fn from_direct(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok($row {
                    $($field: row.get(stringify!($field))?,)+
                })
            }
        }
    };
}

/// A rusqlite error of a read as the store's.
pub(crate) fn direct_error(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// Runs one statement; the number of rows it touched.
pub(crate) async fn execute(
    backend: &Backend,
    sql: &str,
    params: &[Param],
) -> Result<u64, StoreError> {
    Ok(match backend {
        Backend::Sqlite(pool, _) => bind_all!(sqlx::query(sql), params)
            .execute(pool)
            .await?
            .rows_affected(),
        Backend::Postgres(pool) => bind_all!(sqlx::query(sql), params)
            .execute(pool)
            .await?
            .rows_affected(),
    })
}

/// Runs statements without parameters, one after another (a table's schema).
pub(crate) async fn create(backend: &Backend, schema: &[&str]) -> Result<(), StoreError> {
    for statement in schema {
        execute(backend, statement, &[]).await?;
    }
    Ok(())
}

/// The first row of a query, if there is one.
pub(crate) async fn fetch_optional<T: Row>(
    backend: &Backend,
    sql: &str,
    params: &[Param],
) -> Result<Option<T>, StoreError> {
    Ok(match backend {
        Backend::Sqlite(_, readers) if readers::reads(sql) => readers
            .read(|connection| readers::first(connection, sql, params))
            .await
            .map_err(direct_error)?,
        Backend::Sqlite(pool, _) => {
            bind_all!(sqlx::query_as::<_, T>(sql), params)
                .fetch_optional(pool)
                .await?
        }
        Backend::Postgres(pool) => {
            bind_all!(sqlx::query_as::<_, T>(sql), params)
                .fetch_optional(pool)
                .await?
        }
    })
}

/// The one row of a query (an aggregate).
pub(crate) async fn fetch_one<T: Row>(
    backend: &Backend,
    sql: &str,
    params: &[Param],
) -> Result<T, StoreError> {
    Ok(match backend {
        Backend::Sqlite(_, readers) if readers::reads(sql) => readers
            .read(|connection| readers::first(connection, sql, params))
            .await
            .map_err(direct_error)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row of {sql}")))?,
        Backend::Sqlite(pool, _) => {
            bind_all!(sqlx::query_as::<_, T>(sql), params)
                .fetch_one(pool)
                .await?
        }
        Backend::Postgres(pool) => {
            bind_all!(sqlx::query_as::<_, T>(sql), params)
                .fetch_one(pool)
                .await?
        }
    })
}

/// Every row of a query, in its order.
pub(crate) async fn fetch_all<T: Row>(
    backend: &Backend,
    sql: &str,
    params: &[Param],
) -> Result<Vec<T>, StoreError> {
    Ok(match backend {
        Backend::Sqlite(_, readers) if readers::reads(sql) => readers
            .read(|connection| readers::all(connection, sql, params))
            .await
            .map_err(direct_error)?,
        Backend::Sqlite(pool, _) => {
            bind_all!(sqlx::query_as::<_, T>(sql), params)
                .fetch_all(pool)
                .await?
        }
        Backend::Postgres(pool) => {
            bind_all!(sqlx::query_as::<_, T>(sql), params)
                .fetch_all(pool)
                .await?
        }
    })
}
