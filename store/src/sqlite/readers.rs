//! Reads on SQLite without a thread hop: rusqlite connections of their own, used in the
//! calling thread. Through sqlx's pool a read was a round trip to its connection's worker
//! thread, plus a ping of that thread when the pool handed the connection out and two more
//! when it took it back (`after_release`, then sqlx's own): a profile of `jono serve` under
//! 32 writers spent about a quarter of its samples in those threads' wake-ups
//! (BENCHMARKS.md), while a read by an index of pages in SQLite's cache takes microseconds.
//!
//! Every read through [`Readers`] is bounded — by a key or a `LIMIT` — which is what makes it
//! fit to run in a runtime thread; a read that may scan (a list, a search) takes
//! [`Readers::read_blocking`] instead. The connections are opened `query_only` and without a
//! busy handler (it would sleep in the runtime's thread): a read that meets a lock — in WAL
//! mode only while the file recovers its log or a checkpoint truncates it — waits here, out of
//! the thread, and tries again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, Statement};

use crate::dialect::{FromDirectRow, Param};

/// How long a read waits for a lock, as the pools' busy timeout does.
const BUSY: Duration = Duration::from_secs(5);
/// Idle connections kept for the next reads; more are opened when more read at once, and
/// closed after.
const KEPT: usize = 16;
/// Prepared statements each connection keeps (rusqlite's default is 16; a request's reads
/// name more than that).
const STATEMENTS: usize = 128;

/// Connections that read one SQLite file (with another attached as `rm`, as the pool of reads
/// has it). Cheap to clone.
#[derive(Clone)]
pub struct Readers {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    attach: Option<PathBuf>,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("path", &self.inner.path)
            .field("attach", &self.inner.attach)
            .finish()
    }
}

impl Readers {
    /// Readers of `path`, with `attach` attached as `rm` if given. Opens nothing yet.
    pub(crate) fn new(path: PathBuf, attach: Option<PathBuf>) -> Readers {
        Readers {
            inner: Arc::new(Inner {
                path,
                attach,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Runs `read` on a connection in this thread; on a lock, waits (out of the thread) and
    /// runs it again, for up to [`BUSY`].
    pub async fn read<T>(
        &self,
        read: impl Fn(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        retrying(|| std::future::ready(self.once(&read))).await
    }

    /// As [`Readers::read`], on a blocking thread: for a read that may scan.
    pub async fn read_blocking<T: Send + 'static>(
        &self,
        read: impl Fn(&Connection) -> rusqlite::Result<T> + Send + Sync + 'static,
    ) -> rusqlite::Result<T> {
        let read = Arc::new(read);
        retrying(|| {
            let (readers, read) = (self.clone(), Arc::clone(&read));
            async move {
                tokio::task::spawn_blocking(move || readers.once(&*read))
                    .await
                    .unwrap_or_else(|error| {
                        Err(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                            Some(format!("a reading thread ended: {error}")),
                        ))
                    })
            }
        })
        .await
    }

    fn once<T>(&self, read: &impl Fn(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let connection = self.take()?;
        let done = read(&connection);
        // A connection a failure left inside a transaction is not used again.
        if connection.is_autocommit() {
            let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < KEPT {
                idle.push(connection);
            }
        }
        done
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let kept = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        match kept {
            Some(connection) => Ok(connection),
            None => self.open(),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::ZERO)?;
        connection.set_prepared_statement_cache_capacity(STATEMENTS);
        if let Some(attach) = &self.inner.attach {
            connection.execute(
                "ATTACH DATABASE ?1 AS rm",
                [attach.to_string_lossy().as_ref()],
            )?;
        }
        connection.execute_batch("PRAGMA query_only = ON")?;
        Ok(connection)
    }
}

/// Runs `attempt` until it is not refused for a lock, pausing between tries (1 ms, doubling to
/// 50 ms), for up to [`BUSY`].
async fn retrying<T, F, Fut>(mut attempt: F) -> rusqlite::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = rusqlite::Result<T>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match attempt().await {
            Err(error) if busy(&error) && started.elapsed() < BUSY => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            done => return done,
        }
    }
}

/// Whether SQLite refused for a lock held elsewhere.
fn busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::DatabaseBusy
                || failure.code == rusqlite::ErrorCode::DatabaseLocked
    )
}

/// Whether `sql` only reads — it begins with `SELECT` — and so may run on a reader. Anything
/// else (`DELETE … RETURNING`, a `WITH` that may write) goes through the pool; a reader's
/// connection is `query_only`, so a write sent to one fails instead of landing.
pub fn reads(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|word| word.eq_ignore_ascii_case("select"))
}

/// Binds `params` to `statement`: `$N` (or `?N`) takes the Nth, as sqlx binds them on SQLite,
/// wherever it appears and however often; a bare `?` takes the next in order.
pub fn bind(statement: &mut Statement<'_>, params: &[Param]) -> rusqlite::Result<()> {
    for index in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$').or_else(|| name.strip_prefix('?')))
            .and_then(|number| number.parse::<usize>().ok())
            .unwrap_or(index);
        let param = number
            .checked_sub(1)
            .and_then(|at| params.get(at))
            .ok_or(rusqlite::Error::InvalidParameterCount(number, params.len()))?;
        statement.raw_bind_parameter(index, param)?;
    }
    Ok(())
}

/// The first row of `sql`, if any.
pub fn first<T: FromDirectRow>(
    connection: &Connection,
    sql: &str,
    params: &[Param],
) -> rusqlite::Result<Option<T>> {
    Ok(rows(connection, sql, params, 1)?.pop())
}

/// Every row of `sql`, in its order.
pub fn all<T: FromDirectRow>(
    connection: &Connection,
    sql: &str,
    params: &[Param],
) -> rusqlite::Result<Vec<T>> {
    rows(connection, sql, params, usize::MAX)
}

/// Up to `limit` rows of `sql`.
fn rows<T: FromDirectRow>(
    connection: &Connection,
    sql: &str,
    params: &[Param],
    limit: usize,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = connection.prepare_cached(sql)?;
    bind(&mut statement, params)?;
    let mut rows = statement.raw_query();
    let mut read = Vec::new();
    while read.len() < limit {
        match rows.next()? {
            Some(row) => read.push(T::from_direct(row)?),
            None => break,
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_bind_by_their_number_wherever_they_appear() {
        let connection = Connection::open_in_memory().unwrap();
        let mut statement = connection
            .prepare("SELECT $2 || '-' || $1 || '-' || $2")
            .unwrap();
        bind(&mut statement, &[Param::from("a"), Param::from("b")]).unwrap();
        let mut rows = statement.raw_query();
        let row = rows.next().unwrap().unwrap();
        assert_eq!(row.get::<_, String>(0).unwrap(), "b-a-b");
    }

    #[test]
    fn only_a_select_is_a_read() {
        assert!(reads("  select 1"));
        assert!(reads("SELECT key FROM t"));
        assert!(!reads("DELETE FROM t RETURNING key"));
        assert!(!reads(
            "WITH gone AS (DELETE FROM t RETURNING key) SELECT key FROM gone"
        ));
        assert!(!reads("SEL"));
    }

    #[test]
    fn a_missing_parameter_is_an_error_not_a_null() {
        let connection = Connection::open_in_memory().unwrap();
        let mut statement = connection.prepare("SELECT $1, $2").unwrap();
        assert!(bind(&mut statement, &[Param::from("a")]).is_err());
    }
}
