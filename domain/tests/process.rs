//! The process manager's follow-ups: each event that starts work in another stream gives the
//! command that finishes it, and running that command a second time is refused by the
//! aggregate as already done, so a follow-up delivered twice writes nothing the second time.

mod common;

use common::{
    agent, assigned, customer, customer_started, id, joined, metadata, open_queue, picked,
    queue_created, queue_opened, requeued, transferred_in, welcome, AGENT, CONVERSATION, ORG,
    OTHER_AGENT, OTHER_QUEUE, QUEUE, TRANSFER,
};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use domain::account::AccountEvent;
use domain::canned::{CannedEvent, Scope};
use domain::conversation::{
    Conversation, ConversationCommand, ConversationError, ConversationEvent, EndReason,
};
use domain::ids::account_id;
use domain::organization::OrganizationEvent;
use domain::process::{follow_ups, start_of_join, FollowUp};
use domain::queue::{LeaveReason, Queue, QueueCommand, QueueError, QueueEvent};
use domain::values::{Author, CannedKey, CannedText, DisplayName, Email, MessageText, Role};
use serde_json::json;
use uuid::Uuid;

/// The id under which the store keeps the event whose follow-ups a test runs.
const EVENT: Uuid = Uuid::from_u128(0xe1);
const OTHER_EVENT: Uuid = Uuid::from_u128(0xe2);

/// Runs `command` against the aggregate that `history` folds to.
fn run<A: Aggregate>(history: &[A::Event], command: A::Command) -> Result<Vec<A::Event>, A::Error>
where
    A::Services: Default,
{
    TestFramework::<A>::with(A::Services::default())
        .given(history.to_vec())
        .when(command)
        .inspect_result()
}

/// The one follow-up of `event` beside workload releases (`tests/routing.rs`), which must be
/// for a conversation.
fn conversation_follow_up(event: QueueEvent) -> (Uuid, ConversationCommand) {
    let follow_ups: Vec<FollowUp> = follow_ups(EVENT, &domain::Event::Queue(event))
        .into_iter()
        .filter(|follow_up| !matches!(follow_up, FollowUp::Workload { .. }))
        .collect();
    match follow_ups.as_slice() {
        [FollowUp::Conversation {
            conversation_id,
            command,
        }] => (*conversation_id, command.clone()),
        other => panic!("expected one conversation follow-up, got {other:?}"),
    }
}

/// Runs a conversation follow-up once (it must write events) and again (it must be refused
/// with `already`), returning the events of the first run.
fn runs_once(
    history: &[ConversationEvent],
    command: ConversationCommand,
    already: ConversationError,
) -> Vec<ConversationEvent> {
    let first = run::<Conversation>(history, command.clone()).expect("the first run succeeds");
    assert!(!first.is_empty(), "the first run writes events");
    let after: Vec<_> = history.iter().cloned().chain(first.clone()).collect();
    assert_eq!(run::<Conversation>(&after, command), Err(already));
    first
}

/// The follow-ups of `event` stored under `event_id`.
fn follow_ups_of(event_id: Uuid, event: QueueEvent) -> Vec<FollowUp> {
    follow_ups(event_id, &domain::Event::Queue(event))
}

fn left(reason: LeaveReason, to_queue_id: Option<Uuid>, by: Option<Author>) -> QueueEvent {
    QueueEvent::CustomerLeftQueue {
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id: CONVERSATION,
        reason,
        to_queue_id,
        by,
        transfer_id: None,
    }
}

// ---- CustomerJoinedQueue → StartCustomerConversation ----

#[test]
fn a_join_starts_the_customer_conversation_with_its_form_and_welcome() {
    let form = metadata(json!({"name": "Ann"}));
    let (conversation_id, command) = conversation_follow_up(QueueEvent::CustomerJoinedQueue {
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id: CONVERSATION,
        queue_position: 3,
        welcome_message: Some(welcome("Welcome!")),
        metadata: form.clone(),
        customer: None,
    });
    assert_eq!(conversation_id, CONVERSATION);
    assert_eq!(
        command,
        ConversationCommand::StartCustomerConversation {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            queue_id: QUEUE,
            welcome_message: Some(welcome("Welcome!")),
            metadata: form.clone(),
        }
    );
    let events = runs_once(&[], command, ConversationError::AlreadyStarted);
    assert_eq!(events.len(), 3);
    assert_eq!(events[0], customer_started(CONVERSATION));
    assert!(
        matches!(&events[1], ConversationEvent::CustomerMetadataSet { metadata, .. } if *metadata == form)
    );
    assert!(matches!(
        &events[2],
        ConversationEvent::MessageSent { seq: 1, author, text, .. }
            if *author == Author::system() && text == "Welcome!"
    ));
}

// ---- CustomerPicked → AssignAgent ----

#[test]
fn a_pick_assigns_the_conversation_to_the_agent() {
    let (conversation_id, command) = conversation_follow_up(picked(CONVERSATION, AGENT));
    assert_eq!(conversation_id, CONVERSATION);
    assert_eq!(
        command,
        ConversationCommand::AssignAgent {
            agent_id: AGENT,
            queue_id: QUEUE,
        }
    );
    let events = runs_once(
        &[customer_started(CONVERSATION)],
        command,
        ConversationError::AlreadyAssigned,
    );
    assert_eq!(events, vec![assigned(CONVERSATION, AGENT, QUEUE)]);
}

// ---- CustomerLeftQueue → EndConversation ----

fn ends_with(event: QueueEvent, by: Author, reason: EndReason) {
    let (conversation_id, command) = conversation_follow_up(event);
    assert_eq!(conversation_id, CONVERSATION);
    assert_eq!(
        command,
        ConversationCommand::EndConversation {
            by: by.clone(),
            reason,
            left_queue: Some(QUEUE),
            at: None,
        }
    );
    let events = runs_once(
        &[customer_started(CONVERSATION)],
        command,
        ConversationError::ConversationEnded,
    );
    assert_eq!(
        events,
        vec![ConversationEvent::ConversationEnded {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            queue_id: Some(QUEUE),
            agent_id: None,
            was_waiting: true,
            reason,
            by,
            at: None,
        }]
    );
}

#[test]
fn an_abandoned_wait_ends_the_conversation_as_abandoned_by_its_customer() {
    ends_with(
        left(LeaveReason::Abandoned, None, Some(customer(CONVERSATION))),
        customer(CONVERSATION),
        EndReason::Abandoned,
    );
    // Without a named author, the customer is still the one who ended it.
    ends_with(
        left(LeaveReason::Abandoned, None, None),
        Author::customer(CONVERSATION, "Customer"),
        EndReason::Abandoned,
    );
}

#[test]
fn a_timed_out_wait_ends_the_conversation_as_timeout_by_the_system() {
    ends_with(
        left(LeaveReason::Timeout, None, None),
        Author::system(),
        EndReason::Timeout,
    );
}

#[test]
fn a_removed_customers_conversation_is_ended_by_whoever_removed_it() {
    ends_with(
        left(LeaveReason::Removed, None, Some(agent(AGENT))),
        agent(AGENT),
        EndReason::Ended,
    );
    ends_with(
        left(LeaveReason::Removed, None, None),
        Author::system(),
        EndReason::Ended,
    );
}

// ---- CustomerLeftQueue transferred → TransferIn with Requeue ----

#[test]
fn a_transfer_out_is_followed_by_a_transfer_in_at_the_target_queue() {
    let event = left(
        LeaveReason::Transferred,
        Some(OTHER_QUEUE),
        Some(agent(AGENT)),
    );
    let transfer_id = Uuid::new_v5(&EVENT, b"transfer");
    let follow_ups = follow_ups(EVENT, &domain::Event::Queue(event.clone()));
    let command = QueueCommand::TransferIn {
        transfer_id,
        conversation_id: CONVERSATION,
        organization_id: ORG,
        from_queue_id: QUEUE,
        from_agent_id: None,
        by: Some(agent(AGENT)),
    };
    // The arrival and the conversation waiting there, as one: both name the transfer.
    assert_eq!(
        follow_ups,
        vec![FollowUp::Transfer {
            queue_id: OTHER_QUEUE,
            transfer_in: command.clone(),
            conversation_id: CONVERSATION,
            requeue: ConversationCommand::Requeue {
                queue_id: OTHER_QUEUE,
                transfer_id,
                from_agent_id: None,
            },
        }]
    );
    // Every run of this follow-up names the same transfer; another stored event, another one.
    assert_eq!(
        follow_ups_of(EVENT, event.clone()),
        follow_ups_of(EVENT, event.clone())
    );
    assert_ne!(
        follow_ups_of(EVENT, event.clone()),
        follow_ups_of(OTHER_EVENT, event)
    );

    // The target queue (here called QUEUE, its own id) takes it first in line, once.
    let target = vec![queue_created(), queue_opened(), joined(id(1), 1)];
    let first = run::<Queue>(&target, command.clone()).unwrap();
    assert!(matches!(
        first.as_slice(),
        [QueueEvent::ConversationTransferred {
            transfer_id: arrived,
            conversation_id,
            from_queue_id,
            queue_position: 1,
            ..
        }] if *arrived == transfer_id && *conversation_id == CONVERSATION && *from_queue_id == QUEUE
    ));
    let after: Vec<_> = target.into_iter().chain(first).collect();
    assert_eq!(
        run::<Queue>(&after, command),
        Err(QueueError::TransferAlreadyArrived)
    );
}

#[test]
fn a_transfer_without_a_target_has_no_follow_up() {
    let event = left(LeaveReason::Transferred, None, None);
    assert_eq!(follow_ups(EVENT, &domain::Event::Queue(event)), vec![]);
}

#[test]
fn a_transfer_that_arrived_in_the_same_append_has_no_follow_up() {
    let event = QueueEvent::CustomerLeftQueue {
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id: CONVERSATION,
        reason: LeaveReason::Transferred,
        to_queue_id: Some(OTHER_QUEUE),
        by: None,
        transfer_id: Some(common::TRANSFER),
    };
    assert_eq!(follow_ups(EVENT, &domain::Event::Queue(event)), vec![]);
}

// ---- ConversationTransferred → Requeue ----

#[test]
fn a_transfer_in_requeues_the_conversation_in_its_new_queue() {
    let event = QueueEvent::ConversationTransferred {
        transfer_id: TRANSFER,
        queue_id: OTHER_QUEUE,
        organization_id: ORG,
        conversation_id: CONVERSATION,
        from_queue_id: QUEUE,
        from_agent_id: Some(AGENT),
        queue_position: 1,
        by: Some(agent(AGENT)),
    };
    let (conversation_id, command) = conversation_follow_up(event);
    assert_eq!(conversation_id, CONVERSATION);
    assert_eq!(
        command,
        ConversationCommand::Requeue {
            queue_id: OTHER_QUEUE,
            transfer_id: TRANSFER,
            from_agent_id: Some(AGENT),
        }
    );
    let events = runs_once(
        &[
            customer_started(CONVERSATION),
            assigned(CONVERSATION, AGENT, QUEUE),
        ],
        command,
        ConversationError::AlreadyWaiting,
    );
    assert_eq!(events, vec![requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)]);
}

// ---- everything else → nothing ----

#[test]
fn other_events_have_no_follow_ups() {
    let email = Email::parse("ann@example.com").expect("a valid test value");
    let others = vec![
        domain::Event::Queue(queue_created()),
        domain::Event::Queue(queue_opened()),
        domain::Event::Queue(QueueEvent::QueueClosed {
            queue_id: QUEUE,
            organization_id: ORG,
            by: None,
        }),
        domain::Event::Queue(QueueEvent::QueueHandlerAdded {
            queue_id: QUEUE,
            organization_id: ORG,
            agent_id: AGENT,
            by: None,
        }),
        domain::Event::Queue(QueueEvent::QueueHandlerRemoved {
            queue_id: QUEUE,
            organization_id: ORG,
            agent_id: AGENT,
            by: None,
        }),
        domain::Event::Conversation(customer_started(CONVERSATION)),
        domain::Event::Conversation(assigned(CONVERSATION, AGENT, QUEUE)),
        domain::Event::Conversation(ConversationEvent::MessageSent {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            message_id: id(1),
            seq: 1,
            author: customer(CONVERSATION),
            text: MessageText::parse("hi")
                .expect("a valid test value")
                .to_string(),
            attachments: vec![],
        }),
        domain::Event::Organization(OrganizationEvent::MemberAdded {
            organization_id: ORG,
            agent_id: AGENT,
            role: Role::Owner,
        }),
        domain::Event::Account(AccountEvent::AccountCreated {
            agent_id: account_id(Uuid::from_u128(0x5ec2e7), &email),
            email,
            name: DisplayName::parse("Ann").expect("a valid test value"),
        }),
        domain::Event::Canned(CannedEvent::CannedResponseCreated {
            response_id: id(1),
            scope: Scope::Personal { agent_id: AGENT },
            key: CannedKey::parse("hi").expect("a valid test value"),
            text: CannedText::parse("Hello").expect("a valid test value"),
            by: AGENT,
        }),
    ];
    for event in others {
        assert_eq!(follow_ups(EVENT, &event), vec![], "{event:?}");
    }
}

// ---- a whole journey, driven by the follow-ups alone ----

/// Applies each follow-up of `event` to the two queues and the one conversation, and the
/// follow-ups of what those write, until nothing is left to do.
/// Each event written gets a fresh id, as the store gives it.
struct World {
    queues: Vec<(Uuid, Vec<QueueEvent>)>,
    conversation: Vec<ConversationEvent>,
    events_stored: u128,
}

impl World {
    fn stored(&mut self, event: domain::Event) -> (Uuid, domain::Event) {
        self.events_stored += 1;
        (id(0xe000 + self.events_stored), event)
    }

    fn react(&mut self, event: domain::Event) {
        let mut pending = vec![self.stored(event)];
        while let Some((event_id, event)) = pending.pop() {
            for follow_up in follow_ups(event_id, &event) {
                match follow_up {
                    FollowUp::Queue { queue_id, command } => {
                        let (_, history) = self
                            .queues
                            .iter_mut()
                            .find(|(id, _)| *id == queue_id)
                            .expect("a queue of this world");
                        let written =
                            run::<Queue>(history, command).expect("the queue takes the command");
                        history.extend(written.clone());
                        for event in written {
                            pending.push(self.stored(domain::Event::Queue(event)));
                        }
                    }
                    FollowUp::Conversation {
                        conversation_id,
                        command,
                    } => {
                        assert_eq!(conversation_id, CONVERSATION);
                        // The world is replayed the way the feed is: a follow-up already done
                        // by a pair is refused, and that is settled.
                        let Ok(written) = run::<Conversation>(&self.conversation, command) else {
                            continue;
                        };
                        self.conversation.extend(written.clone());
                        for event in written {
                            pending.push(self.stored(domain::Event::Conversation(event)));
                        }
                    }
                    FollowUp::Workload { .. } => {
                        panic!("this journey ends no agent's conversation")
                    }
                    FollowUp::Transfer {
                        queue_id,
                        transfer_in,
                        conversation_id,
                        requeue,
                    } => {
                        // Both decided before either is written, as one append.
                        assert_eq!(conversation_id, CONVERSATION);
                        let (_, history) = self
                            .queues
                            .iter_mut()
                            .find(|(id, _)| *id == queue_id)
                            .expect("a queue of this world");
                        let arrived = run::<Queue>(history, transfer_in)
                            .expect("the target queue takes the arrival");
                        let requeued = run::<Conversation>(&self.conversation, requeue)
                            .expect("the conversation waits again");
                        history.extend(arrived.clone());
                        self.conversation.extend(requeued.clone());
                        for event in arrived {
                            pending.push(self.stored(domain::Event::Queue(event)));
                        }
                        for event in requeued {
                            pending.push(self.stored(domain::Event::Conversation(event)));
                        }
                    }
                }
            }
        }
    }

    fn queue(&mut self, queue_id: Uuid, command: QueueCommand) {
        let (_, history) = self
            .queues
            .iter_mut()
            .find(|(id, _)| *id == queue_id)
            .expect("a queue of this world");
        let written = run::<Queue>(history, command).expect("the queue takes the command");
        history.extend(written.clone());
        for event in written {
            self.react(domain::Event::Queue(event));
        }
    }

    fn state(&self) -> Conversation {
        common::fold(self.conversation.clone())
    }
}

#[test]
fn join_transfer_and_pick_reach_the_conversation_through_follow_ups() {
    let other_queue = vec![
        QueueEvent::QueueCreated {
            queue_id: OTHER_QUEUE,
            organization_id: ORG,
            name: common::name("Sales"),
        },
        // Open: a closed queue takes no transfer in.
        QueueEvent::QueueOpened {
            queue_id: OTHER_QUEUE,
            organization_id: ORG,
            by: None,
        },
        QueueEvent::QueueHandlerAdded {
            queue_id: OTHER_QUEUE,
            organization_id: ORG,
            agent_id: OTHER_AGENT,
            by: None,
        },
    ];
    let mut world = World {
        queues: vec![(QUEUE, open_queue()), (OTHER_QUEUE, other_queue)],
        conversation: Vec::new(),
        events_stored: 0,
    };

    world.queue(
        QUEUE,
        QueueCommand::JoinQueue {
            conversation_id: CONVERSATION,
            metadata: metadata(json!({"name": "Ann"})),
            customer: None,
        },
    );
    let started = world.state();
    assert_eq!(started.queue_id, Some(QUEUE));
    assert_eq!(started.status, Some(domain::conversation::Status::Waiting));

    world.queue(
        QUEUE,
        QueueCommand::TransferOut {
            conversation_id: CONVERSATION,
            to_queue_id: OTHER_QUEUE,
            by: Some(agent(AGENT)),
        },
    );
    let moved = world.state();
    assert_eq!(moved.queue_id, Some(OTHER_QUEUE));
    let target: Queue = common::fold(world.queues[1].1.clone());
    assert_eq!(target.waiting, [CONVERSATION]);

    world.queue(
        OTHER_QUEUE,
        QueueCommand::PickCustomer {
            agent_id: OTHER_AGENT,
            agent_name: "Olli".into(),
        },
    );
    let picked = world.state();
    assert_eq!(picked.agent_id, Some(OTHER_AGENT));
    assert_eq!(picked.queue_id, Some(OTHER_QUEUE));
    assert_eq!(picked.status, Some(domain::conversation::Status::Active));
    let source: Queue = common::fold(world.queues[0].1.clone());
    assert!(source.waiting.is_empty());
}

// ---- a follow-up delivered late, after later work ----
//
// The gateway may run a follow-up at once and the store runs it again from the feed, maybe
// after the stream has moved on; the second run must still be refused. Both runs derive their
// command from the same stored event (same id), so the transfer they name is the same one.

/// `CONVERSATION` transferred out of `OTHER_QUEUE` into `QUEUE`, stored under `EVENT`.
fn transferred_out_to_queue() -> domain::Event {
    domain::Event::Queue(QueueEvent::CustomerLeftQueue {
        queue_id: OTHER_QUEUE,
        organization_id: ORG,
        conversation_id: CONVERSATION,
        reason: LeaveReason::Transferred,
        to_queue_id: Some(QUEUE),
        by: None,
        transfer_id: None,
    })
}

/// What the store's `execute_pair_with` does: `command` on the queue, then the conversation's
/// command made from what the queue decided; both histories grow, or neither does.
fn pair(
    queue: &mut Vec<QueueEvent>,
    command: QueueCommand,
    conversation: &mut Vec<ConversationEvent>,
    second: impl Fn(&[QueueEvent]) -> Option<ConversationCommand>,
) -> Result<(), String> {
    let decided = run::<Queue>(queue, command).map_err(|e| format!("queue: {e:?}"))?;
    let followed = match second(&decided) {
        Some(command) => run::<Conversation>(conversation, command)
            .map_err(|e| format!("conversation: {e:?}"))?,
        None => Vec::new(),
    };
    queue.extend(decided);
    conversation.extend(followed);
    Ok(())
}

/// The transfer-in at `QUEUE` and the requeue a follow-up of `event` (stored under `event_id`)
/// runs as one append.
fn transfer_pair(event_id: Uuid, event: &domain::Event) -> (QueueCommand, ConversationCommand) {
    match follow_ups(event_id, event).as_slice() {
        [FollowUp::Transfer {
            queue_id,
            transfer_in,
            requeue,
            ..
        }] if *queue_id == QUEUE => (transfer_in.clone(), requeue.clone()),
        other => panic!("expected one transfer to QUEUE, got {other:?}"),
    }
}

#[test]
fn a_late_transfer_in_does_not_requeue_a_customer_already_picked() {
    let event = transferred_out_to_queue();
    let mut target = vec![
        queue_created(),
        queue_opened(),
        common::handler_added(OTHER_AGENT),
    ];
    let mut conversation = vec![customer_started(CONVERSATION)];
    // The gateway's run: the customer waits first in line, and is picked.
    let (transfer_in, requeue) = transfer_pair(EVENT, &event);
    pair(&mut target, transfer_in, &mut conversation, |_| {
        Some(requeue.clone())
    })
    .unwrap();
    assert_eq!(
        target[3..],
        [transferred_in(
            Uuid::new_v5(&EVENT, b"transfer"),
            CONVERSATION,
            OTHER_QUEUE
        )]
    );
    target.push(picked(CONVERSATION, OTHER_AGENT));
    conversation.push(assigned(CONVERSATION, OTHER_AGENT, QUEUE));
    // The feed's run of the same event, late: the queue no longer remembers the transfer, but
    // the conversation, deciding in the same append, does: refused, so nobody waits to be
    // picked twice.
    let (late, requeue) = transfer_pair(EVENT, &event);
    let before = (target.len(), conversation.len());
    assert_eq!(
        pair(&mut target, late, &mut conversation, |_| Some(
            requeue.clone()
        )),
        Err(format!(
            "conversation: {:?}",
            ConversationError::AlreadyWaiting
        ))
    );
    assert_eq!((target.len(), conversation.len()), before);
    let queue: Queue = common::fold(target);
    assert!(queue.waiting.is_empty());
}

#[test]
fn a_repeated_transfer_is_refused_even_after_its_customer_left_the_line() {
    let event = transferred_out_to_queue();
    let (transfer_in, requeue) = transfer_pair(EVENT, &event);
    // Picked, or gone by whatever way: the queue has forgotten the customer.
    for gone in [
        picked(CONVERSATION, AGENT),
        QueueEvent::CustomerLeftQueue {
            queue_id: QUEUE,
            organization_id: ORG,
            conversation_id: CONVERSATION,
            reason: LeaveReason::Abandoned,
            to_queue_id: None,
            by: None,
            transfer_id: None,
        },
    ] {
        let mut target = open_queue();
        let mut conversation = vec![customer_started(CONVERSATION)];
        pair(&mut target, transfer_in.clone(), &mut conversation, |_| {
            Some(requeue.clone())
        })
        .unwrap();
        target.push(gone);
        assert!(
            pair(&mut target, transfer_in.clone(), &mut conversation, |_| {
                Some(requeue.clone())
            })
            .is_err()
        );
        let queue: Queue = common::fold(target);
        assert!(queue.waiting.is_empty());
    }
}

#[test]
fn a_repeated_join_is_refused_by_its_conversation_after_a_pick() {
    let join = QueueCommand::JoinQueue {
        conversation_id: CONVERSATION,
        metadata: metadata(json!({"name": "Ann"})),
        customer: None,
    };
    let mut queue = open_queue();
    let mut conversation = Vec::new();
    pair(&mut queue, join.clone(), &mut conversation, start_of_join).unwrap();
    assert!(
        !conversation.is_empty(),
        "the join started its conversation"
    );
    // While it waits, the queue itself refuses the repeat.
    assert_eq!(
        pair(&mut queue, join.clone(), &mut conversation, start_of_join),
        Err(format!("queue: {:?}", QueueError::AlreadyJoined))
    );
    queue.push(picked(CONVERSATION, AGENT));
    conversation.push(assigned(CONVERSATION, AGENT, QUEUE));
    // Picked: the queue has forgotten it, its conversation has not.
    assert_eq!(
        pair(&mut queue, join, &mut conversation, start_of_join),
        Err(format!(
            "conversation: {:?}",
            ConversationError::AlreadyStarted
        ))
    );
    let queue: Queue = common::fold(queue);
    assert!(queue.waiting.is_empty());
}

#[test]
fn a_late_requeue_does_not_put_a_picked_customer_back_to_waiting() {
    let arrived = transferred_in(TRANSFER, CONVERSATION, OTHER_QUEUE);
    let (_, requeue) = conversation_follow_up(arrived.clone());
    let mut history = vec![customer_started(CONVERSATION)];
    // The gateway's run: the conversation waits in QUEUE, and is picked there.
    let first = run::<Conversation>(&history, requeue).unwrap();
    assert_eq!(first, vec![requeued(CONVERSATION, QUEUE, TRANSFER)]);
    history.extend(first);
    history.push(assigned(CONVERSATION, OTHER_AGENT, QUEUE));
    // The feed's run, late: refused, and the conversation stays with its agent.
    let (_, late) = conversation_follow_up(arrived);
    assert_eq!(
        run::<Conversation>(&history, late),
        Err(ConversationError::AlreadyWaiting)
    );
    let conversation: Conversation = common::fold(history);
    assert_eq!(conversation.agent_id, Some(OTHER_AGENT));
    assert_eq!(
        conversation.status,
        Some(domain::conversation::Status::Active)
    );
}

#[test]
fn a_late_assignment_does_not_take_the_conversation_from_its_new_agent() {
    let (_, late) = conversation_follow_up(picked(CONVERSATION, AGENT));
    let history = vec![
        customer_started(CONVERSATION),
        assigned(CONVERSATION, AGENT, QUEUE),
        requeued(CONVERSATION, OTHER_QUEUE, TRANSFER),
        assigned(CONVERSATION, OTHER_AGENT, OTHER_QUEUE),
    ];
    assert_eq!(
        run::<Conversation>(&history, late.clone()),
        Err(ConversationError::AlreadyAssigned)
    );
    // Nor while it waits in the queue it was transferred to: that pick was in another queue.
    let waiting_elsewhere = &history[..3];
    assert_eq!(
        run::<Conversation>(waiting_elsewhere, late),
        Err(ConversationError::AlreadyAssigned)
    );
}
