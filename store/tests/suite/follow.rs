//! `Follower`: the one way Jono's readers follow the log.

use std::time::Duration;

use store::follow::{pause, Follower};
use store::{AppendRequest, StoredEvent};
use tokio::sync::watch;

use crate::common::{append_to, event, TestDb};
use crate::on_both_backends;

on_both_backends!(
    a_follower_reads_in_batches_in_order_and_resumes_from_a_position,
    a_follower_wakes_on_an_append_and_stops_on_shutdown,
    a_follower_of_some_types_passes_over_the_others,
    a_follower_that_skips_payloads_gets_every_event_and_only_the_payloads_it_reads,
    a_follower_reads_this_processs_commits_from_memory_and_another_processs_from_the_database,
);

fn positions(events: &[StoredEvent]) -> Vec<i64> {
    events.iter().map(|e| e.position).collect()
}

async fn a_follower_reads_in_batches_in_order_and_resumes_from_a_position(db: TestDb) {
    let store = db.open().await;
    let written = store.append(append_to("a", 0, 7)).await.expect("append");
    let (_stop, mut shutdown) = watch::channel(false);

    let mut feed = Follower::new("test", &store, 0).batch(3);
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    while seen.len() < written.len() {
        let batch = feed.next_batch(&mut shutdown).await.expect("a batch");
        sizes.push(batch.len());
        seen.extend(batch);
    }
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(seen, written);
    assert_eq!(feed.position(), written[6].position);
    assert!(feed.caught_up());

    // A checkpointed reader starts again after what it saved.
    let mut resumed = Follower::new("test", &store, written[4].position);
    let rest = resumed.read().await.expect("read");
    assert_eq!(positions(&rest), positions(&written[5..]));
    // Nothing more: an empty read, and the position stays.
    assert!(resumed.read().await.expect("read").is_empty());
    assert_eq!(resumed.position(), written[6].position);
    // Seeking back reads again.
    resumed.seek(written[5].position);
    assert_eq!(
        positions(&resumed.read().await.expect("read")),
        vec![written[6].position]
    );
}

async fn a_follower_wakes_on_an_append_and_stops_on_shutdown(db: TestDb) {
    let store = db.open().await;
    let (stop, shutdown) = watch::channel(false);
    // An idle time far longer than the test: only a wake-up can deliver the batch in time.
    let mut feed = Follower::new("test", &store, 0).idle(Duration::from_secs(60));
    let reader = tokio::spawn({
        let mut shutdown = shutdown.clone();
        async move {
            let mut seen = Vec::new();
            while let Some(batch) = feed.next_batch(&mut shutdown).await {
                seen.extend(positions(&batch));
            }
            seen
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = store.append(append_to("a", 0, 2)).await.expect("append");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.head().await.expect("head") < written[1].position {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the head never moved"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give the reader time to take the batch, then stop it: it ends at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).expect("stop");
    let seen = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the follower stops on shutdown")
        .expect("the reader ran");
    assert_eq!(seen, positions(&written));

    // `pause` is cut short by shutdown, and says so.
    let mut stopped = shutdown.clone();
    let started = std::time::Instant::now();
    assert!(pause(&mut stopped, Duration::from_secs(60)).await);
    assert!(started.elapsed() < Duration::from_secs(5));
}

const THING: &str = "ThingHappened";
const OTHER: &str = "OtherThing";

/// One event of each of `types`, in order, in one new stream.
async fn append_of_types(store: &store::EventStore, types: &[&str]) -> Vec<StoredEvent> {
    let events = (1..)
        .zip(types)
        .map(|(sequence, event_type)| {
            let mut new = event("thing", "a", sequence, sequence);
            new.event_type = (*event_type).into();
            new
        })
        .collect();
    store
        .append(AppendRequest {
            events,
            expected: vec![("thing".into(), "a".into(), 0)],
            idempotency: None,
        })
        .await
        .expect("append")
}

async fn a_follower_of_some_types_passes_over_the_others(db: TestDb) {
    let store = db.open().await;
    let written = append_of_types(&store, &[THING, OTHER, THING, OTHER, OTHER]).await;
    let (_stop, mut shutdown) = watch::channel(false);
    let mut feed = Follower::new("test", &store, 0).batch(2).types(&[THING]);
    let first = feed.next_batch(&mut shutdown).await.expect("a batch");
    assert_eq!(positions(&first), vec![written[0].position]);
    let second = feed.next_batch(&mut shutdown).await.expect("a batch");
    assert_eq!(positions(&second), vec![written[2].position]);
    // The rest is of other types: nothing, but the position is past it all.
    assert!(feed.read().await.expect("read").is_empty());
    assert_eq!(feed.position(), written[4].position);
    assert!(feed.caught_up());
}

/// Events of the skipped types come in their places, columns and all, with a `null` payload:
/// from this process's tail and from the file (another process's store) alike.
async fn a_follower_that_skips_payloads_gets_every_event_and_only_the_payloads_it_reads(
    db: TestDb,
) {
    let store = db.open().await;
    let written = append_of_types(&store, &[THING, OTHER, THING, OTHER, THING]).await;
    let expected: Vec<StoredEvent> = written
        .iter()
        .cloned()
        .map(|mut event| {
            if event.event_type == OTHER {
                event.payload = serde_json::Value::Null;
            }
            event
        })
        .collect();
    let other = db.open().await;
    for (from, store) in [("the tail", &store), ("the file", &other)] {
        let mut feed = Follower::new("test", store, 0)
            .batch(10)
            .skip_payloads(&[OTHER]);
        let read = feed.read().await.expect("read");
        assert_eq!(read, expected, "from {from}");
        assert!(read[0].payload.is_object(), "from {from}");
        assert_eq!(feed.position(), written[4].position);
        // Without skipping, every payload.
        let all = Follower::new("test", store, 0).read().await.expect("read");
        assert_eq!(all, written, "from {from}");
    }
}

/// A follower at the head of this process's own commits reads each new one from memory, and a
/// wake-up with nothing new asks nobody: no read of the database (on Postgres, a round trip
/// per follower per commit). Another process's commit, once this process has heard of it, is
/// read from the database, in its place among this process's own.
async fn a_follower_reads_this_processs_commits_from_memory_and_another_processs_from_the_database(
    db: TestDb,
) {
    let store = db.open().await;
    let other = db.open().await;
    let mut written = store.append(append_to("a", 0, 2)).await.expect("append");
    let mut feed = Follower::new("test", &store, 0);
    assert_eq!(feed.read().await.expect("read"), written);
    let from_database = store.metrics().follower_reads_from_database();
    let from_memory = store.metrics().follower_reads_from_memory();
    for round in 1..=5 {
        let expected = i64::try_from(written.len()).expect("small");
        let new = store
            .append(append_to("a", expected, 2))
            .await
            .expect("append");
        assert_eq!(feed.read().await.expect("read"), new, "round {round}");
        assert!(feed.read().await.expect("read").is_empty(), "round {round}");
        written.extend(new);
    }
    assert_eq!(
        store.metrics().follower_reads_from_database(),
        from_database,
        "this process's commits, and nothing new, come from memory"
    );
    assert_eq!(
        store.metrics().follower_reads_from_memory(),
        from_memory + 10
    );

    // Another process's commit, then this one's: both, in order, once heard of.
    let theirs = other.append(append_to("b", 0, 1)).await.expect("append");
    let mut head = store.subscribe();
    tokio::time::timeout(
        Duration::from_secs(10),
        head.wait_for(|head| *head >= theirs[0].position),
    )
    .await
    .expect("the other process's commit is heard of")
    .expect("store alive");
    let expected = i64::try_from(written.len()).expect("small");
    let mine = store
        .append(append_to("a", expected, 1))
        .await
        .expect("append");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.extend(feed.read().await.expect("read"));
    }
    assert_eq!(seen, [theirs, mine].concat());
    assert!(store.metrics().follower_reads_from_database() > from_database);
}
