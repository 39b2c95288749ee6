//! The command layer with a tiny queue: join adds a customer, pick takes the first one.

use std::collections::HashSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;
use store::command::Either;
use store::{CommandContext, CommandError, Commands, IdempotencyRecord};

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
