use std::collections::HashSet;

use store::AppendError;

use crate::common::{append_to, TestDb};
use crate::on_both_backends;

on_both_backends!(
    concurrent_appends_share_commits_and_all_survive_a_reopen,
    a_conflicting_request_in_a_batch_fails_alone,
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
