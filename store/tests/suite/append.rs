use store::{AppendError, AppendRequest, Backend};

use crate::common::{append_to, event, TestDb};
use crate::on_both_backends;

on_both_backends!(
    appended_events_load_back_as_written,
    a_stale_expected_version_is_a_conflict_and_writes_nothing,
    a_request_is_all_or_nothing_across_streams,
    a_self_contradicting_request_is_invalid,
    events_cannot_be_updated_or_deleted,
    checkpoints_round_trip,
    a_stream_since_a_position_is_exactly_its_events_after_it,
    a_stream_window_is_exactly_its_events_between_two_positions,
    the_queue_events_naming_a_conversation_are_exactly_those,
);

async fn appended_events_load_back_as_written(db: TestDb) {
    let store = db.open().await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let stored = store.append(append_to("a", 0, 2)).await.expect("append");
    store.append(append_to("b", 0, 1)).await.expect("append b");

    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].sequence, 1);
    assert_eq!(stored[1].sequence, 2);
    assert!(stored[0].position < stored[1].position);
    assert!(stored[0].recorded_at >= before);
    assert_eq!(stored[0].idempotency_key, None);
    assert_eq!(stored[0].payload["text"], "héllo");

    let loaded = store.load_stream("thing", "a").await.expect("load");
    assert_eq!(loaded, stored);
    let after_first = store
        .load_stream_after("thing", "a", 1)
        .await
        .expect("load after");
    assert_eq!(after_first, vec![stored[1].clone()]);
    assert!(store
        .load_stream("thing", "nobody")
        .await
        .expect("load")
        .is_empty());
    assert!(store
        .load_stream("other-type", "a")
        .await
        .expect("load")
        .is_empty());
}

async fn a_stale_expected_version_is_a_conflict_and_writes_nothing(db: TestDb) {
    let store = db.open().await;
    store
        .append(append_to("a", 0, 1))
        .await
        .expect("first append");
    assert_eq!(
        store.append(append_to("a", 0, 1)).await,
        Err(AppendError::Conflict)
    );
    assert_eq!(
        store.append(append_to("a", 5, 1)).await,
        Err(AppendError::Conflict)
    );
    assert_eq!(
        store.load_stream("thing", "a").await.expect("load").len(),
        1
    );
    store
        .append(append_to("a", 1, 1))
        .await
        .expect("append at the right version");
    assert_eq!(store.metrics().conflicts(), 2);
}

async fn a_request_is_all_or_nothing_across_streams(db: TestDb) {
    let store = db.open().await;
    store.append(append_to("b", 0, 1)).await.expect("b");
    let request = AppendRequest {
        events: vec![event("thing", "a", 1, 1), event("thing", "b", 1, 1)],
        expected: vec![
            ("thing".into(), "a".into(), 0),
            ("thing".into(), "b".into(), 0),
        ],
        idempotency: None,
    };
    assert_eq!(store.append(request).await, Err(AppendError::Conflict));
    assert!(store
        .load_stream("thing", "a")
        .await
        .expect("load")
        .is_empty());
    assert_eq!(
        store.head().await.expect("head"),
        store.load_stream("thing", "b").await.expect("b")[0].position
    );
}

async fn a_self_contradicting_request_is_invalid(db: TestDb) {
    let store = db.open().await;
    let gap = AppendRequest {
        events: vec![event("thing", "a", 2, 1)],
        expected: vec![("thing".into(), "a".into(), 0)],
        idempotency: None,
    };
    assert!(matches!(
        store.append(gap).await,
        Err(AppendError::Invalid(_))
    ));
    let unlisted = AppendRequest {
        events: vec![event("thing", "a", 1, 1)],
        expected: vec![],
        idempotency: None,
    };
    assert!(matches!(
        store.append(unlisted).await,
        Err(AppendError::Invalid(_))
    ));
    let stored = store.append(append_to("a", 0, 1)).await.expect("append");
    let mut reused = append_to("b", 0, 1);
    reused.events[0].event_id = stored[0].event_id;
    assert!(matches!(
        store.append(reused).await,
        Err(AppendError::Invalid(_))
    ));
    assert!(store
        .load_stream("thing", "b")
        .await
        .expect("load")
        .is_empty());
}

async fn events_cannot_be_updated_or_deleted(db: TestDb) {
    let store = db.open().await;
    let stored = store.append(append_to("a", 0, 2)).await.expect("append");
    let statements = [
        "UPDATE events SET event_type = 'Rewritten'",
        "UPDATE events SET payload = payload",
        "DELETE FROM events",
    ];
    for sql in statements {
        let result = match store.backend() {
            Backend::Sqlite(pool, _) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Backend::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        };
        let error = result.expect_err(sql).to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    if let Backend::Postgres(pool) = store.backend() {
        let error = sqlx::query("TRUNCATE events")
            .execute(pool)
            .await
            .expect_err("truncate");
        assert!(error.to_string().contains("append-only"), "{error}");
    }
    assert_eq!(store.load_stream("thing", "a").await.expect("load"), stored);
}

async fn checkpoints_round_trip(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.get_checkpoint("inbox").await.expect("get"), None);
    store.set_checkpoint("inbox", 7).await.expect("set");
    store.set_checkpoint("inbox", 9).await.expect("set again");
    store.set_checkpoint("stats", 1).await.expect("set other");
    assert_eq!(store.get_checkpoint("inbox").await.expect("get"), Some(9));
    assert_eq!(store.get_checkpoint("stats").await.expect("get"), Some(1));
}

/// `load_stream_since` (what a WebSocket topic replays) finds its start by the stream's
/// sequence: for every position — before the stream, on one of its events, between them on
/// another stream's, past its end — it returns exactly the stream's events above it, in order.
async fn a_stream_since_a_position_is_exactly_its_events_after_it(db: TestDb) {
    let store = db.open().await;
    let mut mine = Vec::new();
    for round in 0..4 {
        store
            .append(append_to(&format!("other-{round}"), 0, 2))
            .await
            .expect("append another stream");
        mine.extend(
            store
                .append(append_to("mine", round * 2, 2))
                .await
                .expect("append mine"),
        );
    }
    let last = mine.last().expect("events").position;
    for after in 0..=last + 1 {
        let since = store
            .load_stream_since("thing", "mine", after)
            .await
            .expect("load since");
        let expected: Vec<_> = mine
            .iter()
            .filter(|e| e.position > after)
            .cloned()
            .collect();
        assert_eq!(since, expected, "after position {after}");
    }
}

/// `load_stream_window` (a replay's pages, a conversation's stretches of its queues) is exactly
/// the stream's events in `(after, upto]`, in order, cut at `limit`: for every window over a
/// stream of odd length whose events lie between other streams' — bounds before it, on its
/// events, between them, past its end, empty and reversed windows included.
async fn a_stream_window_is_exactly_its_events_between_two_positions(db: TestDb) {
    let store = db.open().await;
    let mut mine = Vec::new();
    for round in 0..5 {
        store
            .append(append_to(&format!("other-{round}"), 0, 1 + round % 2))
            .await
            .expect("append another stream");
        let count = 1 + round % 3;
        let expected = i64::try_from(mine.len()).expect("small");
        mine.extend(
            store
                .append(append_to("mine", expected, count))
                .await
                .expect("append mine"),
        );
    }
    let end = mine.last().expect("events").position + 1;
    for after in 0..=end {
        for upto in (0..=end).map(Some).chain([None]) {
            for limit in [None, Some(1), Some(3)] {
                let window = store
                    .load_stream_window("thing", "mine", after, upto, limit)
                    .await
                    .expect("load a window");
                let expected: Vec<_> = mine
                    .iter()
                    .filter(|e| e.position > after && upto.is_none_or(|upto| e.position <= upto))
                    .take(limit.map_or(usize::MAX, |limit| limit as usize))
                    .cloned()
                    .collect();
                assert_eq!(window, expected, "({after}, {upto:?}] limit {limit:?}");
            }
        }
    }
    let none = store
        .load_stream_window("thing", "nobody", 0, Some(end), None)
        .await
        .expect("a stream without events");
    assert!(none.is_empty());
}

/// What the queues recorded of one conversation: exactly the queue events whose payload names
/// it, in any queue, in log order, paged by `limit` — never another conversation's, nor
/// another stream type's.
async fn the_queue_events_naming_a_conversation_are_exactly_those(db: TestDb) {
    let store = db.open().await;
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let mut appended = Vec::new();
    for n in 0..12_i64 {
        let named = if n % 3 == 1 { a } else { b };
        let (aggregate_type, stream) = match n % 4 {
            0 => ("queue", "q1"),
            1 => ("queue", "q2"),
            2 => ("conversation", "c"),
            _ => ("queue", "q1"),
        };
        let expected = appended
            .iter()
            .filter(|e: &&store::StoredEvent| {
                e.aggregate_type == aggregate_type && e.aggregate_id == stream
            })
            .count() as i64;
        let mut event = crate::common::event(aggregate_type, stream, expected + 1, n);
        event.payload = serde_json::json!({"conversation_id": named, "n": n});
        let request = store::AppendRequest {
            events: vec![event],
            expected: vec![(aggregate_type.into(), stream.into(), expected)],
            idempotency: None,
        };
        appended.extend(store.append(request).await.expect("append"));
    }
    let end = appended.last().expect("events").position + 1;
    for after in 0..=end {
        for upto in after..=end {
            for limit in [1, 2, 500] {
                let found = store
                    .load_queue_events_naming(a, (after, upto), limit)
                    .await
                    .expect("load");
                let expected: Vec<_> = appended
                    .iter()
                    .filter(|e| e.position > after && e.position <= upto)
                    .filter(|e| e.aggregate_type == "queue")
                    .filter(|e| e.payload["conversation_id"] == a.to_string())
                    .take(limit as usize)
                    .cloned()
                    .collect();
                assert_eq!(found, expected, "({after}, {upto}] limit {limit}");
            }
        }
    }
    let all = store
        .load_queue_events_naming(a, (0, end), 500)
        .await
        .expect("everything");
    // n = 1, 4, 7, 10 name `a`; n = 10 is the conversation's own stream (10 % 4 = 2).
    assert_eq!(all.len(), 3, "{all:?}");
}
