//! SQLite's write-ahead logs are copied back into `jono.db` and `read-models.db` by the
//! store's checkpointer, not by the commit that takes a log past SQLite's 1,000 pages (which
//! made the log's writer, and every request in its batch, wait for the copy and an fsync of
//! the file several times a second: `store/src/sqlite/wal.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use store::log::Backend;
use store::EventStore;

use crate::common::append_to;

/// SQLite's page size here, and the log size at which a commit would copy it back itself.
const PAGE: u64 = 4_096;
const AUTOCHECKPOINT_PAGES: u64 = 1_000;

fn size(file: &Path) -> u64 {
    std::fs::metadata(file).map(|m| m.len()).unwrap_or(0)
}

/// The read models' pool, with a table `rm_probe (id, body)` to write into.
async fn probe_table(store: &EventStore) -> &sqlx::SqlitePool {
    let Backend::Sqlite(pool, _) = store.read_model_backend() else {
        panic!("a SQLite store");
    };
    sqlx::query("CREATE TABLE rm_probe (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .execute(pool)
        .await
        .expect("create");
    pool
}

/// Waits (at most a minute: a correctness test, not a timing one) until `file` is larger than
/// `than`.
async fn grows(file: &Path, than: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if size(file) > than {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_files_get_their_write_ahead_logs_back_while_no_commit_passes_a_thousand_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EventStore::open_sqlite(dir.path()).await.expect("open");
    let log = dir.path().join("jono.db");
    let read_models = dir.path().join(store::READ_MODELS_FILE);
    let (log_before, read_models_before) = (size(&log), size(&read_models));

    for n in 0..40 {
        store
            .append(append_to(&format!("stream-{n}"), 0, 5))
            .await
            .expect("append");
    }
    let pool = probe_table(&store).await;
    for n in 0..100 {
        sqlx::query("INSERT INTO rm_probe (body) VALUES ($1)")
            .bind(format!("{n:0>400}"))
            .execute(pool)
            .await
            .expect("insert");
    }
    // The premise: neither log came near the size at which a commit copies it back itself.
    for file in [&log, &read_models] {
        let wal = size(&file.with_extension("db-wal"));
        assert!(
            wal < AUTOCHECKPOINT_PAGES * PAGE / 2,
            "{}: a write-ahead log of {wal} bytes",
            file.display()
        );
    }

    assert!(
        grows(&log, log_before).await,
        "jono.db never received its new pages ({log_before} bytes)"
    );
    assert!(
        grows(&read_models, read_models_before).await,
        "read-models.db never received its new pages ({read_models_before} bytes)"
    );
}

/// An erasure's truncation of the write-ahead logs (`compact_after_erasure`) meets another
/// connection's checkpoint — the checkpointer's every 100 ms, here one checkpointing in a loop —
/// and SQLite refuses the second checkpoint at once (`busy = 1`, the log left as it was): the
/// truncation tries again, so the log is empty after it (without that, this fails within a
/// few rounds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasures_truncation_waits_out_another_checkpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EventStore::open_sqlite(dir.path()).await.expect("open");
    for n in 0..20 {
        store
            .append(append_to(&format!("stream-{n}"), 0, 5))
            .await
            .expect("append");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checkpointing = {
        let (stop, file) = (std::sync::Arc::clone(&stop), dir.path().join("jono.db"));
        std::thread::spawn(move || {
            let connection = rusqlite::Connection::open(file).expect("a connection");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        })
    };
    for round in 0..200 {
        store
            .append(append_to(&format!("more-{round}"), 0, 2))
            .await
            .expect("append");
        let compacted = store
            .compact_after_erasure(store::erasure::Erased {
                rewritten: 0,
                snapshots: 0,
            })
            .await;
        assert!(compacted.is_ok(), "round {round}: {compacted:?}");
        let wal = size(&dir.path().join("jono.db-wal"));
        assert_eq!(wal, 0, "round {round}: the write-ahead log truncated");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    checkpointing.join().expect("the checkpointing thread");
}

/// A write-ahead log that grew large (here: a reader held its snapshot, so no checkpoint could
/// finish; in production a full disk, where none could copy anything back) is cut back to
/// `WAL_SIZE_LIMIT` once a checkpoint has finished and a commit starts it over, in both files.
/// Without `journal_size_limit` it kept its largest size for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_ahead_log_that_grew_is_cut_back_once_checkpointed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EventStore::open_sqlite(dir.path()).await.expect("open");
    let pool = probe_table(&store).await;
    let files = [
        dir.path().join("jono.db"),
        dir.path().join(store::READ_MODELS_FILE),
    ];
    // Readers that hold a snapshot from before the writes: no checkpoint can finish.
    let holders: Vec<rusqlite::Connection> = files
        .iter()
        .map(|file| {
            let connection = rusqlite::Connection::open(file).expect("a reader");
            connection
                .execute_batch("BEGIN; SELECT count(*) FROM sqlite_master;")
                .expect("a snapshot");
            connection
        })
        .collect();
    // Past the limit in both files: 80 × 256 KiB.
    let body = "x".repeat(256 * 1024);
    for n in 0..80 {
        let mut request = append_to(&format!("big-{n}"), 0, 1);
        request.events[0].payload = serde_json::json!({ "text": body });
        store.append(request).await.expect("append");
        sqlx::query("INSERT INTO rm_probe (body) VALUES ($1)")
            .bind(&body)
            .execute(pool)
            .await
            .expect("insert");
    }
    let limit = store::WAL_SIZE_LIMIT;
    for file in &files {
        let wal = size(&file.with_extension("db-wal"));
        assert!(wal > limit, "the premise: {} grew to {wal}", file.display());
    }
    drop(holders);

    // Once the checkpointer has copied everything back, the next commit starts the log over.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sizes = Vec::new();
    for round in 0.. {
        store
            .append(append_to(&format!("small-{round}"), 0, 1))
            .await
            .expect("append");
        sqlx::query("INSERT INTO rm_probe (body) VALUES ('small')")
            .execute(pool)
            .await
            .expect("insert");
        sizes = files
            .iter()
            .map(|file| size(&file.with_extension("db-wal")))
            .collect();
        if sizes.iter().all(|wal| *wal <= limit) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sizes.iter().all(|wal| *wal <= limit),
        "the logs were not cut back to {limit} bytes: {sizes:?}"
    );
}
