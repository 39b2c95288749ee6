use std::time::Duration;

use store::{Backend, StoredEvent};

use crate::common::{append_to, TestDb};
use crate::on_both_backends;

on_both_backends!(
    positions_rise_in_commit_order_and_the_feed_pages_through_them,
    a_subscriber_wakes_when_events_commit,
    the_feed_interleaves_another_process_commits_with_this_one,
);

async fn positions_rise_in_commit_order_and_the_feed_pages_through_them(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.head().await.expect("head"), 0);
    assert_eq!(store.last_committed().await.expect("last committed"), 0);
    let mut written: Vec<StoredEvent> = Vec::new();
    for (stream, count) in [("a", 2), ("b", 1), ("c", 3), ("b", 2)] {
        let version = store
            .load_stream("thing", stream)
            .await
            .expect("load")
            .len() as i64;
        written.extend(
            store
                .append(append_to(stream, version, count))
                .await
                .expect("append"),
        );
    }
    let all = store.read_after(0, 100).await.expect("read");
    assert_eq!(all, written);
    for pair in all.windows(2) {
        assert!(pair[0].position < pair[1].position, "positions must rise");
        assert!(
            pair[0].recorded_at <= pair[1].recorded_at,
            "time must not go back"
        );
    }
    assert_eq!(store.head().await.expect("head"), all[7].position);
    assert_eq!(
        store.last_committed().await.expect("last committed"),
        all[7].position
    );
    // A stream's last position: "b" was written last, "c" before it; no stream, no position.
    for (stream, last) in [
        ("a", all[1].position),
        ("c", all[5].position),
        ("b", all[7].position),
        ("none", 0),
    ] {
        assert_eq!(
            store
                .stream_last_position("thing", stream)
                .await
                .expect("stream's last"),
            last,
            "{stream}"
        );
    }

    // Paging from a checkpoint gives the rest, in order, without gaps or repeats.
    let mut checkpoint = 0;
    let mut paged = Vec::new();
    loop {
        let page = store.read_after(checkpoint, 3).await.expect("page");
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 3);
        checkpoint = last.position;
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert!(store
        .read_after(all[7].position, 10)
        .await
        .expect("read")
        .is_empty());

    // Events by position: those that exist, in order, whatever order they were asked in.
    let asked = [all[5].position, all[0].position, all[7].position + 100];
    let found = store.read_positions(&asked).await.expect("by position");
    assert_eq!(found, vec![all[0].clone(), all[5].clone()]);
    assert!(store.read_positions(&[]).await.expect("none").is_empty());
}

async fn a_subscriber_wakes_when_events_commit(db: TestDb) {
    let store = db.open().await;
    let mut head = store.subscribe();
    assert_eq!(*head.borrow_and_update(), 0);
    let writer = store.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer.append(append_to("a", 0, 2)).await.expect("append")
    });
    tokio::time::timeout(Duration::from_secs(5), head.changed())
        .await
        .expect("woken within 5 s")
        .expect("store alive");
    let stored = task.await.expect("task");
    // The wake-up can come just before the second event's position is published; wait for it.
    tokio::time::timeout(
        Duration::from_secs(5),
        head.wait_for(|h| *h >= stored[1].position),
    )
    .await
    .expect("head reaches the last appended position")
    .expect("store alive");
    assert_eq!(store.read_after(0, 10).await.expect("read"), stored);
}

/// A store on a fresh Postgres schema (`None` without one) and the position of its first
/// event, for the Postgres-only tests below.
async fn postgres_after_one_event() -> Option<(TestDb, store::EventStore, i64)> {
    let db = TestDb::postgres().await?;
    let store = db.open().await;
    let first = store
        .append(append_to("before", 0, 1))
        .await
        .expect("append");
    Some((db, store, first[0].position))
}

/// Postgres only: an older transaction still open that took no position (a projector's batch,
/// a webhook's note) holds back the readable head, since its id is below the append's — but not
/// this process's followers: they take its fresh commits from the tail, woken by the writer.
/// Before, every live frame on Postgres waited for the projectors' transactions (p50 0.4–0.7 s
/// at 1,000 messages/s, BENCHMARKS.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_followers_get_this_process_commits_past_an_older_open_transaction() {
    let Some((_db, store, first)) = postgres_after_one_event().await else {
        return;
    };
    let Backend::Postgres(pool) = store.backend() else {
        unreachable!()
    };
    // No safety-net wake-up: only the writer's can bring the event.
    let mut follower =
        store::follow::Follower::new("test", &store, first).idle(Duration::from_secs(3600));
    let (_stop, mut shutdown) = tokio::sync::watch::channel(false);
    let mut older = pool.begin().await.expect("begin");
    let _: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&mut *older)
        .await
        .expect("an id taken");
    let waiting = tokio::spawn(async move { follower.next_batch(&mut shutdown).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let later = store
        .append(append_to("later", 0, 1))
        .await
        .expect("append");
    assert!(
        store.head().await.expect("head") < later[0].position,
        "held back"
    );
    let got = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the follower is woken while the older transaction is open")
        .expect("joined")
        .expect("not shut down");
    assert_eq!(got, later);
    older.rollback().await.expect("rollback");
}

/// Postgres only: a transaction that took a position and is still open holds back every later
/// position, so a reader at a checkpoint never passes it and later misses it (invariant 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_readers_never_pass_a_transaction_still_in_flight() {
    let Some((_db, store, first)) = postgres_after_one_event().await else {
        return;
    };
    let Backend::Postgres(pool) = store.backend() else {
        unreachable!()
    };
    let checkpoint = first;

    // A writer that bypasses the append lock and stays open with an earlier position.
    let mut slow = pool.begin().await.expect("begin");
    let slow_position: i64 = sqlx::query_scalar(
        "INSERT INTO events (event_id, aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, recorded_at) \
         VALUES ($1, 'thing', 'slow', 1, 'ThingHappened', '1', '{}'::jsonb, now()) RETURNING position",
    )
    .bind(uuid::Uuid::new_v4())
    .fetch_one(&mut *slow)
    .await
    .expect("insert in flight");

    let later = store
        .append(append_to("later", 0, 1))
        .await
        .expect("later append commits");
    assert!(later[0].position > slow_position);

    let seen = store.read_after(checkpoint, 100).await.expect("read");
    assert!(
        seen.iter().all(|e| e.position < slow_position),
        "read past a position still in flight: {:?}",
        seen.iter().map(|e| e.position).collect::<Vec<_>>()
    );
    assert!(store.head().await.expect("head") < slow_position);
    // What a read must wait for is what was committed, in flight before it or not.
    assert_eq!(
        store.last_committed().await.expect("last committed"),
        later[0].position
    );

    slow.commit().await.expect("commit the slow one");
    let seen = store.read_after(checkpoint, 100).await.expect("read");
    let positions: Vec<i64> = seen.iter().map(|e| e.position).collect();
    assert_eq!(positions, vec![slow_position, later[0].position]);
    assert_eq!(seen[1], later[0]);
}

/// SQLite has no notifications between processes: a store watches the file, so that commits
/// another process made (`jono admin …` beside a running `jono serve`) wake its subscribers.
/// Two stores opened on one file stand for the two processes.
#[tokio::test]
async fn a_sqlite_subscriber_wakes_for_another_process_commits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = store::EventStore::open_sqlite(dir.path())
        .await
        .expect("open");
    let admin = store::EventStore::open_sqlite(dir.path())
        .await
        .expect("open again");
    let mut head = server.subscribe();
    assert_eq!(*head.borrow_and_update(), 0);
    let stored = admin.append(append_to("a", 0, 1)).await.expect("append");
    tokio::time::timeout(
        Duration::from_secs(10),
        head.wait_for(|h| *h >= stored[0].position),
    )
    .await
    .expect("the other store's commit is noticed")
    .expect("store alive");
}

/// A store serves the followers its own newest commits from memory (`tail`, on both backends:
/// on Postgres its writer commits under the append lock, so positions commit in order); another
/// process's commits land between them in the file. Reading after any position must still give
/// every event, in order, the other store's included, as a store that holds none in memory
/// reads them.
async fn the_feed_interleaves_another_process_commits_with_this_one(db: TestDb) {
    let server = db.open().await;
    let admin = db.open().await;
    let mut written = Vec::new();
    written.extend(server.append(append_to("a", 0, 2)).await.expect("append"));
    written.extend(admin.append(append_to("b", 0, 1)).await.expect("append"));
    written.extend(server.append(append_to("a", 2, 2)).await.expect("append"));
    written.extend(admin.append(append_to("b", 1, 1)).await.expect("append"));
    let fresh = db.open().await;
    for after in std::iter::once(0).chain(written.iter().map(|e| e.position)) {
        let from_file = fresh.read_after(after, 100).await.expect("read");
        let expected: Vec<StoredEvent> = written
            .iter()
            .filter(|e| e.position > after)
            .cloned()
            .collect();
        assert_eq!(from_file, expected, "the file, after {after}");
        for store in [&server, &admin] {
            assert_eq!(
                store.read_after(after, 100).await.expect("read"),
                expected,
                "after {after}"
            );
            // Page by page, as a follower with a small batch reads.
            let one = store.read_after(after, 1).await.expect("read");
            assert_eq!(one, expected.iter().take(1).cloned().collect::<Vec<_>>());
        }
    }
}
