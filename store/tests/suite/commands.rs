//! The command layer with a tiny queue: join adds a customer, pick takes the first one.

use std::collections::HashSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::command::Either;
use store::snapshot::StoredSnapshot;
use store::{AppendRequest, EventStore, NewEvent};
use store::{CommandContext, CommandError, Commands, IdempotencyRecord};
use uuid::Uuid;

use crate::common::TestDb;
use crate::on_both_backends;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Queue {
    waiting: Vec<String>,
}

#[derive(Debug, Clone)]
enum QueueCommand {
    Join { customer: String },
    Pick { agent: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum QueueEvent {
    Joined { customer: String },
    Picked { customer: String, agent: String },
}

impl DomainEvent for QueueEvent {
    fn event_type(&self) -> String {
        match self {
            QueueEvent::Joined { .. } => "CustomerJoinedQueue".into(),
            QueueEvent::Picked { .. } => "CustomerPicked".into(),
        }
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum QueueError {
    #[error("nobody is waiting")]
    NobodyWaiting,
}

impl domain::Snapshot for Queue {
    const SNAPSHOT_VERSION: u32 = 1;
}

impl Aggregate for Queue {
    const TYPE: &'static str = "queue";
    type Command = QueueCommand;
    type Event = QueueEvent;
    type Error = QueueError;
    type Services = ();

    async fn handle(
        &mut self,
        command: QueueCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), QueueError> {
        let event = match command {
            QueueCommand::Join { customer } => QueueEvent::Joined { customer },
            QueueCommand::Pick { agent } => {
                let customer = self
                    .waiting
                    .first()
                    .ok_or(QueueError::NobodyWaiting)?
                    .clone();
                QueueEvent::Picked { customer, agent }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: QueueEvent) {
        match event {
            QueueEvent::Joined { customer } => self.waiting.push(customer),
            QueueEvent::Picked { customer, .. } => self.waiting.retain(|c| *c != customer),
        }
    }
}

on_both_backends!(
    each_waiting_customer_is_picked_by_exactly_one_agent,
    a_command_runs_and_its_events_load_back,
    a_repeated_key_replays_the_first_answer,
    a_key_reused_for_another_request_is_a_mismatch,
    concurrent_twins_with_one_key_append_once,
    a_pair_lands_whole_or_not_at_all,
    three_streams_land_whole_or_not_at_all,
    a_process_sees_what_another_appended_since_it_cached,
    a_command_on_what_this_process_wrote_last_reads_nothing_and_a_refusal_is_confirmed,
    two_processes_racing_lose_no_join_and_pick_no_one_twice,
    a_snapshot_is_the_fold_of_the_events_up_to_its_version,
    a_snapshot_of_another_fold_version_is_ignored,
    an_unreadable_snapshot_falls_back_to_the_log,
    a_crash_between_an_append_and_its_snapshot_still_loads_right,
    the_metrics_say_where_each_aggregate_came_from_and_how_long_appends_took,
);

fn join(customer: &str) -> QueueCommand {
    QueueCommand::Join {
        customer: customer.into(),
    }
}

fn pick(agent: &str) -> QueueCommand {
    QueueCommand::Pick {
        agent: agent.into(),
    }
}

fn keyed(key: &str, hash: &str) -> CommandContext {
    CommandContext {
        actor: Some(json!({"agent_id": "a1"})),
        idempotency: Some(IdempotencyRecord {
            key: key.into(),
            request_hash: hash.into(),
        }),
    }
}

async fn each_waiting_customer_is_picked_by_exactly_one_agent(db: TestDb) {
    let commands = Commands::new(db.open().await);
    for i in 0..10 {
        commands
            .execute::<Queue>(
                "q1",
                join(&format!("c{i}")),
                &(),
                &CommandContext::default(),
            )
            .await
            .expect("join");
    }
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let commands = commands.clone();
            tokio::spawn(async move {
                commands
                    .execute::<Queue>(
                        "q1",
                        pick(&format!("agent{i}")),
                        &(),
                        &CommandContext::default(),
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut nobody_waiting = 0;
    for racer in racers {
        match racer.await.expect("task") {
            Ok(executed) => match executed.typed.as_slice() {
                [QueueEvent::Picked { customer, .. }] => winners.push(customer.clone()),
                other => panic!("a pick emitted {other:?}"),
            },
            Err(CommandError::Rejected(QueueError::NobodyWaiting)) => nobody_waiting += 1,
            Err(other) => {
                panic!("a racer failed instead of winning or hearing NobodyWaiting: {other:?}")
            }
        }
    }
    let distinct: HashSet<_> = winners.iter().collect();
    assert_eq!(winners.len(), 10);
    assert_eq!(
        distinct.len(),
        10,
        "a customer was picked twice: {winners:?}"
    );
    assert_eq!(nobody_waiting, 10);
    let (queue, version) = commands.load::<Queue>("q1").await.expect("load");
    assert!(queue.waiting.is_empty());
    assert_eq!(version, 20);
}

async fn a_command_runs_and_its_events_load_back(db: TestDb) {
    let commands = Commands::new(db.open().await);
    let ctx = CommandContext {
        actor: Some(json!({"agent_id": "a1"})),
        idempotency: None,
    };
    let joined = commands
        .execute::<Queue>("q1", join("c1"), &(), &ctx)
        .await
        .expect("join");
    assert_eq!(joined.version, 1);
    assert!(!joined.replayed);
    assert_eq!(joined.events[0].event_type, "CustomerJoinedQueue");
    assert_eq!(
        joined.events[0].payload,
        json!({"type": "Joined", "customer": "c1"})
    );
    assert_eq!(joined.events[0].actor, ctx.actor);

    let picked = commands
        .execute::<Queue>("q1", pick("a1"), &(), &ctx)
        .await
        .expect("pick");
    assert_eq!(picked.version, 2);
    assert_eq!(
        picked.typed,
        vec![QueueEvent::Picked {
            customer: "c1".into(),
            agent: "a1".into()
        }]
    );
    let refused = commands.execute::<Queue>("q1", pick("a2"), &(), &ctx).await;
    assert!(matches!(
        refused,
        Err(CommandError::Rejected(QueueError::NobodyWaiting))
    ));
    assert_eq!(
        commands
            .store()
            .load_stream("queue", "q1")
            .await
            .expect("load")
            .len(),
        2
    );
}

async fn a_repeated_key_replays_the_first_answer(db: TestDb) {
    let commands = Commands::new(db.open().await);
    let first = commands
        .execute::<Queue>("q1", join("c1"), &(), &keyed("k1", "h1"))
        .await
        .expect("join");
    let again = commands
        .execute::<Queue>("q1", join("c1"), &(), &keyed("k1", "h1"))
        .await
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(again.events, first.events);
    assert_eq!(again.typed, first.typed);
    assert_eq!(again.version, 1);
    assert_eq!(
        commands.store().head().await.expect("head"),
        first.events[0].position
    );
}

async fn a_key_reused_for_another_request_is_a_mismatch(db: TestDb) {
    let commands = Commands::new(db.open().await);
    commands
        .execute::<Queue>("q1", join("c1"), &(), &keyed("k1", "h1"))
        .await
        .expect("join");
    let other = commands
        .execute::<Queue>("q1", join("c2"), &(), &keyed("k1", "h2"))
        .await;
    assert!(
        matches!(other, Err(CommandError::IdempotencyMismatch)),
        "{other:?}"
    );
    assert_eq!(
        commands
            .store()
            .load_stream("queue", "q1")
            .await
            .expect("load")
            .len(),
        1
    );
}

async fn concurrent_twins_with_one_key_append_once(db: TestDb) {
    let commands = Commands::new(db.open().await);
    let twins: Vec<_> = (0..2)
        .map(|_| {
            let commands = commands.clone();
            tokio::spawn(async move {
                commands
                    .execute::<Queue>("q1", join("c1"), &(), &keyed("twin", "h"))
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for twin in twins {
        answers.push(twin.await.expect("task").expect("both twins succeed"));
    }
    assert_eq!(answers[0].events, answers[1].events);
    assert_eq!(answers.iter().filter(|a| a.replayed).count(), 1);
    assert_eq!(
        commands
            .store()
            .load_stream("queue", "q1")
            .await
            .expect("load")
            .len(),
        1
    );
}

/// `execute_pair`: a join in one queue and a pick in another either both land or neither does,
/// also when twenty pairs race for ten waiting customers.
async fn a_pair_lands_whole_or_not_at_all(db: TestDb) {
    let commands = Commands::new(db.open().await);
    let ctx = CommandContext::default();
    let refused = commands
        .execute_pair::<Queue, Queue>(("q2", join("x")), ("q1", pick("a")), (&(), &()), &ctx)
        .await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Rejected(Either::Second(
                QueueError::NobodyWaiting
            )))
        ),
        "{refused:?}"
    );
    assert_eq!(commands.load::<Queue>("q2").await.expect("load").1, 0);

    for i in 0..10 {
        commands
            .execute::<Queue>("q1", join(&format!("c{i}")), &(), &ctx)
            .await
            .expect("join");
    }
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let commands = commands.clone();
            tokio::spawn(async move {
                commands
                    .execute_pair::<Queue, Queue>(
                        ("q2", join(&format!("moved{i}"))),
                        ("q1", pick(&format!("agent{i}"))),
                        (&(), &()),
                        &CommandContext::default(),
                    )
                    .await
            })
        })
        .collect();
    let (mut landed, mut refused) = (0, 0);
    for racer in racers {
        match racer.await.expect("task") {
            Ok((joined, picked)) => {
                assert_eq!(joined.events.len(), 1);
                assert_eq!(picked.events.len(), 1);
                landed += 1;
            }
            Err(CommandError::Rejected(Either::Second(QueueError::NobodyWaiting))) => refused += 1,
            Err(other) => panic!("a pair failed otherwise: {other:?}"),
        }
    }
    assert_eq!((landed, refused), (10, 10));
    let (q1, _) = commands.load::<Queue>("q1").await.expect("load");
    let (q2, q2_version) = commands.load::<Queue>("q2").await.expect("load");
    assert!(q1.waiting.is_empty());
    assert_eq!(q2.waiting.len(), 10, "a join landed without its pick");
    assert_eq!(q2_version, 10);
}

/// `execute_three`: joins in two queues and a pick in a third all land or none does, also when
/// twenty of them race for ten waiting customers; a repeated key replays all three answers.
async fn three_streams_land_whole_or_not_at_all(db: TestDb) {
    let commands = Commands::new(db.open().await);
    let ctx = CommandContext::default();
    let three = |i: usize| {
        (
            ("q2", join(&format!("moved{i}"))),
            ("q3", join(&format!("also{i}"))),
            ("q1", pick(&format!("agent{i}"))),
        )
    };
    let (first, second, third) = three(0);
    let refused = commands
        .execute_three::<Queue, Queue, Queue>(first, second, third, (&(), &(), &()), &ctx)
        .await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Rejected(Either::Second(Either::Second(
                QueueError::NobodyWaiting
            ))))
        ),
        "{refused:?}"
    );
    assert_eq!(commands.load::<Queue>("q2").await.expect("load").1, 0);
    assert_eq!(commands.load::<Queue>("q3").await.expect("load").1, 0);

    for i in 0..10 {
        commands
            .execute::<Queue>("q1", join(&format!("c{i}")), &(), &ctx)
            .await
            .expect("join");
    }
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let commands = commands.clone();
            tokio::spawn(async move {
                let (first, second, third) = three(i);
                commands
                    .execute_three::<Queue, Queue, Queue>(
                        first,
                        second,
                        third,
                        (&(), &(), &()),
                        &CommandContext::default(),
                    )
                    .await
            })
        })
        .collect();
    let (mut landed, mut refused) = (0, 0);
    for racer in racers {
        match racer.await.expect("task") {
            Ok((a, b, c)) => {
                assert_eq!((a.events.len(), b.events.len(), c.events.len()), (1, 1, 1));
                landed += 1;
            }
            Err(CommandError::Rejected(Either::Second(Either::Second(
                QueueError::NobodyWaiting,
            )))) => refused += 1,
            Err(other) => panic!("three commands failed otherwise: {other:?}"),
        }
    }
    assert_eq!((landed, refused), (10, 10));
    let (q1, _) = commands.load::<Queue>("q1").await.expect("load");
    let (q2, q2_version) = commands.load::<Queue>("q2").await.expect("load");
    let (q3, q3_version) = commands.load::<Queue>("q3").await.expect("load");
    assert!(q1.waiting.is_empty());
    assert_eq!(
        (q2.waiting.len(), q2_version),
        (10, 10),
        "a join landed alone"
    );
    assert_eq!(
        (q3.waiting.len(), q3_version),
        (10, 10),
        "a join landed alone"
    );

    // A key: the second run appends nothing and answers what the first did, stream by stream.
    commands
        .execute::<Queue>("q1", join("last"), &(), &ctx)
        .await
        .expect("join");
    let keyed_ctx = keyed("three", "h");
    let (first, second, third) = three(99);
    let done = commands
        .execute_three::<Queue, Queue, Queue>(first, second, third, (&(), &(), &()), &keyed_ctx)
        .await
        .expect("three");
    let (first, second, third) = three(99);
    let again = commands
        .execute_three::<Queue, Queue, Queue>(first, second, third, (&(), &(), &()), &keyed_ctx)
        .await
        .expect("replayed");
    assert!(again.0.replayed && again.1.replayed && again.2.replayed);
    assert_eq!(again.0.events, done.0.events);
    assert_eq!(again.1.events, done.1.events);
    assert_eq!(again.2.events, done.2.events);
    assert_eq!(commands.load::<Queue>("q2").await.expect("load").1, 11);

    // One stream named twice is no command.
    let named_twice = commands
        .execute_three::<Queue, Queue, Queue>(
            ("q2", join("x")),
            ("q2", join("y")),
            ("q1", pick("a")),
            (&(), &(), &()),
            &ctx,
        )
        .await;
    assert!(matches!(named_twice, Err(CommandError::Unavailable(_))));
}

// ---- the cache and snapshots (invariant 10) ----

const NO_CONTEXT: CommandContext = CommandContext {
    actor: None,
    idempotency: None,
};

/// The queue folded from every event of its stream, the slow way, with its version.
async fn replayed(store: &EventStore, id: &str) -> (Vec<String>, i64) {
    let mut queue = Queue::default();
    let mut version = 0;
    for event in store.load_stream("queue", id).await.expect("the stream") {
        queue.apply(serde_json::from_value(event.payload).expect("an event"));
        version = event.sequence;
    }
    (queue.waiting, version)
}

/// Waits until the snapshot of `id` has reached `version` (it is written in a task of its own).
async fn snapshot_at(store: &EventStore, id: &str, version: i64) -> StoredSnapshot {
    for _ in 0..2_000 {
        if let Some(snapshot) = store.load_snapshot("queue", id, 1).await.expect("read") {
            if snapshot.version >= version {
                return snapshot;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("no snapshot of {id} at {version} was ever written");
}

async fn a_process_sees_what_another_appended_since_it_cached(db: TestDb) {
    // Two processes' worth: a store and a cache each, one log.
    let (one, two) = (
        Commands::new(db.open().await),
        Commands::new(db.open().await),
    );
    one.execute::<Queue>("q1", join("c1"), &(), &NO_CONTEXT)
        .await
        .expect("join");
    // `one` has q1 cached at version 1; `two` appends behind its back.
    two.execute::<Queue>("q1", join("c2"), &(), &NO_CONTEXT)
        .await
        .expect("join");
    let first = one
        .execute::<Queue>("q1", pick("a1"), &(), &NO_CONTEXT)
        .await
        .expect("pick");
    assert_eq!(
        first.version, 3,
        "decided on the stream as it is, not as cached"
    );
    let second = one
        .execute::<Queue>("q1", pick("a2"), &(), &NO_CONTEXT)
        .await
        .expect("c2 waits too: the cache was caught up");
    assert!(
        matches!(second.typed.as_slice(), [QueueEvent::Picked { customer, .. }] if customer == "c2")
    );
    // And `two`, whose cache is two events behind, finds nobody.
    assert!(matches!(
        two.execute::<Queue>("q1", pick("a3"), &(), &NO_CONTEXT)
            .await,
        Err(CommandError::Rejected(QueueError::NobodyWaiting))
    ));
    // A refusal appends nothing, so no expected version would catch a stale cache: `two` has
    // the empty line cached when `one` lets c3 in, and must not refuse on what it cached.
    one.execute::<Queue>("q1", join("c3"), &(), &NO_CONTEXT)
        .await
        .expect("join");
    let third = two
        .execute::<Queue>("q1", pick("a3"), &(), &NO_CONTEXT)
        .await
        .expect("c3 waits");
    assert!(
        matches!(third.typed.as_slice(), [QueueEvent::Picked { customer, .. }] if customer == "c3")
    );
}

/// A command on a stream this process wrote last takes the events after its cached aggregate
/// from memory (usually none), without reading the database. A decision that appends nothing
/// is not guarded by an expected-version check, so when it was made on memory alone the
/// database confirms it: another process's join, made just before and maybe not yet heard of
/// here, must not leave a pick refused as if nobody waited.
async fn a_command_on_what_this_process_wrote_last_reads_nothing_and_a_refusal_is_confirmed(
    db: TestDb,
) {
    let (one, two) = (
        Commands::new(db.open().await),
        Commands::new(db.open().await),
    );
    let metrics = one.store().metrics();
    one.execute::<Queue>("q1", join("c1"), &(), &NO_CONTEXT)
        .await
        .expect("join");
    let from_memory = metrics.aggregate_catch_ups_from_memory();
    let from_database = metrics.aggregate_catch_ups_from_database();
    let picked = one
        .execute::<Queue>("q1", pick("a1"), &(), &NO_CONTEXT)
        .await
        .expect("pick");
    assert_eq!(picked.version, 2);
    assert!(matches!(
        one.execute::<Queue>("q1", pick("a2"), &(), &NO_CONTEXT)
            .await,
        Err(CommandError::Rejected(QueueError::NobodyWaiting))
    ));
    assert_eq!(metrics.aggregate_catch_ups_from_memory(), from_memory + 2);
    assert_eq!(metrics.aggregate_catch_ups_from_database(), from_database);

    two.execute::<Queue>("q1", join("c2"), &(), &NO_CONTEXT)
        .await
        .expect("join");
    let third = one
        .execute::<Queue>("q1", pick("a3"), &(), &NO_CONTEXT)
        .await
        .expect("c2 waits");
    assert!(
        matches!(third.typed.as_slice(), [QueueEvent::Picked { customer, .. }] if customer == "c2")
    );
    assert_eq!(third.version, 4);
}

async fn two_processes_racing_lose_no_join_and_pick_no_one_twice(db: TestDb) {
    // Snapshots every 3 events, so they are taken (in both processes) during the race.
    let processes = [
        Commands::new(db.open().await).with_snapshot_every(3),
        Commands::new(db.open().await).with_snapshot_every(3),
    ];
    let joins: Vec<_> = (0..40)
        .map(|i| {
            let commands = processes[i % 2].clone();
            tokio::spawn(async move {
                commands
                    .execute::<Queue>("q1", join(&format!("c{i}")), &(), &NO_CONTEXT)
                    .await
            })
        })
        .collect();
    for joined in joins {
        joined.await.expect("task").expect("every join lands");
    }
    let picks: Vec<_> = (0..50)
        .map(|i| {
            let commands = processes[i % 2].clone();
            tokio::spawn(async move {
                commands
                    .execute::<Queue>("q1", pick(&format!("agent{i}")), &(), &NO_CONTEXT)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut nobody = 0;
    for picked in picks {
        match picked.await.expect("task") {
            Ok(executed) => match executed.typed.as_slice() {
                [QueueEvent::Picked { customer, .. }] => winners.push(customer.clone()),
                other => panic!("a pick emitted {other:?}"),
            },
            Err(CommandError::Rejected(QueueError::NobodyWaiting)) => nobody += 1,
            Err(other) => panic!("a pick failed: {other:?}"),
        }
    }
    let distinct: HashSet<_> = winners.iter().collect();
    assert_eq!((winners.len(), distinct.len(), nobody), (40, 40, 10));
    let store = db.open().await;
    assert_eq!(replayed(&store, "q1").await, (vec![], 80));
    // Both processes, and a third one starting from the snapshot, agree with the log.
    for commands in [&processes[0], &processes[1], &Commands::new(store.clone())] {
        let (queue, version) = commands.load::<Queue>("q1").await.expect("load");
        assert_eq!((queue.waiting, version), (vec![], 80));
    }
}

async fn a_snapshot_is_the_fold_of_the_events_up_to_its_version(db: TestDb) {
    let store = db.open().await;
    let commands = Commands::new(store.clone()).with_snapshot_every(4);
    for i in 0..10 {
        commands
            .execute::<Queue>("q1", join(&format!("c{i}")), &(), &NO_CONTEXT)
            .await
            .expect("join");
    }
    commands
        .execute::<Queue>("q1", pick("a1"), &(), &NO_CONTEXT)
        .await
        .expect("pick");
    let snapshot = snapshot_at(&store, "q1", 8).await;
    assert_eq!(snapshot.version, 8);
    let mut folded = Queue::default();
    for event in store.load_stream("queue", "q1").await.expect("stream") {
        if event.sequence <= snapshot.version {
            folded.apply(serde_json::from_value(event.payload).expect("an event"));
        }
    }
    assert_eq!(snapshot.state, serde_json::to_value(&folded).expect("json"));
}

/// Three customers in `id` through one process, and a planted snapshot saying otherwise.
async fn with_a_planted_snapshot(
    db: &TestDb,
    id: &str,
    fold_version: u32,
    state: serde_json::Value,
) -> EventStore {
    let store = db.open().await;
    let commands = Commands::new(store.clone());
    for customer in ["c1", "c2", "c3"] {
        commands
            .execute::<Queue>(id, join(customer), &(), &NO_CONTEXT)
            .await
            .expect("join");
    }
    let planted = StoredSnapshot { version: 3, state };
    store
        .save_snapshot("queue", id, fold_version, &planted)
        .await
        .expect("a snapshot");
    store
}

async fn a_snapshot_of_another_fold_version_is_ignored(db: TestDb) {
    // Taken by an older fold (0) and by a newer one (2): this code's fold is version 1.
    for fold_version in [0, 2] {
        let id = format!("q{fold_version}");
        let ghost = json!({"waiting": ["ghost"]});
        let store = with_a_planted_snapshot(&db, &id, fold_version, ghost).await;
        let fresh = Commands::new(store.clone());
        let (queue, version) = fresh.load::<Queue>(&id).await.expect("load");
        assert_eq!(
            (queue.waiting, version),
            (vec!["c1".to_owned(), "c2".into(), "c3".into()], 3)
        );
        let picked = fresh
            .execute::<Queue>(&id, pick("a1"), &(), &NO_CONTEXT)
            .await
            .expect("pick");
        assert!(
            matches!(picked.typed.as_slice(), [QueueEvent::Picked { customer, .. }] if customer == "c1")
        );
    }
}

async fn an_unreadable_snapshot_falls_back_to_the_log(db: TestDb) {
    // Right fold version, but not a state this fold can read.
    let store = with_a_planted_snapshot(&db, "q1", 1, json!({"waiting": 42})).await;
    let fresh = Commands::new(store.clone());
    let (queue, version) = fresh.load::<Queue>("q1").await.expect("load");
    assert_eq!(
        (queue.waiting, version),
        (vec!["c1".to_owned(), "c2".into(), "c3".into()], 3)
    );
    fresh
        .execute::<Queue>("q1", pick("a1"), &(), &NO_CONTEXT)
        .await
        .expect("pick");
    assert_eq!(replayed(&store, "q1").await.0, ["c2", "c3"]);
}

async fn a_crash_between_an_append_and_its_snapshot_still_loads_right(db: TestDb) {
    let store = db.open().await;
    let commands = Commands::new(store.clone()).with_snapshot_every(5);
    for i in 1..=7 {
        commands
            .execute::<Queue>("q1", join(&format!("c{i}")), &(), &NO_CONTEXT)
            .await
            .expect("join");
    }
    snapshot_at(&store, "q1", 5).await;
    // A process appends events 8..=12 and dies before writing the snapshot due at 10.
    let events = (8..=12)
        .map(|sequence| NewEvent {
            event_id: Uuid::new_v4(),
            aggregate_type: "queue".into(),
            aggregate_id: "q1".into(),
            sequence,
            event_type: "CustomerJoinedQueue".into(),
            event_version: "1".into(),
            payload: json!({"type": "Joined", "customer": format!("c{sequence}")}),
            actor: None,
        })
        .collect();
    store
        .append(AppendRequest {
            events,
            expected: vec![("queue".into(), "q1".into(), 7)],
            idempotency: None,
        })
        .await
        .expect("the append before the crash");
    assert_eq!(snapshot_at(&store, "q1", 5).await.version, 5);
    // A new process starts from the snapshot at 5 and folds 6..=12; the old one catches its
    // cache (at 7) up. Both decide on all twelve.
    for commands in [Commands::new(db.open().await), commands] {
        let (queue, version) = commands.load::<Queue>("q1").await.expect("load");
        assert_eq!(version, 12);
        assert_eq!(queue.waiting.len(), 12);
    }
    let fresh = Commands::new(db.open().await);
    for n in 1..=12 {
        let picked = fresh
            .execute::<Queue>("q1", pick("a1"), &(), &NO_CONTEXT)
            .await
            .expect("pick");
        assert!(
            matches!(picked.typed.as_slice(), [QueueEvent::Picked { customer, .. }] if *customer == format!("c{n}"))
        );
    }
    assert!(matches!(
        fresh
            .execute::<Queue>("q1", pick("a1"), &(), &NO_CONTEXT)
            .await,
        Err(CommandError::Rejected(QueueError::NobodyWaiting))
    ));
}

/// `/metrics`' part from the store: `jono_aggregate_loads_total` by source (log, cache,
/// snapshot), snapshots written, and one append-time observation per append.
async fn the_metrics_say_where_each_aggregate_came_from_and_how_long_appends_took(db: TestDb) {
    let store = db.open().await;
    let commands = Commands::new(store.clone()).with_snapshot_every(4);
    for i in 0..10 {
        commands
            .execute::<Queue>("q1", join(&format!("c{i}")), &(), &NO_CONTEXT)
            .await
            .expect("join");
    }
    snapshot_at(&store, "q1", 8).await;
    // A process with an empty cache starts from the snapshot.
    Commands::new(store.clone())
        .execute::<Queue>("q1", pick("a1"), &(), &NO_CONTEXT)
        .await
        .expect("pick");
    let rendered = || {
        let mut text = String::new();
        store.metrics().render_prometheus(&mut text);
        text
    };
    // The snapshot's task counts it just after writing it.
    for _ in 0..100 {
        if !rendered().contains("jono_snapshots_written_total 0") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let text = rendered();
    for line in [
        "jono_aggregate_loads_total{source=\"log\"} 1",
        "jono_aggregate_loads_total{source=\"cache\"} 9",
        "jono_aggregate_loads_total{source=\"snapshot\"} 1",
        "jono_store_append_seconds_count 11",
    ] {
        assert!(
            text.lines().any(|found| found == line),
            "{line} in:\n{text}"
        );
    }
    assert!(
        !text.contains("jono_snapshots_written_total 0"),
        "a snapshot written: {text}"
    );
    assert!(
        text.contains("jono_store_commit_seconds_count{backend="),
        "{text}"
    );
}
