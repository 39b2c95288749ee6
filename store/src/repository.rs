//! cqrs-es's `PersistedEventRepository` over our log, so cqrs-es's `PersistedEventStore` (and so
//! `CqrsFramework`, `QueryReplay`) can run on it when that is handy. The table shape follows
//! sqlite-es/postgres-es; the differences are the point (see the crate map).

use std::collections::BTreeMap;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;
use uuid::Uuid;

use crate::error::{AppendError, StoreError};
use crate::event::{NewEvent, StoredEvent};
use crate::log::{AppendRequest, EventStore};

/// Events per page when streaming.
const PAGE: usize = 500;

fn store_error(error: StoreError) -> PersistenceError {
    match error {
        StoreError::Corrupt(reason) => PersistenceError::DeserializationError(reason.into()),
        other => PersistenceError::ConnectionError(Box::new(other)),
    }
}

fn to_serialized(event: StoredEvent) -> Result<SerializedEvent, PersistenceError> {
    let sequence = usize::try_from(event.sequence)
        .map_err(|e| PersistenceError::DeserializationError(Box::new(e)))?;
    // cqrs-es metadata is a map of strings; our actor is any JSON, so one that isn't such a map
    // travels as {"actor": "<json>"}.
    let metadata = match event.actor {
        None => Value::Object(Default::default()),
        Some(Value::Object(map)) if map.values().all(Value::is_string) => Value::Object(map),
        Some(other) => serde_json::json!({ "actor": other.to_string() }),
    };
    Ok(SerializedEvent {
        aggregate_id: event.aggregate_id,
        sequence,
        aggregate_type: event.aggregate_type,
        event_type: event.event_type,
        event_version: event.event_version,
        payload: event.payload,
        metadata,
    })
}

fn to_serialized_all(events: Vec<StoredEvent>) -> Result<Vec<SerializedEvent>, PersistenceError> {
    events.into_iter().map(to_serialized).collect()
}

impl PersistedEventRepository for EventStore {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .load_stream(A::TYPE, aggregate_id)
            .await
            .map_err(store_error)?;
        to_serialized_all(events)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let after = i64::try_from(last_sequence).unwrap_or(i64::MAX);
        let events = self
            .load_stream_after(A::TYPE, aggregate_id, after)
            .await
            .map_err(store_error)?;
        to_serialized_all(events)
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        // Each stream's expected version is the one before its first new event.
        let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut new_events = Vec::with_capacity(events.len());
        for event in events {
            let sequence = i64::try_from(event.sequence)
                .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
            let stream = (event.aggregate_type.clone(), event.aggregate_id.clone());
            let first = expected.entry(stream).or_insert(sequence - 1);
            *first = (*first).min(sequence - 1);
            let actor = match &event.metadata {
                Value::Object(map) if map.is_empty() => None,
                Value::Null => None,
                other => Some(other.clone()),
            };
            new_events.push(NewEvent {
                event_id: Uuid::new_v4(),
                aggregate_type: event.aggregate_type.clone(),
                aggregate_id: event.aggregate_id.clone(),
                sequence,
                event_type: event.event_type.clone(),
                event_version: event.event_version.clone(),
                payload: event.payload.clone(),
                actor,
            });
        }
        let request = AppendRequest {
            events: new_events,
            expected: expected
                .into_iter()
                .map(|((aggregate_type, aggregate_id), version)| {
                    (aggregate_type, aggregate_id, version)
                })
                .collect(),
            idempotency: None,
        };
        match self.append(request).await {
            Ok(_) => Ok(()),
            Err(AppendError::Conflict) => Err(PersistenceError::OptimisticLockError),
            Err(AppendError::Unavailable(reason)) => {
                Err(PersistenceError::ConnectionError(reason.into()))
            }
            Err(other) => Err(PersistenceError::UnknownError(Box::new(other))),
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self.get_events::<A>(aggregate_id).await?;
        let (mut feed, stream) = ReplayStream::new(events.len().max(1));
        for event in events {
            feed.push(Ok(event)).await?;
        }
        Ok(stream)
    }

    /// Every event of `A`'s type, in global position order, read page by page from the feed.
    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let (mut feed, stream) = ReplayStream::new(PAGE);
        let store = self.clone();
        tokio::spawn(async move {
            let mut after = 0;
            loop {
                let page = match store.read_after(after, PAGE).await {
                    Ok(page) => page,
                    Err(error) => {
                        let _ = feed.push(Err(store_error(error))).await;
                        return;
                    }
                };
                let Some(last) = page.last() else { return };
                after = last.position;
                for event in page.into_iter().filter(|e| e.aggregate_type == A::TYPE) {
                    // A closed stream means the reader stopped listening.
                    if feed.push(to_serialized(event)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(stream)
    }
}
