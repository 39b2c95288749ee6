//! Properties of `Queue` under random sequences of commands, checked against a plain model of
//! the line (a `VecDeque` of who waits), and one property of `Conversation`'s message numbers.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use common::{agent, customer, customer_started, handler_added, id, name, ORG, QUEUE};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use domain::conversation::{Conversation, ConversationCommand, ConversationEvent};
use domain::metadata::CustomerMetadata;
use domain::queue::{LeaveReason, Queue, QueueCommand, QueueError, QueueEvent, QueueSettings};
use domain::values::{Author, Limit, MessageText, NoteText, Tag, WelcomeMessage};
use proptest::prelude::*;
use uuid::Uuid;

/// Runs `command` against the aggregate that `history` folds to, as the store would.
fn run<A: Aggregate<Services = ()>>(
    history: &[A::Event],
    command: A::Command,
) -> Result<Vec<A::Event>, A::Error> {
    TestFramework::<A>::with(())
        .given(history.to_vec())
        .when(command)
        .inspect_result()
}

/// Two handlers who pick, and one member who is not a handler.
const HANDLERS: [Uuid; 2] = [Uuid::from_u128(0xa1), Uuid::from_u128(0xa2)];
const NOT_A_HANDLER: Uuid = Uuid::from_u128(0xa3);
const ELSEWHERE: Uuid = Uuid::from_u128(0x0_1e);

#[derive(Debug, Clone)]
enum Op {
    /// A new customer joins.
    Join,
    /// A known conversation tries to join again.
    Rejoin(usize),
    /// Agent `n` (0 and 1 are handlers, 2 is not) picks.
    Pick(usize),
    /// A known conversation leaves (it may no longer be waiting).
    Leave(usize, LeaveReason),
    /// A known conversation is transferred to another queue.
    TransferOut(usize),
    /// A new conversation arrives from another queue.
    TransferIn,
    /// A conversation waiting here is transferred in again, by another transfer.
    TransferInAgain(usize),
    /// A transfer that arrived is delivered again (a late, repeated follow-up).
    TransferRepeated(usize),
    Open,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    let reason = prop_oneof![
        Just(LeaveReason::Abandoned),
        Just(LeaveReason::Timeout),
        Just(LeaveReason::Removed),
    ];
    prop_oneof![
        6 => Just(Op::Join),
        1 => any::<usize>().prop_map(Op::Rejoin),
        5 => (0..3usize).prop_map(Op::Pick),
        2 => (any::<usize>(), reason).prop_map(|(i, r)| Op::Leave(i, r)),
        1 => any::<usize>().prop_map(Op::TransferOut),
        2 => Just(Op::TransferIn),
        1 => any::<usize>().prop_map(Op::TransferInAgain),
        1 => any::<usize>().prop_map(Op::TransferRepeated),
        1 => Just(Op::Open),
        1 => Just(Op::Close),
    ]
}

/// How a conversation that came to this queue stands at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Waiting,
    Picked,
    Left(LeaveReason),
}

/// The plain model: who waits, in order, and what became of everyone else.
#[derive(Debug, Default)]
struct Model {
    open: bool,
    max_waiting: Option<usize>,
    line: VecDeque<Uuid>,
    arrived: Vec<Uuid>,
    /// Transfers that arrived, with their conversation.
    transfers: Vec<(Uuid, Uuid)>,
    fate: BTreeMap<Uuid, Fate>,
    next_id: u128,
}

impl Model {
    fn fresh(&mut self) -> Uuid {
        self.next_id += 1;
        id(0x1000 + self.next_id)
    }

    fn known(&self, index: usize) -> Option<Uuid> {
        (!self.arrived.is_empty()).then(|| self.arrived[index % self.arrived.len()])
    }

    fn waits(&self, conversation_id: Uuid) -> bool {
        self.line.contains(&conversation_id)
    }

    fn remove(&mut self, conversation_id: Uuid, fate: Fate) {
        self.line.retain(|id| *id != conversation_id);
        self.fate.insert(conversation_id, fate);
    }

    fn arrive(&mut self, conversation_id: Uuid) {
        self.arrived.push(conversation_id);
        self.fate.insert(conversation_id, Fate::Waiting);
    }
}

fn left(conversation_id: Uuid, reason: LeaveReason, to_queue_id: Option<Uuid>) -> QueueEvent {
    QueueEvent::CustomerLeftQueue {
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id,
        reason,
        to_queue_id,
        by: None,
        transfer_id: None,
    }
}

/// Turns an op into a command and what the model says must come of it, then updates the model
/// as if it succeeded. `None` when the op does not apply (nobody known yet).
fn step(model: &mut Model, op: &Op) -> Option<(QueueCommand, Result<Vec<QueueEvent>, QueueError>)> {
    Some(match op {
        Op::Join => {
            let conversation_id = model.fresh();
            let command = QueueCommand::JoinQueue {
                conversation_id,
                metadata: CustomerMetadata::default(),
                customer: None,
            };
            if !model.open {
                (command, Err(QueueError::QueueClosed))
            } else if model.max_waiting.is_some_and(|max| model.line.len() >= max) {
                (command, Err(QueueError::QueueFull))
            } else {
                model.line.push_back(conversation_id);
                model.arrive(conversation_id);
                let event = QueueEvent::CustomerJoinedQueue {
                    queue_id: QUEUE,
                    organization_id: ORG,
                    conversation_id,
                    queue_position: model.line.len(),
                    welcome_message: None,
                    metadata: CustomerMetadata::default(),
                    customer: None,
                };
                (command, Ok(vec![event]))
            }
        }
        Op::Rejoin(index) => {
            let conversation_id = model.known(*index)?;
            if model.open && !model.waits(conversation_id) {
                // Gone from the line: the queue no longer remembers it, and the conversation's
                // stream, started in the first join's append, refuses the repeat (process.rs).
                return None;
            }
            let command = QueueCommand::JoinQueue {
                conversation_id,
                metadata: CustomerMetadata::default(),
                customer: None,
            };
            let refusal = if model.open {
                QueueError::AlreadyJoined
            } else {
                QueueError::QueueClosed
            };
            (command, Err(refusal))
        }
        Op::Pick(n) => {
            let agent_id = HANDLERS.get(*n).copied().unwrap_or(NOT_A_HANDLER);
            let command = QueueCommand::PickCustomer {
                agent_id,
                agent_name: "Aino".into(),
            };
            if agent_id == NOT_A_HANDLER {
                (command, Err(QueueError::NotAHandler))
            } else if let Some(front) = model.line.front().copied() {
                model.remove(front, Fate::Picked);
                (command, Ok(vec![common::picked(front, agent_id)]))
            } else {
                (command, Err(QueueError::NobodyWaiting))
            }
        }
        Op::Leave(index, reason) => {
            let conversation_id = model.known(*index)?;
            let command = QueueCommand::LeaveQueue {
                conversation_id,
                reason: *reason,
                by: None,
            };
            if model.waits(conversation_id) {
                model.remove(conversation_id, Fate::Left(*reason));
                (command, Ok(vec![left(conversation_id, *reason, None)]))
            } else {
                (command, Err(QueueError::NotWaiting))
            }
        }
        Op::TransferOut(index) => {
            let conversation_id = model.known(*index)?;
            let command = QueueCommand::TransferOut {
                conversation_id,
                to_queue_id: ELSEWHERE,
                by: None,
            };
            if model.waits(conversation_id) {
                model.remove(conversation_id, Fate::Left(LeaveReason::Transferred));
                let event = left(conversation_id, LeaveReason::Transferred, Some(ELSEWHERE));
                (command, Ok(vec![event]))
            } else {
                (command, Err(QueueError::NotWaiting))
            }
        }
        Op::TransferIn => {
            let conversation_id = model.fresh();
            let transfer_id = model.fresh();
            // As a join: a closed queue takes nobody in.
            if !model.open {
                return Some((
                    transfer_in(transfer_id, conversation_id),
                    Err(QueueError::TargetClosed),
                ));
            }
            model.line.push_front(conversation_id);
            model.arrive(conversation_id);
            model.transfers.push((transfer_id, conversation_id));
            (
                transfer_in(transfer_id, conversation_id),
                Ok(vec![common::transferred_in(
                    transfer_id,
                    conversation_id,
                    ELSEWHERE,
                )]),
            )
        }
        Op::TransferInAgain(index) => {
            if model.line.is_empty() {
                return None;
            }
            let conversation_id = model.line[index % model.line.len()];
            (
                transfer_in(model.fresh(), conversation_id),
                Err(QueueError::AlreadyWaiting),
            )
        }
        Op::TransferRepeated(index) => {
            if model.transfers.is_empty() {
                return None;
            }
            // Refused here while its customer waits; once picked or gone, by the conversation,
            // whose requeue runs in the same append and knows its transfers (process.rs).
            let (transfer_id, conversation_id) = model.transfers[index % model.transfers.len()];
            if !model.waits(conversation_id) {
                return None;
            }
            (
                transfer_in(transfer_id, conversation_id),
                Err(QueueError::TransferAlreadyArrived),
            )
        }
        Op::Open => {
            let events = if model.open {
                vec![]
            } else {
                vec![common::queue_opened()]
            };
            model.open = true;
            (
                QueueCommand::OpenQueue {
                    by: None,
                    by_operator: false,
                },
                Ok(events),
            )
        }
        Op::Close => {
            let events = if model.open {
                vec![common::queue_closed()]
            } else {
                vec![]
            };
            model.open = false;
            (
                QueueCommand::CloseQueue {
                    by: None,
                    by_operator: false,
                },
                Ok(events),
            )
        }
    })
}

fn transfer_in(transfer_id: Uuid, conversation_id: Uuid) -> QueueCommand {
    QueueCommand::TransferIn {
        transfer_id,
        conversation_id,
        organization_id: ORG,
        from_queue_id: ELSEWHERE,
        from_agent_id: None,
        by: None,
    }
}

/// Replays the log of the queue's own events into the line it describes, checking on the way
/// that each join reports its place and each pick takes the front.
fn line_of(log: &[QueueEvent]) -> Result<VecDeque<Uuid>, TestCaseError> {
    let mut line = VecDeque::new();
    for event in log {
        match event {
            QueueEvent::CustomerJoinedQueue {
                conversation_id,
                queue_position,
                ..
            } => {
                line.push_back(*conversation_id);
                // (c) the position reported is the line's length after the join.
                prop_assert_eq!(*queue_position, line.len());
            }
            QueueEvent::ConversationTransferred {
                conversation_id,
                queue_position,
                ..
            } => {
                // (d) a transfer in goes to the front.
                prop_assert_eq!(*queue_position, 1);
                line.push_front(*conversation_id);
            }
            QueueEvent::CustomerPicked {
                conversation_id, ..
            } => {
                // (d) a pick takes the longest-waiting.
                prop_assert_eq!(line.front(), Some(conversation_id));
                line.pop_front();
            }
            QueueEvent::CustomerLeftQueue {
                conversation_id, ..
            } => {
                prop_assert!(line.contains(conversation_id), "only a waiting one leaves");
                line.retain(|id| id != conversation_id);
            }
            _ => {}
        }
    }
    Ok(line)
}

fn setup(open: bool, max_waiting: Option<u32>) -> Vec<QueueEvent> {
    let mut settings = QueueSettings::named(name("Support"));
    settings.max_waiting =
        max_waiting.map(|n| Limit::parse(i64::from(n), "max_waiting").expect("a valid limit"));
    let mut events = vec![
        common::queue_created(),
        common::settings_changed(settings),
        handler_added(HANDLERS[0]),
        handler_added(HANDLERS[1]),
    ];
    if open {
        events.push(common::queue_opened());
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_queue_keeps_its_line_whatever_happens(
        open in any::<bool>(),
        max_waiting in proptest::option::of(1u32..6),
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let mut log = setup(open, max_waiting);
        let setup_len = log.len();
        let mut model = Model {
            open,
            max_waiting: max_waiting.map(|n| n as usize),
            ..Model::default()
        };
        for op in &ops {
            let Some((command, expected)) = step(&mut model, op) else { continue };
            let outcome = run::<Queue>(&log, command.clone());
            prop_assert_eq!(&outcome, &expected, "{:?} → {:?}", op, command);
            if let Ok(events) = outcome {
                log.extend(events);
            }
        }
        let queue: Queue = common::fold(log.clone());
        let own = &log[setup_len..];

        // (a) No conversation is picked twice, nor by two agents.
        let mut picked = BTreeMap::new();
        for event in own {
            if let QueueEvent::CustomerPicked { conversation_id, agent_id, .. } = event {
                prop_assert!(
                    picked.insert(*conversation_id, *agent_id).is_none(),
                    "{} picked twice", conversation_id
                );
            }
        }

        // (b) Nobody is lost: every arrival is exactly one of waiting, picked or left.
        let waiting: BTreeSet<Uuid> = queue.waiting.iter().copied().collect();
        prop_assert_eq!(waiting.len(), queue.waiting.len(), "someone waits twice");
        let mut gone = BTreeMap::new();
        for event in own {
            if let QueueEvent::CustomerLeftQueue { conversation_id, reason, .. } = event {
                prop_assert!(gone.insert(*conversation_id, *reason).is_none());
            }
        }
        for conversation_id in &model.arrived {
            let fates = [
                waiting.contains(conversation_id),
                picked.contains_key(conversation_id),
                gone.contains_key(conversation_id),
            ];
            prop_assert_eq!(
                fates.iter().filter(|f| **f).count(), 1,
                "{} is {:?}", conversation_id, fates
            );
            let fate = match (picked.contains_key(conversation_id), gone.get(conversation_id)) {
                (true, _) => Fate::Picked,
                (false, Some(reason)) => Fate::Left(*reason),
                (false, None) => Fate::Waiting,
            };
            prop_assert_eq!(Some(&fate), model.fate.get(conversation_id));
        }
        prop_assert_eq!(
            waiting.len() + picked.len() + gone.len(),
            model.arrived.len(),
            "no one appears from nowhere"
        );
        // … and the line is the arrivals minus the others, in the model's order.
        prop_assert_eq!(&queue.waiting, &model.line);
        // The state holds what is live only: what it keeps of an arrival, it keeps while the
        // customer waits (a queue's stream never ends).
        prop_assert!(queue.arrived_by.keys().all(|id| waiting.contains(id)));

        // (c), (d): positions and picks, replayed from the log alone.
        let replayed = line_of(own)?;
        prop_assert_eq!(&replayed, &model.line);
        for (index, conversation_id) in model.line.iter().enumerate() {
            prop_assert_eq!(queue.position_of(*conversation_id), Some(index + 1));
        }
    }
}

// ---- Conversation: message numbers ----

#[derive(Debug, Clone)]
enum Act {
    /// A message by the customer (`true`) or an agent, with a fresh id.
    Message(bool),
    /// A retried message: an id used before.
    MessageAgain(usize),
    AddTag(u8),
    RemoveTag(u8),
    /// A note by the customer (`true`, refused) or an agent.
    Note(bool),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => any::<bool>().prop_map(Act::Message),
        1 => any::<usize>().prop_map(Act::MessageAgain),
        2 => (0..4u8).prop_map(Act::AddTag),
        1 => (0..4u8).prop_map(Act::RemoveTag),
        2 => any::<bool>().prop_map(Act::Note),
    ]
}

const CONVERSATION: Uuid = Uuid::from_u128(0x2c);

fn author(by_customer: bool) -> Author {
    if by_customer {
        customer(CONVERSATION)
    } else {
        agent(HANDLERS[0])
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn message_seqs_are_1_to_n_without_gaps(
        welcome in any::<bool>(),
        acts in proptest::collection::vec(act(), 0..60),
    ) {
        let start = ConversationCommand::StartCustomerConversation {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            queue_id: QUEUE,
            welcome_message: welcome
                .then(|| WelcomeMessage::parse("Welcome!").expect("a valid welcome")),
            metadata: CustomerMetadata::default(),
        };
        let mut log = run::<Conversation>(&[], start).expect("a conversation starts");
        prop_assert_eq!(&log[0], &customer_started(CONVERSATION));
        let mut message_ids = Vec::new();
        let mut accepted = usize::from(welcome);
        for (n, act) in acts.iter().enumerate() {
            let fresh = id(0x5000 + n as u128);
            let command = match act {
                Act::Message(by_customer) => ConversationCommand::SendMessage {
                    message_id: fresh,
                    author: author(*by_customer),
                    text: Some(MessageText::parse(format!("message {n}")).expect("valid text")),
                    attachments: vec![],
                },
                Act::MessageAgain(index) => {
                    if message_ids.is_empty() {
                        continue;
                    }
                    ConversationCommand::SendMessage {
                        message_id: message_ids[index % message_ids.len()],
                        author: author(false),
                        text: Some(MessageText::parse("again").expect("valid text")),
                        attachments: vec![],
                    }
                }
                Act::AddTag(t) => ConversationCommand::AddTag {
                    tag: Tag::parse(format!("tag-{t}")).expect("a valid tag"),
                    by: author(false),
                },
                Act::RemoveTag(t) => ConversationCommand::RemoveTag {
                    tag: Tag::parse(format!("tag-{t}")).expect("a valid tag"),
                    by: author(false),
                },
                Act::Note(by_customer) => ConversationCommand::AddNote {
                    note_id: fresh,
                    text: NoteText::parse("a note").expect("valid text"),
                    by: author(*by_customer),
                },
            };
            let outcome = run::<Conversation>(&log, command);
            match act {
                Act::Message(_) => {
                    prop_assert!(outcome.is_ok(), "{:?}", outcome);
                    message_ids.push(fresh);
                    accepted += 1;
                }
                Act::MessageAgain(_) | Act::Note(true) => {
                    prop_assert!(outcome.is_err(), "{:?} must be refused", act);
                }
                _ => prop_assert!(outcome.is_ok(), "{:?}", outcome),
            }
            if let Ok(events) = outcome {
                log.extend(events);
            }
        }
        let seqs: Vec<u64> = log
            .iter()
            .filter_map(|event| match event {
                ConversationEvent::MessageSent { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect();
        let expected: Vec<u64> = (1..=accepted as u64).collect();
        prop_assert_eq!(seqs, expected);
        let conversation: Conversation = common::fold(log);
        prop_assert_eq!(conversation.last_seq, accepted as u64);
    }
}
