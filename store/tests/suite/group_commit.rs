use std::collections::HashSet;

use store::{AppendError, IdempotencyRecord};

use crate::common::{append_to, TestDb};
use crate::on_both_backends;

on_both_backends!(
    concurrent_appends_share_commits_and_all_survive_a_reopen,
    a_conflicting_request_in_a_batch_fails_alone,
    requests_of_one_batch_see_each_other_in_order,
    a_request_refused_by_the_database_fails_alone,
    twins_with_one_key_in_a_batch_append_once,
    two_writers_on_one_log_race_and_one_wins_each_version,
);

async fn concurrent_appends_share_commits_and_all_survive_a_reopen(db: TestDb) {
    let store = db.open().await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.append(append_to(&format!("s{i}"), 0, 1)).await })
        })
        .collect();
    let mut answered = Vec::new();
    for task in tasks {
        answered.extend(
            task.await
                .expect("task")
                .expect("every request is answered Ok"),
        );
    }
    assert_eq!(answered.len(), 50);
    let metrics = store.metrics();
    assert_eq!(metrics.append_requests(), 50);
    assert_eq!(metrics.events_appended(), 50);
    assert!(
        metrics.commits() < 50,
        "expected group commit, got {} commits for 50 requests",
        metrics.commits()
    );
    let mut text = String::new();
    metrics.render_prometheus(&mut text);
    for name in [
        "jono_store_commits_total",
        "jono_store_events_appended_total 50",
        "jono_store_append_requests_total 50",
        "jono_store_batch_size_count",
        "jono_store_conflicts_total 0",
        // Each request's wait for its batch, and each batch's time.
        "jono_store_append_queue_seconds_count 50",
        "jono_store_batch_seconds_count",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    drop(store);

    // What was answered is durable: a new store on the same data reads every event back.
    let reopened = db.open().await;
    let read = reopened.read_after(0, 1000).await.expect("read");
    let read_ids: HashSet<_> = read.iter().map(|e| e.event_id).collect();
    assert_eq!(read.len(), 50);
    for event in &answered {
        assert!(read_ids.contains(&event.event_id), "lost {event:?}");
    }
}

async fn a_conflicting_request_in_a_batch_fails_alone(db: TestDb) {
    let store = db.open().await;
    // Ten racers on one stream at version 0 plus ten on their own streams, all at once.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let stream = if i % 2 == 0 {
                "contested".to_string()
            } else {
                format!("own{i}")
            };
            tokio::spawn(async move { (i, store.append(append_to(&stream, 0, 2)).await) })
        })
        .collect();
    let mut contested_wins = 0;
    for task in tasks {
        let (i, result) = task.await.expect("task");
        match (i % 2, result) {
            (0, Ok(_)) => contested_wins += 1,
            (0, Err(AppendError::Conflict)) => {}
            (1, Ok(events)) => assert_eq!(events.len(), 2),
            (_, other) => panic!("request {i}: unexpected {other:?}"),
        }
    }
    assert_eq!(contested_wins, 1);
    assert_eq!(store.metrics().conflicts(), 9);
    let contested = store.load_stream("thing", "contested").await.expect("load");
    assert_eq!(
        contested.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(
        store.read_after(0, 100).await.expect("read").len(),
        2 + 10 * 2
    );
}

/// Requests on one stream, all queued at once so that they share batches, request `i` at
/// version `i`: each passes only after the one before it, whose events are not committed yet
/// when it is decided in the same batch. Retried until all are in: every version is written
/// exactly once, in position order, each answered with the sequence it took.
async fn requests_of_one_batch_see_each_other_in_order(db: TestDb) {
    let store = db.open().await;
    let mut pending: Vec<i64> = (0..30).collect();
    while !pending.is_empty() {
        let appends: Vec<_> = pending
            .iter()
            .map(|&i| {
                let store = store.clone();
                tokio::spawn(async move { (i, store.append(append_to("chain", i, 1)).await) })
            })
            .collect();
        let mut failed = Vec::new();
        for task in appends {
            match task.await.expect("task") {
                (i, Ok(events)) => assert_eq!(events[0].sequence, i + 1),
                (i, Err(AppendError::Conflict)) => failed.push(i),
                (i, Err(other)) => panic!("request {i}: unexpected {other:?}"),
            }
        }
        assert!(failed.len() < pending.len(), "no progress: {failed:?}");
        pending = failed;
    }
    let chain = store.load_stream("thing", "chain").await.expect("load");
    assert_eq!(
        chain.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>()
    );
    assert!(chain.windows(2).all(|w| w[0].position < w[1].position));
}

/// A refusal the writer cannot foresee from versions and keys (an event id already in the
/// log) falls on its own request; the others of its batch are written.
async fn a_request_refused_by_the_database_fails_alone(db: TestDb) {
    let store = db.open().await;
    let first = store.append(append_to("first", 0, 1)).await.expect("first");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let mut request = append_to(&format!("s{i}"), 0, 2);
            if i == 7 {
                request.events[1].event_id = first[0].event_id;
            }
            tokio::spawn(async move { (i, store.append(request).await) })
        })
        .collect();
    for task in tasks {
        match task.await.expect("task") {
            (7, Err(AppendError::Invalid(_))) => {}
            (7, other) => panic!("the reused event id: unexpected {other:?}"),
            (i, Ok(events)) => assert_eq!(events.len(), 2, "request {i}"),
            (i, Err(other)) => panic!("request {i}: unexpected {other:?}"),
        }
    }
    let all = store.read_after(0, 100).await.expect("read");
    assert_eq!(all.len(), 1 + 19 * 2);
    assert!(all.iter().all(|e| e.aggregate_id != "s7"));
    // The writer goes on as before.
    store.append(append_to("s7", 0, 1)).await.expect("after");
}

/// Twins sharing an idempotency key, queued at once: one is written, the others are told the
/// key is used; the key's record holds the winner's events.
async fn twins_with_one_key_in_a_batch_append_once(db: TestDb) {
    let store = db.open().await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            let mut request = append_to(&format!("t{i}"), 0, 2);
            request.idempotency = Some(IdempotencyRecord {
                key: "org:agent:twin".into(),
                request_hash: "h".into(),
            });
            tokio::spawn(async move { store.append(request).await })
        })
        .collect();
    let mut written = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(events) => written.push(events),
            Err(AppendError::DuplicateIdempotencyKey) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(written.len(), 1);
    let (hash, events) = store
        .find_idempotent("org:agent:twin")
        .await
        .expect("find")
        .expect("recorded");
    assert_eq!(hash, "h");
    assert_eq!(events, written[0]);
    assert_eq!(store.read_after(0, 100).await.expect("read").len(), 2);
}

/// Two writers on one log (two processes on one database): the expected-version check decides
/// between them, so each version of a contested stream is written once.
async fn two_writers_on_one_log_race_and_one_wins_each_version(db: TestDb) {
    let stores = [db.open().await, db.open().await];
    for version in 0..5 {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = stores[i % 2].clone();
                tokio::spawn(async move { store.append(append_to("shared", version, 1)).await })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => wins += 1,
                Err(AppendError::Conflict) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(wins, 1, "version {version}");
    }
    for store in &stores {
        let shared = store.load_stream("thing", "shared").await.expect("load");
        assert_eq!(
            shared.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
    }
}
