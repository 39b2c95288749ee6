//! cqrs-es's own event store running on ours through `PersistedEventRepository`.

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, DomainEvent, EventStore as _};
use serde::{Deserialize, Serialize};
use store::EventStore;

use crate::common::TestDb;
use crate::on_both_backends;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    value: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum CounterEvent {
    Incremented { by: u32 },
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        "CounterIncremented".into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Aggregate for Counter {
    const TYPE: &'static str = "counter";
    type Command = u32;
    type Event = CounterEvent;
    type Error = Never;
    type Services = ();

    async fn handle(&mut self, by: u32, _: &(), sink: &EventSink<Self>) -> Result<(), Never> {
        sink.write(CounterEvent::Incremented { by }, self).await;
        Ok(())
    }

    fn apply(&mut self, CounterEvent::Incremented { by }: CounterEvent) {
        self.value += by;
    }
}

on_both_backends!(cqrs_es_runs_on_our_repository);

async fn cqrs_es_runs_on_our_repository(db: TestDb) {
    let store = db.open().await;
    let cqrs = CqrsFramework::new(
        PersistedEventStore::<EventStore, Counter>::new_event_store(store.clone()),
        vec![],
        (),
    );
    cqrs.execute("c1", 2).await.expect("first");
    cqrs.execute("c1", 3).await.expect("second");
    let stored = store.load_stream("counter", "c1").await.expect("load");
    assert_eq!(
        stored.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(stored[1].event_type, "CounterIncremented");

    // Two writers from the same version: the second gets cqrs-es's conflict.
    let events = PersistedEventStore::<EventStore, Counter>::new_event_store(store.clone());
    let stale_a = events.load_aggregate("c1").await.expect("load a");
    let stale_b = events.load_aggregate("c1").await.expect("load b");
    let by = |n| vec![CounterEvent::Incremented { by: n }];
    events
        .commit(by(1), stale_a, Default::default())
        .await
        .expect("first writer");
    let lost = events.commit(by(1), stale_b, Default::default()).await;
    assert!(
        matches!(lost, Err(AggregateError::AggregateConflict)),
        "{lost:?}"
    );
    let context = events.load_aggregate("c1").await.expect("reload");
    assert_eq!(context.aggregate.value, 6);

    let mut all = store.stream_all_events::<Counter>().await.expect("stream");
    let mut sequences = Vec::new();
    while let Some(envelope) = all.next::<Counter>(&[]).await {
        sequences.push(envelope.expect("event").sequence);
    }
    assert_eq!(sequences, vec![1, 2, 3]);
}
