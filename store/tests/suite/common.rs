//! Events and appends the store's tests share (the fresh store per backend is `store::testing`).

use serde_json::json;
use store::{AppendRequest, NewEvent};
use uuid::Uuid;

pub use store::testing::TestDb;

pub fn event(aggregate_type: &str, aggregate_id: &str, sequence: i64, n: i64) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        sequence,
        event_type: "ThingHappened".into(),
        event_version: "1".into(),
        payload: json!({"type": "ThingHappened", "n": n, "text": "héllo"}),
        actor: Some(json!({"agent_id": "a1"})),
    }
}

/// One request appending `count` events to a stream at `expected`.
pub fn append_to(aggregate_id: &str, expected: i64, count: i64) -> AppendRequest {
    AppendRequest {
        events: (1..=count)
            .map(|i| event("thing", aggregate_id, expected + i, i))
            .collect(),
        expected: vec![("thing".into(), aggregate_id.into(), expected)],
        idempotency: None,
    }
}
