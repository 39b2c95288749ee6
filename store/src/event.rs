//! The two shapes of an event in the log: what a writer hands in, and what the log gives back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event on its way into the log. `sequence` is the stream version this event creates
/// (the first event of a stream has sequence 1).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub actor: Option<serde_json::Value>,
}

/// An event as the log holds it. `position` is its place in the global feed: it rises in
/// commit order as readers see it, and numbers may be skipped.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub actor: Option<serde_json::Value>,
    pub recorded_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
}

impl StoredEvent {
    pub(crate) fn from_new(
        event: NewEvent,
        position: i64,
        recorded_at: DateTime<Utc>,
        idempotency_key: Option<String>,
    ) -> Self {
        Self {
            position,
            event_id: event.event_id,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            event_version: event.event_version,
            payload: event.payload,
            actor: event.actor,
            recorded_at,
            idempotency_key,
        }
    }
}
