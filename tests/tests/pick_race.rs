//! Invariant 2, one winner, on the real domain and the real store (both backends): 20 agents
//! racing for 10 waiting customers get 10 distinct customers and 10 clean refusals.

use std::collections::BTreeSet;

use domain::queue::{Queue, QueueCommand, QueueError, QueueEvent};
use domain::values::Name;
use store::{CommandContext, CommandError, Commands, EventStore};
use uuid::Uuid;

async fn race(store: EventStore) {
    let commands = Commands::new(store);
    let ctx = CommandContext::default();
    let queue_id = Uuid::new_v4();
    let id = queue_id.to_string();
    let run = |command| {
        let commands = commands.clone();
        let ctx = ctx.clone();
        let id = id.clone();
        async move { commands.execute::<Queue>(&id, command, &(), &ctx).await }
    };
    let name = Name::parse("Support").unwrap();
    run(QueueCommand::CreateQueue {
        queue_id,
        organization_id: Uuid::new_v4(),
        name,
    })
    .await
    .unwrap();
    run(QueueCommand::OpenQueue {
        by: None,
        by_operator: false,
    })
    .await
    .unwrap();
    let agents: Vec<Uuid> = (0..20).map(|_| Uuid::new_v4()).collect();
    for agent_id in &agents {
        run(QueueCommand::AddHandler {
            agent_id: *agent_id,
            by: None,
        })
        .await
        .unwrap();
    }
    let mut customers = BTreeSet::new();
    for _ in 0..10 {
        let conversation_id = Uuid::new_v4();
        customers.insert(conversation_id);
        let join = QueueCommand::JoinQueue {
            conversation_id,
            metadata: Default::default(),
            customer: None,
        };
        run(join).await.unwrap();
    }

    let picks = agents.iter().map(|agent_id| {
        run(QueueCommand::PickCustomer {
            agent_id: *agent_id,
            agent_name: "A".into(),
        })
    });
    let results = futures::future::join_all(picks).await;

    let mut winners = BTreeSet::new();
    let mut picked = BTreeSet::new();
    let mut refused = 0;
    for result in results {
        match result {
            Ok(executed) => match executed.typed.as_slice() {
                [QueueEvent::CustomerPicked {
                    conversation_id,
                    agent_id,
                    ..
                }] => {
                    assert!(
                        picked.insert(*conversation_id),
                        "{conversation_id} was picked twice"
                    );
                    assert!(winners.insert(*agent_id), "{agent_id} picked twice");
                }
                other => panic!("a pick writes one CustomerPicked, got {other:?}"),
            },
            Err(CommandError::Rejected(QueueError::NobodyWaiting)) => refused += 1,
            Err(other) => panic!("a losing racer gets a clean refusal, not {other:?}"),
        }
    }
    assert_eq!(
        picked, customers,
        "every waiting customer went to exactly one agent"
    );
    assert_eq!(refused, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_agents_racing_for_ten_customers_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    race(EventStore::open_sqlite(dir.path()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_agents_racing_for_ten_customers_on_postgres() {
    let Some(jono_tests::Storage::Postgres(url)) = jono_tests::Storage::postgres() else {
        return;
    };
    race(EventStore::open_postgres(&url).await.unwrap()).await;
}
