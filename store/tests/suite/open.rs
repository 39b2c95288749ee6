//! Bad configuration gives one clear line, never a panic and never a password.

use store::{EventStore, StoreError};

#[tokio::test]
async fn a_data_dir_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let error = match EventStore::open_sqlite(&file.join("data")).await {
        Ok(_) => panic!("opened a data dir under a file"),
        Err(error) => error,
    };
    assert!(matches!(error, StoreError::DataDir { .. }), "{error:?}");
    let line = error.to_string();
    assert!(
        line.starts_with("cannot open the data directory "),
        "{line}"
    );
    assert!(line.contains("a-file/data"), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_error_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://jono:s3cret-pw@127.0.0.1:1/jono";
    let error = match EventStore::open_postgres(url).await {
        Ok(_) => panic!("connected to port 1"),
        Err(error) => error,
    };
    let line = error.to_string();
    assert_eq!(
        line,
        "cannot reach Postgres at 127.0.0.1:1: connection refused"
    );
    assert!(!format!("{error:?}").contains("s3cret"), "{error:?}");
}

#[tokio::test]
async fn a_malformed_database_url_is_a_clear_error_without_the_password() {
    let error = match EventStore::open_postgres("postgres://jono:s3cret-pw@host:notaport/db").await
    {
        Ok(_) => panic!("parsed a bad port"),
        Err(error) => error,
    };
    assert!(matches!(error, StoreError::BadDatabaseUrl(_)), "{error:?}");
    assert!(!error.to_string().contains("s3cret"), "{error}");
}

#[tokio::test]
async fn an_existing_log_opens_again_and_keeps_its_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EventStore::open_sqlite(dir.path()).await.expect("open");
    store
        .append(crate::common::append_to("a", 0, 1))
        .await
        .expect("append");
    drop(store);
    let store = EventStore::open_sqlite(dir.path())
        .await
        .expect("reopen runs migrations again");
    assert_eq!(store.head().await.expect("head"), 1);
    assert!(dir.path().join("jono.db").exists());
}

/// Invariant 5 on SQLite: every connection fsyncs each commit (FULL), in WAL mode.
#[tokio::test]
async fn sqlite_commits_are_fsynced() {
    let (_dir, store) = sqlite_store().await;
    let pool = sqlite_pool(&store);
    for _ in 0..3 {
        let mut conn = pool.acquire().await.expect("connection");
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .expect("pragma");
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .expect("pragma");
        assert_eq!(synchronous, 2, "synchronous must be FULL");
        assert_eq!(journal, "wal");
    }
}

/// A conversation's replay finds what its queues recorded of it through an index: a seek, not a
/// walk of every queue's stream (`EventStore::load_queue_events_naming`'s statement).
#[tokio::test]
async fn the_queue_events_naming_a_conversation_are_found_by_an_index() {
    let (_dir, store) = sqlite_store().await;
    let pool = sqlite_pool(&store);
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT position FROM events WHERE aggregate_type = 'queue' \
         AND (CASE WHEN aggregate_type = 'queue' THEN json_extract(payload, '$.conversation_id') \
         END) = $1 AND position > $2 AND position <= $3 ORDER BY position LIMIT 500",
    )
    .bind("c")
    .bind(0_i64)
    .bind(10_i64)
    .fetch_all(pool)
    .await
    .expect("plan");
    let plan: Vec<&str> = plan.iter().map(|(_, _, _, step)| step.as_str()).collect();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX events_naming_in_queue")),
        "{plan:?}"
    );
}

/// No index of the log is partial: with one (`… WHERE aggregate_type = 'queue'`), SQLite
/// prepares every statement that binds a value the index's condition could depend on again at
/// each new value, and the commands' and readers' statements all bind `aggregate_type`
/// (SendMessage/s fell by 15 %, BENCHMARKS.md).
#[tokio::test]
async fn no_index_of_the_log_is_partial() {
    let (_dir, store) = sqlite_store().await;
    let pool = sqlite_pool(&store);
    let partial: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' \
         AND name IN (SELECT name FROM pragma_index_list('events') WHERE partial = 1)",
    )
    .fetch_all(pool)
    .await
    .expect("the indexes");
    assert!(partial.is_empty(), "{partial:?}");
}

/// Another connection's write holds `jono.db`'s lock: the log's writer waits for it (counted in
/// `jono_store_write_lock_seconds`) and appends once it is free.
#[tokio::test]
async fn the_writer_waits_for_another_connections_write_and_counts_the_wait() {
    let (_dir, store) = sqlite_store().await;
    store
        .append(crate::common::append_to("before", 0, 1))
        .await
        .expect("a first append");
    let pool = sqlite_pool(&store);
    let mut holder = pool.acquire().await.expect("connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .expect("the write lock");
    let append = tokio::spawn({
        let store = store.clone();
        async move { store.append(crate::common::append_to("after", 0, 1)).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!append.is_finished(), "the append waits for the lock");
    sqlx::query("COMMIT")
        .execute(&mut *holder)
        .await
        .expect("commit");
    append
        .await
        .expect("task")
        .expect("appended once the lock is free");
    let (waited, batches) = store.metrics().write_lock_waits();
    assert_eq!(batches, 2);
    // Most of the half second held (the writer begins within moments of the request).
    assert!(waited >= 0.1, "the wait is counted: {waited} s");
    let mut text = String::new();
    store.metrics().render_prometheus(&mut text);
    assert!(
        text.contains("jono_store_write_lock_seconds_count 2"),
        "{text}"
    );
}

/// Read models write through their own pool, which does not flush each commit (NORMAL); the
/// log's pool keeps FULL, so no read model's setting can reach an append.
#[tokio::test]
async fn read_models_write_without_a_flush_per_commit_but_the_log_does_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EventStore::open_sqlite(dir.path()).await.expect("open");
    let synchronous = |backend: &store::Backend| {
        let store::Backend::Sqlite(pool, _) = backend else {
            unreachable!()
        };
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.expect("connection");
            sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .expect("pragma")
        }
    };
    assert_eq!(synchronous(store.read_model_backend()).await, 1, "NORMAL");
    assert_eq!(synchronous(store.backend()).await, 2, "FULL");
}

/// A fresh store on SQLite, and the directory that holds it (dropped with the test).
async fn sqlite_store() -> (tempfile::TempDir, EventStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EventStore::open_sqlite(dir.path()).await.expect("open");
    (dir, store)
}

/// The pool of a store opened on SQLite.
fn sqlite_pool(store: &EventStore) -> &sqlx::SqlitePool {
    let store::Backend::Sqlite(pool, _) = store.backend() else {
        unreachable!("a store opened on SQLite")
    };
    pool
}
