use store::{AppendError, AppendRequest, IdempotencyRecord};

use crate::common::{append_to, TestDb};
use crate::on_both_backends;

on_both_backends!(
    a_key_is_recorded_with_its_events_and_cannot_be_reused,
    a_request_without_events_still_records_its_key,
    a_refused_request_leaves_its_key_free,
);

fn record(key: &str, hash: &str) -> Option<IdempotencyRecord> {
    Some(IdempotencyRecord {
        key: key.into(),
        request_hash: hash.into(),
    })
}

async fn a_key_is_recorded_with_its_events_and_cannot_be_reused(db: TestDb) {
    let store = db.open().await;
    store
        .append(append_to("other", 0, 1))
        .await
        .expect("unrelated");
    let mut request = append_to("a", 0, 2);
    request.idempotency = record("org1:agent1:k1", "h1");
    let stored = store.append(request).await.expect("append");
    assert!(stored
        .iter()
        .all(|e| e.idempotency_key.as_deref() == Some("org1:agent1:k1")));

    let (hash, events) = store
        .find_idempotent("org1:agent1:k1")
        .await
        .expect("find")
        .expect("recorded");
    assert_eq!(hash, "h1");
    assert_eq!(events, stored);
    assert_eq!(
        store.find_idempotent("org1:agent1:k2").await.expect("find"),
        None
    );

    let mut again = append_to("a", 2, 1);
    again.idempotency = record("org1:agent1:k1", "h1");
    assert_eq!(
        store.append(again).await,
        Err(AppendError::DuplicateIdempotencyKey)
    );
    assert_eq!(
        store.load_stream("thing", "a").await.expect("load").len(),
        2
    );
}

async fn a_request_without_events_still_records_its_key(db: TestDb) {
    let store = db.open().await;
    let request = AppendRequest {
        events: vec![],
        expected: vec![],
        idempotency: record("k-empty", "h"),
    };
    assert_eq!(store.append(request.clone()).await, Ok(vec![]));
    assert_eq!(
        store.find_idempotent("k-empty").await.expect("find"),
        Some(("h".to_string(), vec![]))
    );
    assert_eq!(
        store.append(request).await,
        Err(AppendError::DuplicateIdempotencyKey)
    );
}

async fn a_refused_request_leaves_its_key_free(db: TestDb) {
    let store = db.open().await;
    store.append(append_to("a", 0, 1)).await.expect("append");
    let mut stale = append_to("a", 0, 1);
    stale.idempotency = record("k", "h");
    assert_eq!(store.append(stale).await, Err(AppendError::Conflict));
    assert_eq!(store.find_idempotent("k").await.expect("find"), None);
    let mut fresh = append_to("a", 1, 1);
    fresh.idempotency = record("k", "h");
    store.append(fresh).await.expect("the key is still free");
}
