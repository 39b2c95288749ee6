//! Invariant 4, "projections are disposable": over random command histories, a rebuild gives
//! exactly the rows the live projectors gave, and so does deleting the read models and
//! replaying the log. Over the same histories, the `stats` read model holds exactly the samples
//! the statistics' fold of the log gives, so the HTTP statistics (read from the rows) and
//! `jono stats` (folded from the log) agree.

use domain::conversation::{Conversation, ConversationCommand, EndReason};
use domain::metadata::{ExternalUserId, VerifiedCustomer};
use domain::queue::{LeaveReason, Queue, QueueCommand, SettingsPatch};
use domain::values::{Author, NoteText, Score, Tag};
use domain::Event;
use projections::runtime;
use projections::stats::{compute, samples_from_rows, Scope, StatsFold};
use proptest::prelude::*;
use serde_json::json;
use store::log::EventStore;
use uuid::Uuid;

use crate::common::{dump, rebuild_each, Running, TestDb, World};
use crate::reads::{agent_author, join, org, say, start_channel};

#[derive(Debug, Clone)]
enum Step {
    Join {
        queue: usize,
    },
    /// A returning customer (one of a few users) whose site signed its identity.
    JoinVerified {
        queue: usize,
        user: usize,
    },
    Pick {
        queue: usize,
        agent: usize,
    },
    Message {
        conversation: usize,
        by_customer: bool,
    },
    Tag {
        conversation: usize,
        tag: usize,
    },
    Untag {
        conversation: usize,
        tag: usize,
    },
    Note {
        conversation: usize,
    },
    Leave {
        conversation: usize,
        timeout: bool,
    },
    Transfer {
        conversation: usize,
        queue: usize,
    },
    End {
        conversation: usize,
    },
    Rate {
        conversation: usize,
        score: i64,
    },
    /// Auto routing: an offer of a waiting customer to an agent, which the agent accepts or
    /// declines, or which expires (`answer`: 0, 1, 2; 3 leaves it open).
    Offer {
        conversation: usize,
        agent: usize,
        answer: usize,
    },
    /// A message left in a queue when nobody could answer (the queue's side of it).
    LeaveMessage {
        queue: usize,
    },
    /// Erases a conversation's customer (GDPR): ends it first when it has not.
    Erase {
        conversation: usize,
    },
    /// Sets or clears a queue's service-level targets (seconds).
    Targets {
        queue: usize,
        wait: Option<u32>,
        first_response: Option<u32>,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..2usize).prop_map(|queue| Step::Join { queue }),
        1 => (0..2usize, 0..3usize).prop_map(|(queue, user)| Step::JoinVerified { queue, user }),
        2 => (0..2usize, 0..2usize).prop_map(|(queue, agent)| Step::Pick { queue, agent }),
        3 => (0..8usize, any::<bool>())
            .prop_map(|(conversation, by_customer)| Step::Message { conversation, by_customer }),
        1 => (0..8usize, 0..3usize).prop_map(|(conversation, tag)| Step::Tag { conversation, tag }),
        1 => (0..8usize, 0..3usize).prop_map(|(conversation, tag)| Step::Untag { conversation, tag }),
        1 => (0..8usize).prop_map(|conversation| Step::Note { conversation }),
        1 => (0..8usize, any::<bool>())
            .prop_map(|(conversation, timeout)| Step::Leave { conversation, timeout }),
        1 => (0..8usize, 0..2usize)
            .prop_map(|(conversation, queue)| Step::Transfer { conversation, queue }),
        1 => (0..8usize).prop_map(|conversation| Step::End { conversation }),
        1 => (0..8usize).prop_map(|conversation| Step::Erase { conversation }),
        1 => (0..8usize, 1..=5i64).prop_map(|(conversation, score)| Step::Rate { conversation, score }),
        2 => (0..8usize, 0..2usize, 0..4usize)
            .prop_map(|(conversation, agent, answer)| Step::Offer { conversation, agent, answer }),
        1 => (0..2usize).prop_map(|queue| Step::LeaveMessage { queue }),
        1 => (0..2usize, prop::option::of(1..3u32), prop::option::of(1..3u32))
            .prop_map(|(queue, wait, first_response)| Step::Targets { queue, wait, first_response }),
    ]
}

const TAGS: [&str; 3] = ["billing", "vip", "bug"];

/// Plays `steps` through the command layer; steps the domain refuses are simply refused.
async fn play(world: &World, steps: &[Step]) {
    let org = org(world, "p").await;
    let second = Uuid::new_v4();
    world
        .ok::<Queue>(
            second,
            QueueCommand::CreateQueue {
                queue_id: second,
                organization_id: org.id,
                name: domain::values::Name::parse("Second").unwrap(),
            },
        )
        .await;
    world
        .ok::<Queue>(
            second,
            QueueCommand::OpenQueue {
                by: None,
                by_operator: false,
            },
        )
        .await;
    world
        .ok::<Queue>(
            second,
            QueueCommand::AddHandler {
                agent_id: org.agent,
                by: None,
            },
        )
        .await;
    // Both queues route automatically: offers are made by hand here (as the router would).
    for queue in [org.queue, second] {
        let patch = domain::queue::SettingsPatch {
            routing: Some(domain::queue::Routing::Auto),
            ..Default::default()
        };
        world
            .ok::<Queue>(queue, QueueCommand::ChangeSettings { patch, by: None })
            .await;
    }
    let queues = [org.queue, second];
    let agents = [org.owner, org.agent];
    let mut conversations: Vec<(Uuid, usize)> = Vec::new();
    let nth = |conversations: &Vec<(Uuid, usize)>, i: usize| {
        (!conversations.is_empty()).then(|| conversations[i % conversations.len()])
    };
    for step in steps {
        match step.clone() {
            Step::Join { queue } => {
                conversations.push((
                    join(world, queues[queue], json!({"name": "Ann"})).await,
                    queue,
                ));
            }
            Step::JoinVerified { queue, user } => {
                let conversation_id = Uuid::new_v4();
                let user_id = ExternalUserId::parse(format!("user-{user}")).unwrap();
                world
                    .ok::<Queue>(
                        queues[queue],
                        QueueCommand::JoinQueue {
                            conversation_id,
                            metadata: Default::default(),
                            customer: Some(VerifiedCustomer {
                                customer_ref: domain::ids::customer_ref(
                                    Uuid::nil(),
                                    queues[queue],
                                    &user_id,
                                ),
                                user_id,
                                name: Some(domain::values::DisplayName::parse("Ann").unwrap()),
                            }),
                        },
                    )
                    .await;
                conversations.push((conversation_id, queue));
            }
            Step::Pick { queue, agent } => {
                let _ = world
                    .run::<Queue>(
                        queues[queue],
                        QueueCommand::PickCustomer {
                            agent_id: agents[agent],
                            agent_name: "Aino".into(),
                        },
                    )
                    .await;
            }
            Step::Message {
                conversation,
                by_customer,
            } => {
                if let Some((c, _)) = nth(&conversations, conversation) {
                    let author = if by_customer {
                        Author::customer(c, "Ann")
                    } else {
                        agent_author(org.agent)
                    };
                    let _ = world
                        .run::<Conversation>(
                            c,
                            ConversationCommand::SendMessage {
                                message_id: Uuid::new_v4(),
                                author,
                                text: Some(domain::values::MessageText::parse("hello").unwrap()),
                                attachments: vec![],
                            },
                        )
                        .await;
                }
            }
            Step::Tag { conversation, tag } | Step::Untag { conversation, tag } => {
                if let Some((c, _)) = nth(&conversations, conversation) {
                    let tag = Tag::parse(TAGS[tag]).unwrap();
                    let by = agent_author(org.agent);
                    let command = if matches!(step, Step::Tag { .. }) {
                        ConversationCommand::AddTag { tag, by }
                    } else {
                        ConversationCommand::RemoveTag { tag, by }
                    };
                    let _ = world.run::<Conversation>(c, command).await;
                }
            }
            Step::Note { conversation } => {
                if let Some((c, _)) = nth(&conversations, conversation) {
                    let _ = world
                        .run::<Conversation>(
                            c,
                            ConversationCommand::AddNote {
                                note_id: Uuid::new_v4(),
                                text: NoteText::parse("note").unwrap(),
                                by: agent_author(org.owner),
                            },
                        )
                        .await;
                }
            }
            Step::Leave {
                conversation,
                timeout,
            } => {
                if let Some((c, _)) = nth(&conversations, conversation) {
                    for queue in queues {
                        let _ = world
                            .run::<Queue>(
                                queue,
                                QueueCommand::LeaveQueue {
                                    conversation_id: c,
                                    reason: if timeout {
                                        LeaveReason::Timeout
                                    } else {
                                        LeaveReason::Abandoned
                                    },
                                    by: None,
                                },
                            )
                            .await;
                    }
                }
            }
            Step::Transfer {
                conversation,
                queue,
            } => {
                if let Some((c, _)) = nth(&conversations, conversation) {
                    let to = queues[queue];
                    let from = queues[1 - queue];
                    let _ = world
                        .run::<Queue>(
                            from,
                            QueueCommand::TransferOut {
                                conversation_id: c,
                                to_queue_id: to,
                                by: Some(agent_author(org.agent)),
                            },
                        )
                        .await;
                }
            }
            Step::Rate {
                conversation,
                score,
            } => {
                if let Some((c, _)) = nth(&conversations, conversation) {
                    let _ = world
                        .run::<Conversation>(
                            c,
                            ConversationCommand::Rate {
                                score: Score::parse(score).unwrap(),
                                comment: None,
                                by: Author::customer(c, "Ann"),
                            },
                        )
                        .await;
                }
            }
            Step::Targets {
                queue,
                wait,
                first_response,
            } => {
                let limit = |seconds: Option<u32>| {
                    Some(seconds.map(|s| domain::values::Limit::try_from(s).unwrap()))
                };
                world
                    .ok::<Queue>(
                        queues[queue],
                        QueueCommand::ChangeSettings {
                            patch: SettingsPatch {
                                target_wait_seconds: limit(wait),
                                target_first_response_seconds: limit(first_response),
                                ..SettingsPatch::default()
                            },
                            by: None,
                        },
                    )
                    .await;
            }
            Step::LeaveMessage { queue } => {
                let take = QueueCommand::TakeMessage {
                    conversation_id: Uuid::new_v4(),
                };
                let _ = world.run::<Queue>(queues[queue], take).await;
            }
            Step::Offer {
                conversation,
                agent,
                answer,
            } => {
                if let Some((c, queue)) = nth(&conversations, conversation) {
                    // The queue it joined: refused if it waits elsewhere now.
                    let queue = queues[queue];
                    let now = chrono::Utc::now();
                    let offer_id = Uuid::new_v4();
                    let offered = world
                        .run::<Queue>(
                            queue,
                            QueueCommand::OfferCustomer {
                                offer_id,
                                conversation_id: c,
                                agent_id: agents[agent],
                                now,
                            },
                        )
                        .await;
                    if offered.is_ok() {
                        let answer = match answer {
                            0 => Some(QueueCommand::AcceptOffer {
                                conversation_id: c,
                                agent_id: agents[agent],
                                agent_name: "Aino".into(),
                                now,
                            }),
                            1 => Some(QueueCommand::DeclineOffer {
                                conversation_id: c,
                                agent_id: agents[agent],
                            }),
                            2 => Some(QueueCommand::ExpireOffer {
                                conversation_id: c,
                                offer_id,
                                now: now + chrono::Duration::hours(1),
                            }),
                            _ => None,
                        };
                        if let Some(answer) = answer {
                            let _ = world.run::<Queue>(queue, answer).await;
                        }
                    }
                }
            }
            Step::End { conversation } => {
                if let Some((c, _)) = nth(&conversations, conversation) {
                    let _ = world
                        .run::<Conversation>(
                            c,
                            ConversationCommand::EndConversation {
                                by: agent_author(org.agent),
                                reason: EndReason::Ended,
                                left_queue: None,
                                at: None,
                            },
                        )
                        .await;
                }
            }
            Step::Erase { conversation } => {
                if let Some((c, _)) = nth(&conversations, conversation) {
                    let _ = world
                        .run::<Conversation>(
                            c,
                            ConversationCommand::EraseCustomer {
                                by: agent_author(org.owner),
                                reason: domain::conversation::ErasureReason::Request,
                                at: chrono::Utc::now(),
                            },
                        )
                        .await;
                }
            }
        }
    }
    // A channel and a direct chat too, for the activity feed's visibility rows.
    let channel = start_channel(world, &org).await;
    say(world, channel, agent_author(org.owner), "hi team").await;
}

async fn live_rebuilt_and_replayed_rows_agree(db: TestDb, steps: Vec<Step>) {
    let store = db.open().await;
    let world = World::new(&store);
    let running = Running::all(&store);
    play(&world, &steps).await;
    running.caught_up(&store).await;
    let all = projections::all();
    let live = dump(store.backend(), &all).await;
    assert!(!live["rm_activity"].is_empty());
    stats_rows_are_the_folds_samples(&store).await;

    // Rebuilt into fresh tables and swapped in, while the live projectors run.
    rebuild_each(&store, &all).await;
    assert_eq!(
        dump(store.backend(), &all).await,
        live,
        "a rebuild gives the live rows"
    );
    running.stop().await;

    // Deleted and replayed from the log by freshly started projectors.
    for projection in &all {
        runtime::reset(&store, projection.as_ref()).await.unwrap();
    }
    let running = Running::all(&store);
    running.caught_up(&store).await;
    assert_eq!(
        dump(store.backend(), &all).await,
        live,
        "a replay gives the live rows"
    );
    running.stop().await;
}

/// The `stats` read model's samples of every organization and queue are the fold's.
async fn stats_rows_are_the_folds_samples(store: &EventStore) {
    let mut fold = StatsFold::default();
    for event in store.read_after(0, 1_000_000).await.unwrap() {
        let decoded = Event::decode(&event.aggregate_type, event.payload.clone()).unwrap();
        fold.apply(event.position, event.recorded_at, &decoded);
    }
    let folded = fold.into_samples();
    let mut scopes: Vec<Scope> = Vec::new();
    for (queue, history) in &folded.queues {
        scopes.push(Scope::Queue(*queue));
        scopes.push(Scope::Organization(history.organization_id));
    }
    assert!(!scopes.is_empty());
    for scope in scopes {
        let keep = |queue: Option<Uuid>, org: Uuid| match scope {
            Scope::Queue(id) => queue == Some(id),
            Scope::Organization(id) => org == id,
        };
        let rows = samples_from_rows(store.backend(), scope).await.unwrap();
        let waits: Vec<_> = folded
            .waits
            .iter()
            .filter(|w| keep(Some(w.queue_id), w.organization_id))
            .cloned()
            .collect();
        let handles: Vec<_> = folded
            .handles
            .iter()
            .filter(|h| keep(Some(h.queue_id), h.organization_id))
            .cloned()
            .collect();
        let ratings: Vec<_> = folded
            .ratings
            .iter()
            .filter(|r| keep(r.queue_id, r.organization_id))
            .cloned()
            .collect();
        assert_eq!(rows.waits, waits, "the waits of {scope:?}");
        assert_eq!(rows.handles, handles, "the handles of {scope:?}");
        let responses: Vec<_> = folded
            .responses
            .iter()
            .filter(|r| keep(Some(r.queue_id), r.organization_id))
            .cloned()
            .collect();
        assert_eq!(rows.ratings, ratings, "the ratings of {scope:?}");
        let offers: Vec<_> = folded
            .offers
            .iter()
            .filter(|o| keep(Some(o.queue_id), o.organization_id))
            .cloned()
            .collect();
        assert_eq!(rows.offers, offers, "the offers of {scope:?}");
        let left: Vec<_> = folded
            .left_messages
            .iter()
            .filter(|l| keep(Some(l.queue_id), l.organization_id))
            .cloned()
            .collect();
        assert_eq!(rows.left_messages, left, "the left messages of {scope:?}");
        assert_eq!(
            rows.responses, responses,
            "the first responses of {scope:?}"
        );
        // Now, and an hour on, when every target still open has passed (breached).
        let now = chrono::Utc::now();
        for to in [now, now + chrono::Duration::hours(1)] {
            assert_eq!(
                compute(&rows, scope, None, to),
                compute(&folded, scope, None, to),
                "the figures of {scope:?}"
            );
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn a_rebuild_gives_exactly_the_live_rows_on_sqlite(steps in prop::collection::vec(step(), 1..40)) {
        runtime().block_on(live_rebuilt_and_replayed_rows_agree(TestDb::sqlite(), steps));
    }

    #[test]
    fn a_rebuild_gives_exactly_the_live_rows_on_postgres(steps in prop::collection::vec(step(), 1..40)) {
        runtime().block_on(async {
            if let Some(db) = TestDb::postgres().await {
                live_rebuilt_and_replayed_rows_agree(db, steps).await;
            }
        });
    }
}
