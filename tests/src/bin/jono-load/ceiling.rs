//! The ceilings Jono is measured against: how many transactions a naïve server that commits one
//! transaction per message could make on the same disk (SQLite, WAL, `synchronous=FULL`) or on
//! the same Postgres — single-row transactions, and rows in 32-row transactions, from as many
//! concurrent writers as Jono gets clients.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;

use crate::figures::Samples;
use crate::Fallible;

/// An event-sized row: about the size of a stored `MessageSent`.
const PAYLOAD: &str = r#"{"type":"MessageSent","conversation_id":"6f1c2b9e-3f57-4c1e-9a43-0d2f6b7c8e91","organization_id":"0b7e3a52-8c4d-4f1a-b2e6-9d3c5a7f1e20","message_id":"a3d5f7b9-1c2e-4a6b-8d0f-2e4c6a8b0d1f","seq":1,"author":{"kind":"agent","id":"5e7a9c1b-3d5f-4b7a-9c1e-3f5a7c9e1b3d","name":"Load"},"text":"a message of a load run","attachments":[]}"#;

/// What one ceiling run measured.
pub struct Ceiling {
    pub transactions: u64,
    pub rows_per_transaction: u64,
    pub elapsed: Duration,
    /// Each transaction's time, from the writer's wish to commit to the commit's return.
    pub samples: Samples,
}

impl Ceiling {
    pub fn transactions_per_second(&self) -> f64 {
        self.transactions as f64 / self.elapsed.as_secs_f64()
    }

    pub fn rows_per_second(&self) -> f64 {
        self.transactions_per_second() * self.rows_per_transaction as f64
    }
}

/// SQLite in `dir`: `writers` threads for `seconds`, each committing transactions of `rows`
/// rows. SQLite has one writer at a time, so the threads share one connection behind a lock:
/// with a connection each they would measure SQLite's busy back-off sleeps, not the disk.
pub fn sqlite(dir: &Path, writers: usize, rows: u64, seconds: f64) -> Fallible<Ceiling> {
    let path = dir.join(format!(
        "ceiling-{rows}-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    let connection = rusqlite::Connection::open(&path)?;
    let mode: String = connection.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("SQLite refused WAL mode in {}: {mode}", dir.display()).into());
    }
    connection.execute_batch(
        "PRAGMA synchronous=FULL;
         CREATE TABLE rows (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL,
                            payload TEXT NOT NULL, UNIQUE (stream, seq));",
    )?;
    let connection = Arc::new(Mutex::new(connection));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let results: Vec<Fallible<Samples>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|writer| {
                let connection = connection.clone();
                scope.spawn(move || -> Fallible<Samples> {
                    let stream = format!("writer-{writer}");
                    let mut samples = Samples::default();
                    let mut seq = 0i64;
                    while Instant::now() < deadline {
                        let began = Instant::now();
                        let mut connection =
                            connection.lock().map_err(|_| "a ceiling writer panicked")?;
                        let transaction = connection.transaction()?;
                        {
                            let mut insert = transaction.prepare_cached(
                                "INSERT INTO rows (stream, seq, payload) VALUES (?1, ?2, ?3)",
                            )?;
                            for _ in 0..rows {
                                seq += 1;
                                insert.execute(rusqlite::params![stream, seq, PAYLOAD])?;
                            }
                        }
                        transaction.commit()?;
                        drop(connection);
                        samples.push(began.elapsed());
                    }
                    Ok(samples)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a ceiling writer panicked".into()))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut samples = Samples::default();
    for result in results {
        samples.extend(result?);
    }
    Ok(Ceiling {
        transactions: samples.len() as u64,
        rows_per_transaction: rows,
        elapsed,
        samples,
    })
}

/// The same inserts on Postgres at `url`, in a schema of their own that is dropped afterwards,
/// from `writers` connections.
pub async fn postgres(url: &str, writers: usize, rows: u64, seconds: f64) -> Fallible<Ceiling> {
    let pool = PgPoolOptions::new()
        .max_connections(writers as u32)
        .connect(url)
        .await?;
    let schema = format!("jono_load_ceiling_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await?;
    sqlx::query(&format!(
        "CREATE TABLE {schema}.rows (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             stream TEXT NOT NULL, seq BIGINT NOT NULL, payload JSONB NOT NULL,
             UNIQUE (stream, seq))"
    ))
    .execute(&pool)
    .await?;
    let insert =
        format!("INSERT INTO {schema}.rows (stream, seq, payload) VALUES ($1, $2, $3::jsonb)");
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let pool = pool.clone();
        let insert = insert.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("writer-{writer}");
            let mut samples = Samples::default();
            let mut seq = 0i64;
            while Instant::now() < deadline {
                let began = Instant::now();
                if rows == 1 {
                    seq += 1;
                    sqlx::query(&insert)
                        .bind(&stream)
                        .bind(seq)
                        .bind(PAYLOAD)
                        .execute(&pool)
                        .await?;
                } else {
                    let mut transaction = pool.begin().await?;
                    for _ in 0..rows {
                        seq += 1;
                        sqlx::query(&insert)
                            .bind(&stream)
                            .bind(seq)
                            .bind(PAYLOAD)
                            .execute(&mut *transaction)
                            .await?;
                    }
                    transaction.commit().await?;
                }
                samples.push(began.elapsed());
            }
            Ok::<_, sqlx::Error>(samples)
        }));
    }
    let mut samples = Samples::default();
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(done)) => samples.extend(done),
            Ok(Err(error)) => failure = Some(error.to_string()),
            Err(error) => failure = Some(error.to_string()),
        }
    }
    let elapsed = start.elapsed();
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await?;
    pool.close().await;
    if let Some(failure) = failure {
        return Err(format!("the Postgres ceiling: {failure}").into());
    }
    Ok(Ceiling {
        transactions: samples.len() as u64,
        rows_per_transaction: rows,
        elapsed,
        samples,
    })
}
