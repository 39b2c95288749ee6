//! A little process manager, and ways to wait for the projectors and to dump every
//! read-model row (the fresh store per backend is `store::testing`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::Aggregate;
use domain::conversation::Conversation;
use domain::process::{follow_ups, FollowUp};
use domain::queue::Queue;
use domain::Event;
use projections::runtime::{self, Options, Projection, Projectors};
use sqlx::{Column, Row};
use store::command::{CommandContext, Commands};
use store::event::StoredEvent;
use store::log::{Backend, EventStore};
use tokio::sync::watch;
use uuid::Uuid;

pub use store::testing::TestDb;

/// Running projectors with their shutdown switch.
pub struct Running {
    pub projectors: Projectors,
    stop: watch::Sender<bool>,
}

impl Running {
    pub fn start(
        store: &EventStore,
        projections: Vec<Arc<dyn Projection>>,
        options: Options,
    ) -> Running {
        let (stop, stopped) = watch::channel(false);
        let projectors = runtime::start(store.clone(), projections, options, stopped);
        Running { projectors, stop }
    }

    pub fn all(store: &EventStore) -> Running {
        Running::start(store, projections::all(), Options::default())
    }

    /// Waits until every projector has applied everything committed to the log now. (Not
    /// `head()`: on Postgres that waits for the oldest transaction in flight, which may be a
    /// projector's, so it can lag what was just appended.)
    pub async fn caught_up(&self, store: &EventStore) {
        let head = last_committed(store).await;
        self.projectors
            .statuses
            .wait_for(head, Duration::from_secs(20))
            .await
            .expect("the projectors catch up");
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.projectors.join().await;
    }
}

/// The highest position committed to the log, whatever is still in flight.
pub async fn last_committed(store: &EventStore) -> i64 {
    let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
    match store.backend() {
        Backend::Sqlite(pool, _) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Backend::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .expect("the last position")
}

/// Commands, with the process manager's follow-ups run at once after each, as the gateway does.
#[derive(Clone)]
pub struct World {
    pub store: EventStore,
    pub commands: Commands,
}

impl World {
    pub fn new(store: &EventStore) -> World {
        World {
            store: store.clone(),
            commands: Commands::new(store.clone()),
        }
    }

    /// Runs `command` on aggregate `A` (and every follow-up); the domain's refusal as `Err`.
    pub async fn run<A>(&self, id: Uuid, command: A::Command) -> Result<Vec<StoredEvent>, String>
    where
        A: domain::Snapshot + Aggregate<Services = ()>,
        A::Command: Clone,
    {
        let ctx = CommandContext::default();
        let executed = self
            .commands
            .execute::<A>(&id.to_string(), command, &(), &ctx)
            .await
            .map_err(|e| e.to_string())?;
        self.follow(&executed.events).await;
        Ok(executed.events)
    }

    /// Like `run`, for commands the test expects to succeed.
    pub async fn ok<A>(&self, id: Uuid, command: A::Command) -> Vec<StoredEvent>
    where
        A: domain::Snapshot + Aggregate<Services = ()>,
        A::Command: Clone,
    {
        self.run::<A>(id, command)
            .await
            .expect("the command succeeds")
    }

    async fn follow(&self, events: &[StoredEvent]) {
        let mut pending: Vec<StoredEvent> = events.to_vec();
        while let Some(stored) = pending.first().cloned() {
            pending.remove(0);
            let event = Event::decode(&stored.aggregate_type, stored.payload.clone())
                .expect("a decodable event");
            for follow_up in follow_ups(stored.event_id, &event) {
                let ctx = CommandContext::default();
                let more = match follow_up {
                    FollowUp::Queue { queue_id, command } => self
                        .commands
                        .execute::<Queue>(&queue_id.to_string(), command, &(), &ctx)
                        .await
                        .map(|e| e.events)
                        .unwrap_or_default(),
                    FollowUp::Conversation {
                        conversation_id,
                        command,
                    } => self
                        .commands
                        .execute::<Conversation>(&conversation_id.to_string(), command, &(), &ctx)
                        .await
                        .map(|e| e.events)
                        .unwrap_or_default(),
                    FollowUp::Transfer {
                        queue_id,
                        transfer_in,
                        conversation_id,
                        requeue,
                    } => self
                        .commands
                        .execute_pair::<Queue, Conversation>(
                            (&queue_id.to_string(), transfer_in),
                            (&conversation_id.to_string(), requeue),
                            (&(), &()),
                            &ctx,
                        )
                        .await
                        .map(|(a, b)| a.events.into_iter().chain(b.events).collect())
                        .unwrap_or_default(),
                    FollowUp::Workload {
                        workload_id,
                        command,
                    } => self
                        .commands
                        .execute::<domain::workload::Workload>(
                            &workload_id.to_string(),
                            command,
                            &(),
                            &ctx,
                        )
                        .await
                        .map(|e| e.events)
                        .unwrap_or_default(),
                };
                pending.extend(more);
            }
        }
    }
}

/// Every row of every table of `projections`, each row as text, sorted.
/// Rebuilds each of `projections` on its own (fresh tables, swapped in).
pub async fn rebuild_each(store: &EventStore, projections: &[Arc<dyn Projection>]) {
    for projection in projections {
        runtime::rebuild(store, projection.as_ref(), &Options::default(), &|_| {})
            .await
            .unwrap();
    }
}

pub async fn dump(
    backend: &Backend,
    projections: &[Arc<dyn Projection>],
) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out = BTreeMap::new();
    for projection in projections {
        for table in projection.tables() {
            let sql = format!("SELECT * FROM {}", table.name);
            let mut rows: Vec<Vec<String>> = match backend {
                Backend::Sqlite(pool, _) => sqlx::query(&sql)
                    .fetch_all(pool)
                    .await
                    .expect("read a table")
                    .iter()
                    .map(|row| {
                        (0..row.columns().len())
                            .map(|i| {
                                let name = row.columns()[i].name().to_owned();
                                let value = row
                                    .try_get::<Option<String>, _>(i)
                                    .map(|v| format!("{v:?}"))
                                    .or_else(|_| {
                                        row.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}"))
                                    })
                                    .expect("a TEXT or BIGINT column");
                                format!("{name}={value}")
                            })
                            .collect()
                    })
                    .collect(),
                Backend::Postgres(pool) => sqlx::query(&sql)
                    .fetch_all(pool)
                    .await
                    .expect("read a table")
                    .iter()
                    .map(|row| {
                        (0..row.columns().len())
                            .map(|i| {
                                let name = row.columns()[i].name().to_owned();
                                let value = row
                                    .try_get::<Option<String>, _>(i)
                                    .map(|v| format!("{v:?}"))
                                    .or_else(|_| {
                                        row.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}"))
                                    })
                                    .expect("a TEXT or BIGINT column");
                                format!("{name}={value}")
                            })
                            .collect()
                    })
                    .collect(),
            };
            rows.sort();
            out.insert(table.name.to_owned(), rows);
        }
    }
    out
}
