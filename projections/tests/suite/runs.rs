//! Runs of messages (`projections::runs`): a batch that meets many messages in a row — in
//! customers' conversations, a channel and a direct chat, by customers and agents, first
//! answers, reads and a tag among them — leaves exactly the rows its events leave applied
//! one at a time.

use domain::conversation::{Conversation, ConversationCommand};
use domain::queue::{Queue, QueueCommand, SettingsPatch};
use domain::values::{Author, Limit, Tag};
use domain::Event;
use projections::database::Tx;
use projections::runs::Applied;
use serde_json::json;

use crate::common::{dump, rebuild_each, Running, TestDb, World};
use crate::on_both_backends;
use crate::reads::{agent_author, join, org, pick, say, start_channel, start_direct};

async fn a_run_of_messages_leaves_the_rows_one_by_one_leaves(db: TestDb) {
    let store = db.open().await;
    let world = World::new(&store);
    let org = org(&world, "runs").await;
    world
        .ok::<Queue>(
            org.queue,
            QueueCommand::ChangeSettings {
                patch: SettingsPatch {
                    target_first_response_seconds: Some(Some(Limit::try_from(60).unwrap())),
                    ..SettingsPatch::default()
                },
                by: None,
            },
        )
        .await;
    let mut customers = Vec::new();
    for n in 0..3 {
        let conversation = join(&world, org.queue, json!({"name": format!("Customer {n}")})).await;
        assert_eq!(pick(&world, org.queue, org.agent).await, conversation);
        customers.push(conversation);
    }
    let channel = start_channel(&world, &org).await;
    let direct = start_direct(&world, &org).await;
    // Every conversation's messages interleaved, each customer's first answered mid-run.
    for round in 0..12 {
        for (n, conversation) in customers.iter().enumerate() {
            let author = if (round + n) % 3 == 2 {
                agent_author(org.agent)
            } else {
                Author::customer(*conversation, "Ville")
            };
            say(&world, *conversation, author, &format!("{round}.{n}")).await;
        }
        // Reads and a tag among the messages (the conversations projection folds messages
        // and reads over a batch around the other events).
        if round == 5 {
            mark_read(&world, customers[0], org.agent, 4).await;
        }
        if round == 7 {
            world
                .ok::<Conversation>(
                    customers[1],
                    ConversationCommand::AddTag {
                        tag: Tag::parse("billing").unwrap(),
                        by: agent_author(org.agent),
                    },
                )
                .await;
        }
        let by = if round % 2 == 0 { org.owner } else { org.agent };
        say(&world, channel, agent_author(by), &format!("team {round}")).await;
        say(&world, direct, agent_author(by), &format!("psst {round}")).await;
    }

    // The projectors start now and meet the messages in runs of up to a batch.
    let running = Running::all(&store);
    running.caught_up(&store).await;
    let all = projections::all();
    let live = dump(store.backend(), &all).await;
    assert_eq!(live["rm_messages"].len(), 12 * 5);
    let sent = r#"type=Some("MessageSent")"#.to_owned();
    let activity = live["rm_activity"].iter().filter(|row| row.contains(&sent));
    assert_eq!(
        activity.count(),
        12 * 2,
        "the channel's and the direct chat's"
    );
    assert!(!live["rm_reads"].is_empty());
    assert!(!live["rm_stat_responses"].is_empty());
    running.stop().await;

    // Each projection given the whole log again, one event at a time through `apply`, then
    // at once through `apply_all`, where a failed set fails the test (the projectors would
    // apply it again one event at a time).
    let events = store.read_after(0, 1_000_000).await.unwrap();
    let decoded: Vec<Event> = events
        .iter()
        .map(|event| Event::decode(&event.aggregate_type, event.payload.clone()).unwrap())
        .collect();
    let applied: Vec<Applied> = events.iter().zip(&decoded).collect();
    for at_once in [false, true] {
        for projection in &all {
            let wanted: Vec<Applied> = applied
                .iter()
                .copied()
                .filter(|(event, _)| {
                    let types = projection.event_types();
                    types.is_none_or(|types| types.contains(&event.event_type.as_str()))
                })
                .collect();
            let mut tx = Tx::begin(store.backend(), "").await.unwrap();
            for table in projection.tables() {
                tx.execute(&format!("DELETE FROM {}", table.name), &[])
                    .await
                    .unwrap();
            }
            if at_once {
                projection.apply_all(&mut tx, &wanted).await.unwrap();
            } else {
                for (event, decoded) in &wanted {
                    projection.apply(&mut tx, event, decoded).await.unwrap();
                }
            }
            tx.commit().await.unwrap();
        }
        let how = if at_once {
            "at once"
        } else {
            "one event at a time"
        };
        assert_eq!(
            dump(store.backend(), &all).await,
            live,
            "the whole log {how} gives the live rows"
        );
    }

    // And a rebuild, which takes the log in spans.
    rebuild_each(&store, &all).await;
    assert_eq!(
        dump(store.backend(), &all).await,
        live,
        "a rebuild gives the live rows"
    );
}

on_both_backends!(a_run_of_messages_leaves_the_rows_one_by_one_leaves);

async fn mark_read(world: &World, conversation: uuid::Uuid, agent: uuid::Uuid, seq: u64) {
    world
        .ok::<Conversation>(
            conversation,
            ConversationCommand::MarkRead {
                seq,
                by: agent_author(agent),
            },
        )
        .await;
}
