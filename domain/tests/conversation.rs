//! `Conversation`: customer conversations, channels and direct chats; messages numbered from 1,
//! attachments, tags, notes, metadata, calls, the rating and the end.

mod common;

use common::{
    agent, assigned, attachment, channel_started, customer, customer_started, direct_started,
    ended, fold, id, metadata, name, requeued, uploaded, welcome, AGENT, CONVERSATION, ORG,
    OTHER_AGENT, OTHER_QUEUE, OTHER_TRANSFER, QUEUE, THIRD_AGENT, TRANSFER,
};
use cqrs_es::test::TestFramework;
use domain::conversation::{
    Conversation, ConversationCommand as C, ConversationError, ConversationEvent as E,
    ConversationKind, EndReason, ATTACHMENT_MAX_BYTES, CONVERSATION_ATTACHMENTS_MAX_BYTES,
    RECENT_MESSAGE_IDS,
};
use domain::ids::direct_conversation_id;
use domain::metadata::{CustomerMetadata, LiveMetadata};
use domain::values::{Author, MessageText, NoteText, RatingComment, Score, Tag};
use serde_json::json;
use uuid::Uuid;

fn test() -> TestFramework<Conversation> {
    TestFramework::<Conversation>::with(())
}

fn with(mut events: Vec<E>, more: impl IntoIterator<Item = E>) -> Vec<E> {
    events.extend(more);
    events
}

/// A customer conversation picked by `AGENT`.
fn active() -> Vec<E> {
    vec![
        customer_started(CONVERSATION),
        assigned(CONVERSATION, AGENT, QUEUE),
    ]
}

fn waiting() -> Vec<E> {
    vec![customer_started(CONVERSATION)]
}

fn direct_id() -> Uuid {
    direct_conversation_id(ORG, AGENT, OTHER_AGENT)
}

fn text(raw: &str) -> MessageText {
    MessageText::parse(raw).expect("a valid test value")
}

fn tag(raw: &str) -> Tag {
    Tag::parse(raw).expect("a valid test value")
}

fn send(message_id: Uuid, author: Author, attachments: Vec<Uuid>) -> C {
    C::SendMessage {
        message_id,
        author,
        text: Some(text("hello")),
        attachments,
    }
}

fn sent(conversation_id: Uuid, message_id: Uuid, seq: u64, author: Author) -> E {
    E::MessageSent {
        conversation_id,
        organization_id: ORG,
        message_id,
        seq,
        author,
        text: "hello".into(),
        attachments: Vec::new(),
    }
}

fn stranger_customer() -> Author {
    customer(id(0x77))
}

// ---- StartCustomerConversation ----

fn start_customer(welcome_message: Option<&str>, metadata: CustomerMetadata) -> C {
    C::StartCustomerConversation {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        queue_id: QUEUE,
        welcome_message: welcome_message.map(welcome),
        metadata,
    }
}

#[test]
fn a_customer_conversation_starts_waiting_in_its_queue() {
    test()
        .given_no_previous_events()
        .when(start_customer(None, CustomerMetadata::default()))
        .then_expect_events(vec![customer_started(CONVERSATION)]);
}

#[test]
fn the_welcome_message_is_message_1_from_system() {
    test()
        .given_no_previous_events()
        .when(start_customer(
            Some("Welcome!"),
            CustomerMetadata::default(),
        ))
        .then_expect_events(vec![
            customer_started(CONVERSATION),
            E::MessageSent {
                conversation_id: CONVERSATION,
                organization_id: ORG,
                message_id: Uuid::new_v5(&CONVERSATION, b"welcome"),
                seq: 1,
                author: Author::system(),
                text: "Welcome!".into(),
                attachments: Vec::new(),
            },
        ]);
}

#[test]
fn the_pre_chat_form_is_recorded_as_the_customers_metadata() {
    let form = metadata(json!({"name": "Ann", "email": "ann@example.com"}));
    test()
        .given_no_previous_events()
        .when(start_customer(None, form.clone()))
        .then_expect_events(vec![
            customer_started(CONVERSATION),
            E::CustomerMetadataSet {
                conversation_id: CONVERSATION,
                organization_id: ORG,
                metadata: form,
                by: Author::customer(CONVERSATION, "Ann"),
            },
        ]);
}

#[test]
fn a_customer_without_a_name_is_called_customer() {
    let form = metadata(json!({"email": "ann@example.com"}));
    let events = test()
        .given_no_previous_events()
        .when(start_customer(Some("Hi"), form))
        .inspect_result()
        .unwrap();
    assert!(matches!(
        &events[1],
        E::CustomerMetadataSet { by, .. } if *by == Author::customer(CONVERSATION, "Customer")
    ));
    // The welcome message is still message 1, after the metadata.
    assert!(matches!(&events[2], E::MessageSent { seq: 1, .. }));
}

#[test]
fn a_conversation_starts_once() {
    test()
        .given(waiting())
        .when(start_customer(
            Some("Welcome!"),
            CustomerMetadata::default(),
        ))
        .then_expect_error(ConversationError::AlreadyStarted);
}

// ---- StartChannel ----

#[test]
fn an_operator_starts_a_channel() {
    test()
        .given_no_previous_events()
        .when(C::StartChannel {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            name: name("Team"),
            by: AGENT,
        })
        .then_expect_events(vec![channel_started(CONVERSATION)]);
}

#[test]
fn a_channel_starts_once() {
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(C::StartChannel {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            name: name("Team"),
            by: AGENT,
        })
        .then_expect_error(ConversationError::AlreadyStarted);
}

// ---- StartDirect ----

#[test]
fn two_agents_start_a_direct_chat() {
    test()
        .given_no_previous_events()
        .when(C::StartDirect {
            conversation_id: direct_id(),
            organization_id: ORG,
            agents: [OTHER_AGENT, AGENT],
        })
        .then_expect_events(vec![E::ConversationStarted {
            conversation_id: direct_id(),
            organization_id: ORG,
            kind: ConversationKind::Direct,
            queue_id: None,
            name: None,
            participants: vec![AGENT, OTHER_AGENT],
            by: Some(OTHER_AGENT),
        }]);
}

#[test]
fn an_agent_has_no_direct_chat_with_itself() {
    test()
        .given_no_previous_events()
        .when(C::StartDirect {
            conversation_id: direct_conversation_id(ORG, AGENT, AGENT),
            organization_id: ORG,
            agents: [AGENT, AGENT],
        })
        .then_expect_error(ConversationError::DirectWithSelf);
}

#[test]
fn a_direct_chats_id_is_derived_from_its_pair() {
    test()
        .given_no_previous_events()
        .when(C::StartDirect {
            conversation_id: id(0x55),
            organization_id: ORG,
            agents: [AGENT, OTHER_AGENT],
        })
        .then_expect_error(ConversationError::DirectIdNotOfPair);
}

#[test]
fn a_pair_has_one_direct_chat() {
    test()
        .given(vec![direct_started(direct_id(), AGENT, OTHER_AGENT)])
        .when(C::StartDirect {
            conversation_id: direct_id(),
            organization_id: ORG,
            agents: [OTHER_AGENT, AGENT],
        })
        .then_expect_error(ConversationError::AlreadyStarted);
}

// ---- AssignAgent ----

#[test]
fn a_pick_assigns_the_agent() {
    test()
        .given(waiting())
        .when(C::AssignAgent {
            agent_id: AGENT,
            queue_id: QUEUE,
        })
        .then_expect_events(vec![assigned(CONVERSATION, AGENT, QUEUE)]);
}

#[test]
fn an_assignment_is_done_once() {
    test()
        .given(active())
        .when(C::AssignAgent {
            agent_id: AGENT,
            queue_id: QUEUE,
        })
        .then_expect_error(ConversationError::AlreadyAssigned);
}

#[test]
fn an_ended_conversation_is_not_assigned() {
    test()
        .given(with(waiting(), [ended(CONVERSATION, true)]))
        .when(C::AssignAgent {
            agent_id: AGENT,
            queue_id: QUEUE,
        })
        .then_expect_error(ConversationError::ConversationEnded);
}

#[test]
fn only_a_customer_conversation_is_assigned() {
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(C::AssignAgent {
            agent_id: AGENT,
            queue_id: QUEUE,
        })
        .then_expect_error(ConversationError::NotACustomerConversation);
}

#[test]
fn an_unknown_conversation_is_not_assigned() {
    test()
        .given_no_previous_events()
        .when(C::AssignAgent {
            agent_id: AGENT,
            queue_id: QUEUE,
        })
        .then_expect_error(ConversationError::UnknownConversation);
}

#[test]
fn a_late_pick_from_the_queue_it_waited_in_before_a_transfer_is_refused() {
    // Waiting in OTHER_QUEUE since the transfer; the pick in QUEUE came before it.
    test()
        .given(with(
            waiting(),
            [requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)],
        ))
        .when(C::AssignAgent {
            agent_id: AGENT,
            queue_id: QUEUE,
        })
        .then_expect_error(ConversationError::AlreadyAssigned);
    // The pick in the queue it waits in now is assigned.
    test()
        .given(with(
            waiting(),
            [requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)],
        ))
        .when(C::AssignAgent {
            agent_id: OTHER_AGENT,
            queue_id: OTHER_QUEUE,
        })
        .then_expect_events(vec![assigned(CONVERSATION, OTHER_AGENT, OTHER_QUEUE)]);
}

#[test]
fn a_pick_from_a_queue_the_conversation_never_waited_in_is_refused() {
    test()
        .given(waiting())
        .when(C::AssignAgent {
            agent_id: AGENT,
            queue_id: OTHER_QUEUE,
        })
        .then_expect_error(ConversationError::AlreadyAssigned);
}

// ---- Requeue ----

fn requeue(queue_id: Uuid, transfer_id: Uuid) -> C {
    C::Requeue {
        queue_id,
        transfer_id,
        from_agent_id: None,
    }
}

fn requeue_from(queue_id: Uuid, transfer_id: Uuid, agent: Uuid) -> C {
    C::Requeue {
        queue_id,
        transfer_id,
        from_agent_id: Some(agent),
    }
}

#[test]
fn a_picked_conversation_is_transferred_from_the_agent_that_has_it() {
    test()
        .given(active())
        .when(requeue_from(OTHER_QUEUE, TRANSFER, AGENT))
        .then_expect_events(vec![requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)]);
}

#[test]
fn a_second_transfer_decided_on_the_same_view_is_refused() {
    // Two agents transfer the conversation AGENT has, to two queues, at once: the first
    // requeued it; the second, still believing AGENT has it, must not make it wait twice.
    test()
        .given(with(
            active(),
            [requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)],
        ))
        .when(requeue_from(QUEUE, OTHER_TRANSFER, AGENT))
        .then_expect_error(ConversationError::NoLongerWithAgent);
    // Picked by another agent since: a transfer from AGENT is stale too.
    test()
        .given(with(
            active(),
            [
                requeued(CONVERSATION, OTHER_QUEUE, TRANSFER),
                assigned(CONVERSATION, OTHER_AGENT, OTHER_QUEUE),
            ],
        ))
        .when(requeue_from(QUEUE, OTHER_TRANSFER, AGENT))
        .then_expect_error(ConversationError::NoLongerWithAgent);
    // A conversation still waiting was never picked: nobody to transfer it from.
    test()
        .given(waiting())
        .when(requeue_from(OTHER_QUEUE, TRANSFER, AGENT))
        .then_expect_error(ConversationError::NoLongerWithAgent);
}

#[test]
fn a_transferred_conversation_waits_again_in_its_new_queue() {
    test()
        .given(active())
        .when(requeue(OTHER_QUEUE, TRANSFER))
        .then_expect_events(vec![requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)]);
    // A waiting customer moved between queues is requeued too.
    test()
        .given(waiting())
        .when(requeue(OTHER_QUEUE, TRANSFER))
        .then_expect_events(vec![requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)]);
}

#[test]
fn a_transfer_already_followed_is_not_followed_again() {
    test()
        .given(with(
            active(),
            [requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)],
        ))
        .when(requeue(OTHER_QUEUE, TRANSFER))
        .then_expect_error(ConversationError::AlreadyWaiting);
}

#[test]
fn a_repeated_requeue_after_a_pick_is_refused() {
    // Picked in its new queue since: a late repeat must not put it back to waiting.
    test()
        .given(with(
            active(),
            [
                requeued(CONVERSATION, OTHER_QUEUE, TRANSFER),
                assigned(CONVERSATION, OTHER_AGENT, OTHER_QUEUE),
            ],
        ))
        .when(requeue(OTHER_QUEUE, TRANSFER))
        .then_expect_error(ConversationError::AlreadyWaiting);
    // Also after later transfers: every followed transfer is remembered.
    test()
        .given(with(
            active(),
            [
                requeued(CONVERSATION, OTHER_QUEUE, TRANSFER),
                assigned(CONVERSATION, OTHER_AGENT, OTHER_QUEUE),
                requeued(CONVERSATION, QUEUE, OTHER_TRANSFER),
                assigned(CONVERSATION, AGENT, QUEUE),
            ],
        ))
        .when(requeue(OTHER_QUEUE, TRANSFER))
        .then_expect_error(ConversationError::AlreadyWaiting);
}

#[test]
fn a_new_transfer_is_followed_even_into_the_queue_it_waits_in() {
    // Only the transfer's id decides: another transfer to the same queue is followed.
    test()
        .given(with(
            active(),
            [requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)],
        ))
        .when(requeue(OTHER_QUEUE, OTHER_TRANSFER))
        .then_expect_events(vec![requeued(CONVERSATION, OTHER_QUEUE, OTHER_TRANSFER)]);
    // And after a pick there: its agent sent it back to the line.
    test()
        .given(with(
            active(),
            [
                requeued(CONVERSATION, OTHER_QUEUE, TRANSFER),
                assigned(CONVERSATION, OTHER_AGENT, OTHER_QUEUE),
            ],
        ))
        .when(requeue(OTHER_QUEUE, OTHER_TRANSFER))
        .then_expect_events(vec![requeued(CONVERSATION, OTHER_QUEUE, OTHER_TRANSFER)]);
}

#[test]
fn an_ended_conversation_is_not_requeued() {
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(requeue(OTHER_QUEUE, TRANSFER))
        .then_expect_error(ConversationError::ConversationEnded);
}

#[test]
fn only_a_customer_conversation_is_requeued() {
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(requeue(QUEUE, TRANSFER))
        .then_expect_error(ConversationError::NotACustomerConversation);
    test()
        .given_no_previous_events()
        .when(requeue(QUEUE, TRANSFER))
        .then_expect_error(ConversationError::UnknownConversation);
}

// ---- SendMessage ----

#[test]
fn messages_are_numbered_from_1() {
    test()
        .given(active())
        .when(send(id(1), customer(CONVERSATION), vec![]))
        .then_expect_events(vec![sent(CONVERSATION, id(1), 1, customer(CONVERSATION))]);
    test()
        .given(with(
            active(),
            [sent(CONVERSATION, id(1), 1, customer(CONVERSATION))],
        ))
        .when(send(id(2), agent(AGENT), vec![]))
        .then_expect_events(vec![sent(CONVERSATION, id(2), 2, agent(AGENT))]);
}

#[test]
fn a_waiting_customer_may_write() {
    test()
        .given(waiting())
        .when(send(id(1), customer(CONVERSATION), vec![]))
        .then_expect_events(vec![sent(CONVERSATION, id(1), 1, customer(CONVERSATION))]);
}

#[test]
fn a_customer_writes_only_in_its_own_conversation() {
    test()
        .given(active())
        .when(send(id(1), stranger_customer(), vec![]))
        .then_expect_error(ConversationError::NotAParticipant);
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(send(id(1), customer(CONVERSATION), vec![]))
        .then_expect_error(ConversationError::NotAParticipant);
}

#[test]
fn only_its_two_agents_write_in_a_direct_chat() {
    let direct = vec![direct_started(direct_id(), AGENT, OTHER_AGENT)];
    test()
        .given(direct.clone())
        .when(send(id(1), agent(THIRD_AGENT), vec![]))
        .then_expect_error(ConversationError::NotAParticipant);
    test()
        .given(direct)
        .when(send(id(1), agent(OTHER_AGENT), vec![]))
        .then_expect_events(vec![sent(direct_id(), id(1), 1, agent(OTHER_AGENT))]);
}

#[test]
fn any_agent_of_the_organization_writes_in_a_channel() {
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(send(id(1), agent(THIRD_AGENT), vec![]))
        .then_expect_events(vec![sent(CONVERSATION, id(1), 1, agent(THIRD_AGENT))]);
}

#[test]
fn an_ended_conversation_takes_no_messages() {
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(send(id(1), agent(AGENT), vec![]))
        .then_expect_error(ConversationError::ConversationEnded);
}

#[test]
fn a_message_is_sent_once() {
    test()
        .given(with(active(), [sent(CONVERSATION, id(1), 1, agent(AGENT))]))
        .when(send(id(1), agent(AGENT), vec![]))
        .then_expect_error(ConversationError::DuplicateMessage);
}

/// `AGENT`'s conversation after `count` messages, ids `id(0x1000 + n)` for n from 0.
fn after_messages(count: u64) -> Vec<E> {
    let messages = (0..count).map(|n| {
        sent(
            CONVERSATION,
            id(0x1000 + u128::from(n)),
            n + 1,
            agent(AGENT),
        )
    });
    with(active(), messages)
}

#[test]
fn a_repeated_message_id_is_refused_while_it_is_among_the_latest() {
    let window = RECENT_MESSAGE_IDS as u64;
    for repeated in [0, window / 2, window - 1] {
        test()
            .given(after_messages(window))
            .when(send(
                id(0x1000 + u128::from(repeated)),
                agent(AGENT),
                vec![],
            ))
            .then_expect_error(ConversationError::DuplicateMessage);
    }
    test()
        .given(after_messages(10_000))
        .when(send(id(0x1000 + 9_999), customer(CONVERSATION), vec![]))
        .then_expect_error(ConversationError::DuplicateMessage);
    test()
        .given(after_messages(10_000))
        .when(send(id(0x1000 + 10_000), agent(AGENT), vec![]))
        .then_expect_events(vec![sent(
            CONVERSATION,
            id(0x1000 + 10_000),
            10_001,
            agent(AGENT),
        )]);
}

#[test]
fn a_conversations_state_does_not_grow_with_its_messages() {
    let state: Conversation = fold(after_messages(10_000));
    assert_eq!(state.last_seq, 10_000);
    assert!(state.recent_message_ids.len() <= RECENT_MESSAGE_IDS);
    assert_eq!(state.recent_message_ids.back(), Some(&id(0x1000 + 9_999)));
    let written = serde_json::to_string(&state).expect("a state writes");
    assert!(written.len() < 10_000, "{} bytes", written.len());
}

#[test]
fn a_message_carries_its_attachments() {
    let file = attachment(0x61, 1_000);
    test()
        .given(with(active(), [uploaded(CONVERSATION, file.clone())]))
        .when(send(
            id(1),
            customer(CONVERSATION),
            vec![file.attachment_id],
        ))
        .then_expect_events(vec![E::MessageSent {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            message_id: id(1),
            seq: 1,
            author: customer(CONVERSATION),
            text: "hello".into(),
            attachments: vec![file],
        }]);
}

#[test]
fn a_message_of_attachments_alone_needs_no_text() {
    let file = attachment(0x61, 1_000);
    let mut only_files = send(id(1), customer(CONVERSATION), vec![file.attachment_id]);
    if let C::SendMessage { text, .. } = &mut only_files {
        *text = None;
    }
    test()
        .given(with(active(), [uploaded(CONVERSATION, file.clone())]))
        .when(only_files)
        .then_expect_events(vec![E::MessageSent {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            message_id: id(1),
            seq: 1,
            author: customer(CONVERSATION),
            text: String::new(),
            attachments: vec![file],
        }]);
}

#[test]
fn a_message_with_neither_text_nor_attachments_is_refused() {
    let mut empty = send(id(1), customer(CONVERSATION), vec![]);
    if let C::SendMessage { text, .. } = &mut empty {
        *text = None;
    }
    test()
        .given(active())
        .when(empty)
        .then_expect_error(ConversationError::EmptyMessage);
}

#[test]
fn a_message_may_carry_only_this_conversations_attachments() {
    let ours = attachment(0x61, 1_000);
    test()
        .given(with(active(), [uploaded(CONVERSATION, ours.clone())]))
        .when(send(
            id(1),
            customer(CONVERSATION),
            vec![ours.attachment_id, id(0x62)],
        ))
        .then_expect_error(ConversationError::UnknownAttachment);
}

#[test]
fn a_message_carries_at_most_10_attachments() {
    let files: Vec<_> = (0..11).map(|n| attachment(0x100 + n, 10)).collect();
    let history = with(
        active(),
        files.iter().map(|f| uploaded(CONVERSATION, f.clone())),
    );
    let ids: Vec<Uuid> = files.iter().map(|f| f.attachment_id).collect();
    test()
        .given(history.clone())
        .when(send(id(1), customer(CONVERSATION), ids.clone()))
        .then_expect_error(ConversationError::TooManyAttachments);
    let events = test()
        .given(history)
        .when(send(id(1), customer(CONVERSATION), ids[..10].to_vec()))
        .inspect_result()
        .unwrap();
    assert!(matches!(&events[..], [E::MessageSent { attachments, .. }] if attachments.len() == 10));
}

#[test]
fn nobody_writes_in_an_unknown_conversation() {
    test()
        .given_no_previous_events()
        .when(send(id(1), agent(AGENT), vec![]))
        .then_expect_error(ConversationError::UnknownConversation);
}

// ---- UploadAttachment ----

fn upload(n: u128, size: u64, by: Author) -> C {
    C::UploadAttachment {
        attachment: attachment(n, size),
        by,
    }
}

#[test]
fn a_participant_uploads_an_attachment() {
    test()
        .given(active())
        .when(upload(0x61, ATTACHMENT_MAX_BYTES, customer(CONVERSATION)))
        .then_expect_events(vec![uploaded(
            CONVERSATION,
            attachment(0x61, ATTACHMENT_MAX_BYTES),
        )]);
}

#[test]
fn an_attachment_is_at_most_10_mib() {
    test()
        .given(active())
        .when(upload(0x61, ATTACHMENT_MAX_BYTES + 1, agent(AGENT)))
        .then_expect_error(ConversationError::AttachmentTooLarge);
}

#[test]
fn a_conversations_attachments_are_at_most_100_mib_together() {
    let full: Vec<E> = (0..10)
        .map(|n| uploaded(CONVERSATION, attachment(0x100 + n, ATTACHMENT_MAX_BYTES)))
        .collect();
    assert_eq!(
        10 * ATTACHMENT_MAX_BYTES,
        CONVERSATION_ATTACHMENTS_MAX_BYTES
    );
    test()
        .given(with(active(), full))
        .when(upload(0x61, 1, agent(AGENT)))
        .then_expect_error(ConversationError::AttachmentQuotaExceeded);
}

#[test]
fn an_attachment_is_uploaded_once() {
    test()
        .given(with(
            active(),
            [uploaded(CONVERSATION, attachment(0x61, 5))],
        ))
        .when(upload(0x61, 5, customer(CONVERSATION)))
        .then_expect_error(ConversationError::DuplicateAttachment);
}

#[test]
fn an_ended_conversation_takes_no_attachments() {
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(upload(0x61, 5, customer(CONVERSATION)))
        .then_expect_error(ConversationError::ConversationEnded);
}

#[test]
fn another_customer_cannot_upload() {
    test()
        .given(active())
        .when(upload(0x61, 5, stranger_customer()))
        .then_expect_error(ConversationError::NotAParticipant);
    test()
        .given_no_previous_events()
        .when(upload(0x61, 5, agent(AGENT)))
        .then_expect_error(ConversationError::UnknownConversation);
}

// ---- AddTag / RemoveTag ----

fn tag_added(raw: &str, by: Author) -> E {
    E::TagAdded {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        tag: tag(raw),
        by,
    }
}

#[test]
fn an_agent_tags_a_conversation() {
    test()
        .given(active())
        .when(C::AddTag {
            tag: tag("Billing"),
            by: agent(AGENT),
        })
        .then_expect_events(vec![tag_added("billing", agent(AGENT))]);
}

#[test]
fn adding_an_existing_tag_writes_nothing() {
    test()
        .given(with(active(), [tag_added("billing", agent(AGENT))]))
        .when(C::AddTag {
            tag: tag("BILLING"),
            by: agent(OTHER_AGENT),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_customer_cannot_tag() {
    test()
        .given(active())
        .when(C::AddTag {
            tag: tag("vip"),
            by: customer(CONVERSATION),
        })
        .then_expect_error(ConversationError::AgentsOnly);
    test()
        .given(with(active(), [tag_added("vip", agent(AGENT))]))
        .when(C::RemoveTag {
            tag: tag("vip"),
            by: customer(CONVERSATION),
        })
        .then_expect_error(ConversationError::AgentsOnly);
}

#[test]
fn an_outsider_cannot_tag_a_direct_chat() {
    test()
        .given(vec![direct_started(direct_id(), AGENT, OTHER_AGENT)])
        .when(C::AddTag {
            tag: tag("vip"),
            by: agent(THIRD_AGENT),
        })
        .then_expect_error(ConversationError::NotAParticipant);
}

#[test]
fn an_agent_removes_a_tag() {
    test()
        .given(with(active(), [tag_added("billing", agent(AGENT))]))
        .when(C::RemoveTag {
            tag: tag("Billing"),
            by: agent(OTHER_AGENT),
        })
        .then_expect_events(vec![E::TagRemoved {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            tag: tag("billing"),
            by: agent(OTHER_AGENT),
        }]);
}

#[test]
fn removing_an_absent_tag_writes_nothing() {
    test()
        .given(active())
        .when(C::RemoveTag {
            tag: tag("billing"),
            by: agent(AGENT),
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_unknown_conversation_has_no_tags() {
    test()
        .given_no_previous_events()
        .when(C::AddTag {
            tag: tag("x"),
            by: agent(AGENT),
        })
        .then_expect_error(ConversationError::UnknownConversation);
    test()
        .given_no_previous_events()
        .when(C::RemoveTag {
            tag: tag("x"),
            by: agent(AGENT),
        })
        .then_expect_error(ConversationError::UnknownConversation);
}

// ---- AddNote ----

fn note(note_id: Uuid, by: Author) -> C {
    C::AddNote {
        note_id,
        text: NoteText::parse("called back").expect("a valid test value"),
        by,
    }
}

#[test]
fn an_agent_adds_a_private_note() {
    test()
        .given(active())
        .when(note(id(0x81), agent(AGENT)))
        .then_expect_events(vec![E::NoteAdded {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            note_id: id(0x81),
            text: NoteText::parse("called back").expect("a valid test value"),
            by: agent(AGENT),
        }]);
}

#[test]
fn a_customer_cannot_add_a_note() {
    test()
        .given(active())
        .when(note(id(0x81), customer(CONVERSATION)))
        .then_expect_error(ConversationError::AgentsOnly);
}

#[test]
fn a_note_is_added_once() {
    let history = with(
        active(),
        [E::NoteAdded {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            note_id: id(0x81),
            text: NoteText::parse("called back").expect("a valid test value"),
            by: agent(AGENT),
        }],
    );
    test()
        .given(history)
        .when(note(id(0x81), agent(AGENT)))
        .then_expect_error(ConversationError::DuplicateNote);
}

#[test]
fn notes_need_a_participant_of_a_known_conversation() {
    test()
        .given(vec![direct_started(direct_id(), AGENT, OTHER_AGENT)])
        .when(note(id(0x81), agent(THIRD_AGENT)))
        .then_expect_error(ConversationError::NotAParticipant);
    test()
        .given_no_previous_events()
        .when(note(id(0x81), agent(AGENT)))
        .then_expect_error(ConversationError::UnknownConversation);
}

// ---- SetCustomerMetadata ----

#[test]
fn the_customer_or_an_agent_sets_the_customers_metadata() {
    for by in [customer(CONVERSATION), agent(AGENT)] {
        let form = metadata(json!({"name": "Ann", "plan": "gold"}));
        test()
            .given(active())
            .when(C::SetCustomerMetadata {
                metadata: form.clone(),
                by: by.clone(),
            })
            .then_expect_events(vec![E::CustomerMetadataSet {
                conversation_id: CONVERSATION,
                organization_id: ORG,
                metadata: form,
                by,
            }]);
    }
}

#[test]
fn only_a_customer_conversation_has_customer_metadata() {
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(C::SetCustomerMetadata {
            metadata: metadata(json!({"a": 1})),
            by: agent(AGENT),
        })
        .then_expect_error(ConversationError::NotACustomerConversation);
}

#[test]
fn another_customer_cannot_set_metadata() {
    test()
        .given(active())
        .when(C::SetCustomerMetadata {
            metadata: metadata(json!({"a": 1})),
            by: stranger_customer(),
        })
        .then_expect_error(ConversationError::NotAParticipant);
    test()
        .given_no_previous_events()
        .when(C::SetCustomerMetadata {
            metadata: metadata(json!({"a": 1})),
            by: agent(AGENT),
        })
        .then_expect_error(ConversationError::UnknownConversation);
}

#[test]
fn an_ended_conversation_takes_metadata_from_its_agents_only() {
    let form = metadata(json!({"name": "Eve"}));
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(C::SetCustomerMetadata {
            metadata: form.clone(),
            by: customer(CONVERSATION),
        })
        .then_expect_error(ConversationError::ConversationEnded);
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(C::SetCustomerMetadata {
            metadata: form.clone(),
            by: agent(AGENT),
        })
        .then_expect_events(vec![E::CustomerMetadataSet {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            metadata: form,
            by: agent(AGENT),
        }]);
}

// ---- UpdateLiveMetadata ----

fn live(by: Author) -> C {
    C::UpdateLiveMetadata {
        live: LiveMetadata::parse(json!({"page": "https://shop.example/cart"}))
            .expect("a valid test value"),
        by,
    }
}

#[test]
fn the_customer_updates_its_live_metadata() {
    test()
        .given(waiting())
        .when(live(customer(CONVERSATION)))
        .then_expect_events(vec![E::LiveMetadataUpdated {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            live: LiveMetadata::parse(json!({"page": "https://shop.example/cart"}))
                .expect("a valid test value"),
        }]);
}

#[test]
fn only_the_customer_updates_live_metadata() {
    test()
        .given(active())
        .when(live(agent(AGENT)))
        .then_expect_error(ConversationError::CustomerOnly);
    test()
        .given(active())
        .when(live(stranger_customer()))
        .then_expect_error(ConversationError::NotAParticipant);
}

#[test]
fn an_ended_conversation_takes_no_live_metadata() {
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(live(customer(CONVERSATION)))
        .then_expect_error(ConversationError::ConversationEnded);
}

#[test]
fn a_channel_has_no_live_metadata() {
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(live(agent(AGENT)))
        .then_expect_error(ConversationError::NotACustomerConversation);
}

// ---- StartCall / EndCall ----

fn call_started(call_id: Uuid, by: Author) -> E {
    E::CallStarted {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        call_id,
        by,
    }
}

fn call_ended(call_id: Uuid, by: Author) -> E {
    E::CallEnded {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        call_id,
        by,
    }
}

#[test]
fn a_participant_starts_a_call() {
    test()
        .given(active())
        .when(C::StartCall {
            call_id: id(0x91),
            by: customer(CONVERSATION),
        })
        .then_expect_events(vec![call_started(id(0x91), customer(CONVERSATION))]);
}

#[test]
fn one_call_at_a_time() {
    test()
        .given(with(active(), [call_started(id(0x91), agent(AGENT))]))
        .when(C::StartCall {
            call_id: id(0x92),
            by: customer(CONVERSATION),
        })
        .then_expect_error(ConversationError::CallInProgress);
    // After the first one ends, a second may start.
    test()
        .given(with(
            active(),
            [
                call_started(id(0x91), agent(AGENT)),
                call_ended(id(0x91), agent(AGENT)),
            ],
        ))
        .when(C::StartCall {
            call_id: id(0x92),
            by: customer(CONVERSATION),
        })
        .then_expect_events(vec![call_started(id(0x92), customer(CONVERSATION))]);
}

#[test]
fn a_call_id_is_used_once() {
    test()
        .given(with(
            active(),
            [
                call_started(id(0x91), agent(AGENT)),
                call_ended(id(0x91), agent(AGENT)),
            ],
        ))
        .when(C::StartCall {
            call_id: id(0x91),
            by: agent(AGENT),
        })
        .then_expect_error(ConversationError::DuplicateCall);
}

#[test]
fn an_ended_conversation_takes_no_calls() {
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(C::StartCall {
            call_id: id(0x91),
            by: agent(AGENT),
        })
        .then_expect_error(ConversationError::ConversationEnded);
}

#[test]
fn an_outsider_cannot_call_into_a_direct_chat() {
    test()
        .given(vec![direct_started(direct_id(), AGENT, OTHER_AGENT)])
        .when(C::StartCall {
            call_id: id(0x91),
            by: agent(THIRD_AGENT),
        })
        .then_expect_error(ConversationError::NotAParticipant);
}

#[test]
fn a_participant_ends_a_call() {
    test()
        .given(with(active(), [call_started(id(0x91), agent(AGENT))]))
        .when(C::EndCall {
            call_id: id(0x91),
            by: customer(CONVERSATION),
        })
        .then_expect_events(vec![call_ended(id(0x91), customer(CONVERSATION))]);
}

#[test]
fn an_unknown_call_cannot_end() {
    test()
        .given(active())
        .when(C::EndCall {
            call_id: id(0x91),
            by: agent(AGENT),
        })
        .then_expect_error(ConversationError::UnknownCall);
}

#[test]
fn a_call_ends_once() {
    test()
        .given(with(
            active(),
            [
                call_started(id(0x91), agent(AGENT)),
                call_ended(id(0x91), agent(AGENT)),
            ],
        ))
        .when(C::EndCall {
            call_id: id(0x91),
            by: agent(AGENT),
        })
        .then_expect_error(ConversationError::CallEnded);
}

#[test]
fn ending_the_conversation_ends_its_call() {
    test()
        .given(with(
            active(),
            [
                call_started(id(0x91), agent(AGENT)),
                ended(CONVERSATION, false),
            ],
        ))
        .when(C::EndCall {
            call_id: id(0x91),
            by: agent(AGENT),
        })
        .then_expect_error(ConversationError::CallEnded);
}

// ---- Rate ----

fn rate(score: i64, by: Author) -> C {
    C::Rate {
        score: Score::parse(score).expect("a valid test value"),
        comment: Some(RatingComment::parse("quick!").expect("a valid test value")),
        by,
    }
}

fn rated() -> E {
    E::ConversationRated {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        queue_id: Some(QUEUE),
        agent_id: Some(AGENT),
        score: Score::parse(5).expect("a valid test value"),
        comment: Some(RatingComment::parse("quick!").expect("a valid test value")),
    }
}

#[test]
fn the_customer_rates_the_conversation_for_its_queue_and_agent() {
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(rate(5, customer(CONVERSATION)))
        .then_expect_events(vec![rated()]);
}

#[test]
fn a_conversation_is_rated_once() {
    test()
        .given(with(active(), [ended(CONVERSATION, false), rated()]))
        .when(rate(1, customer(CONVERSATION)))
        .then_expect_error(ConversationError::AlreadyRated);
}

#[test]
fn only_the_customer_rates() {
    test()
        .given(active())
        .when(rate(5, agent(AGENT)))
        .then_expect_error(ConversationError::CustomerOnly);
    test()
        .given(active())
        .when(rate(5, stranger_customer()))
        .then_expect_error(ConversationError::NotAParticipant);
}

#[test]
fn a_channel_is_not_rated() {
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(rate(5, agent(AGENT)))
        .then_expect_error(ConversationError::NotACustomerConversation);
}

// ---- EndConversation ----

fn end(by: Author) -> C {
    C::EndConversation {
        by,
        reason: EndReason::Ended,
        left_queue: None,
        at: None,
    }
}

#[test]
fn a_waiting_conversation_ends_only_after_its_line_let_it_go() {
    // Still in QUEUE's line: ending it there would leave the line holding an ended customer.
    test()
        .given(waiting())
        .when(end(customer(CONVERSATION)))
        .then_expect_error(ConversationError::StillWaiting);
    // Transferred to OTHER_QUEUE meanwhile: having left QUEUE is not enough.
    test()
        .given(with(
            waiting(),
            [requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)],
        ))
        .when(C::EndConversation {
            by: customer(CONVERSATION),
            reason: EndReason::Abandoned,
            left_queue: Some(QUEUE),
            at: None,
        })
        .then_expect_error(ConversationError::StillWaiting);
}

#[test]
fn an_agent_ends_an_active_conversation() {
    test()
        .given(active())
        .when(end(agent(AGENT)))
        .then_expect_events(vec![E::ConversationEnded {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            queue_id: Some(QUEUE),
            agent_id: Some(AGENT),
            was_waiting: false,
            reason: EndReason::Ended,
            by: agent(AGENT),
            at: None,
        }]);
}

#[test]
fn a_conversation_ended_while_waiting_says_so() {
    test()
        .given(waiting())
        .when(C::EndConversation {
            by: customer(CONVERSATION),
            reason: EndReason::Abandoned,
            left_queue: Some(QUEUE),
            at: None,
        })
        .then_expect_events(vec![E::ConversationEnded {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            queue_id: Some(QUEUE),
            agent_id: None,
            was_waiting: true,
            reason: EndReason::Abandoned,
            by: customer(CONVERSATION),
            at: None,
        }]);
}

#[test]
fn a_requeued_conversation_has_no_agent_when_it_ends() {
    let events = test()
        .given(with(
            active(),
            [requeued(CONVERSATION, OTHER_QUEUE, TRANSFER)],
        ))
        .when(C::EndConversation {
            by: Author::system(),
            reason: EndReason::Ended,
            left_queue: Some(OTHER_QUEUE),
            at: None,
        })
        .inspect_result()
        .unwrap();
    assert!(matches!(
        &events[..],
        [E::ConversationEnded {
            queue_id: Some(q),
            agent_id: None,
            was_waiting: true,
            ..
        }] if *q == OTHER_QUEUE
    ));
}

#[test]
fn a_conversation_ends_once() {
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(end(customer(CONVERSATION)))
        .then_expect_error(ConversationError::ConversationEnded);
}

#[test]
fn channels_and_direct_chats_do_not_end() {
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(end(agent(AGENT)))
        .then_expect_error(ConversationError::NotACustomerConversation);
    test()
        .given(vec![direct_started(direct_id(), AGENT, OTHER_AGENT)])
        .when(end(agent(AGENT)))
        .then_expect_error(ConversationError::NotACustomerConversation);
}

#[test]
fn another_customer_cannot_end_the_conversation() {
    test()
        .given(active())
        .when(end(stranger_customer()))
        .then_expect_error(ConversationError::NotAParticipant);
    test()
        .given_no_previous_events()
        .when(end(agent(AGENT)))
        .then_expect_error(ConversationError::UnknownConversation);
}

// ---- MarkRead ----

fn read(seq: u64, by: Author) -> C {
    C::MarkRead { seq, by }
}

fn was_read(agent_id: Uuid, seq: u64) -> E {
    E::ConversationRead {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        agent_id,
        seq,
    }
}

#[test]
fn an_agent_marks_what_it_has_read() {
    test()
        .given(with(
            active(),
            [
                sent(CONVERSATION, id(0x41), 1, customer(CONVERSATION)),
                sent(CONVERSATION, id(0x42), 2, customer(CONVERSATION)),
            ],
        ))
        .when(read(1, agent(OTHER_AGENT)))
        .then_expect_events(vec![was_read(OTHER_AGENT, 1)]);
}

#[test]
fn reading_an_older_message_again_changes_nothing() {
    test()
        .given(with(
            active(),
            [
                sent(CONVERSATION, id(0x41), 1, customer(CONVERSATION)),
                sent(CONVERSATION, id(0x42), 2, customer(CONVERSATION)),
                was_read(OTHER_AGENT, 2),
            ],
        ))
        .when(read(1, agent(OTHER_AGENT)))
        .then_expect_events(vec![]);
}

#[test]
fn an_agent_has_read_what_it_wrote() {
    test()
        .given(with(
            active(),
            [
                sent(CONVERSATION, id(0x41), 1, customer(CONVERSATION)),
                sent(CONVERSATION, id(0x42), 2, agent(AGENT)),
            ],
        ))
        .when(read(2, agent(AGENT)))
        .then_expect_events(vec![]);
}

#[test]
fn a_marker_past_the_newest_message_is_refused() {
    test()
        .given(with(
            active(),
            [sent(CONVERSATION, id(0x41), 1, customer(CONVERSATION))],
        ))
        .when(read(2, agent(AGENT)))
        .then_expect_error(ConversationError::ReadPastTheEnd);
}

#[test]
fn a_customer_keeps_no_marker() {
    test()
        .given(with(
            active(),
            [sent(CONVERSATION, id(0x41), 1, agent(AGENT))],
        ))
        .when(read(1, customer(CONVERSATION)))
        .then_expect_error(ConversationError::AgentsOnly);
}

// ---- Left messages ----

fn left_message() -> Vec<E> {
    let leave = C::LeaveMessage {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        queue_id: QUEUE,
        metadata: metadata(json!({"name": "Ann", "email": "ann@example.test"})),
        message_id: id(90),
        text: text("call me"),
    };
    test()
        .given_no_previous_events()
        .when(leave)
        .inspect_result()
        .expect("a left message")
}

#[test]
fn a_left_message_starts_with_the_customers_words_and_waits_in_no_line() {
    let events = left_message();
    assert!(matches!(
        &events[0],
        E::ConversationStarted { kind: ConversationKind::LeftMessage, queue_id: Some(q), .. } if *q == QUEUE
    ));
    assert!(matches!(&events[1], E::CustomerMetadataSet { .. }));
    assert!(matches!(
        &events[2],
        E::MessageSent { seq: 1, author, text, .. } if author.is_customer() && text == "call me"
    ));
    // It ends without any line to leave first.
    test()
        .given(left_message())
        .when(end(agent(AGENT)))
        .inspect_result()
        .expect("ended");
}

#[test]
fn the_first_agent_to_answer_a_left_message_becomes_its_agent() {
    let events = test()
        .given(left_message())
        .when(send(id(91), agent(AGENT), vec![]))
        .inspect_result()
        .expect("answered");
    assert!(
        matches!(&events[0], E::AgentAssigned { agent_id, queue_id, .. } if *agent_id == AGENT && *queue_id == QUEUE)
    );
    assert!(matches!(&events[1], E::MessageSent { seq: 2, .. }));
    let mut answered = left_message();
    answered.extend(events);
    let again = test()
        .given(answered)
        .when(send(id(92), agent(OTHER_AGENT), vec![]))
        .inspect_result()
        .expect("a second answer");
    assert_eq!(again.len(), 1, "no second assignment: {again:?}");
}

#[test]
fn nobody_writes_as_the_customer_of_a_left_message() {
    test()
        .given(left_message())
        .when(send(id(91), customer(CONVERSATION), vec![]))
        .then_expect_error(ConversationError::LeftMessageIsAnswered);
}

// ---- Reopen ----

fn ended_at(at: chrono::DateTime<chrono::Utc>) -> Vec<E> {
    with(
        active(),
        [E::ConversationEnded {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            queue_id: Some(QUEUE),
            agent_id: Some(AGENT),
            was_waiting: false,
            reason: EndReason::Ended,
            by: agent(AGENT),
            at: Some(at),
        }],
    )
}

#[test]
fn a_customer_continues_with_its_agent_within_the_window_only() {
    let end = chrono::Utc::now();
    let reopen = |seconds: i64, within: Option<u32>| C::Reopen {
        by: customer(CONVERSATION),
        at: end + chrono::Duration::seconds(seconds),
        within_seconds: within,
    };
    test()
        .given(ended_at(end))
        .when(reopen(60, Some(3600)))
        .then_expect_events(vec![E::ConversationReopened {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            queue_id: Some(QUEUE),
            agent_id: AGENT,
            by: customer(CONVERSATION),
        }]);
    for (seconds, within) in [(3601, Some(3600)), (60, None)] {
        test()
            .given(ended_at(end))
            .when(reopen(seconds, within))
            .then_expect_error(ConversationError::ReopenWindowPassed);
    }
    // An end without a time (from before reopening existed) is never continued by its customer.
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(reopen(1, Some(3600)))
        .then_expect_error(ConversationError::ReopenWindowPassed);
}

#[test]
fn an_agent_reopens_any_ended_customer_conversation_and_becomes_its_agent() {
    let reopen = C::Reopen {
        by: agent(OTHER_AGENT),
        at: chrono::Utc::now(),
        within_seconds: None,
    };
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(reopen.clone())
        .then_expect_events(vec![E::ConversationReopened {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            queue_id: Some(QUEUE),
            agent_id: OTHER_AGENT,
            by: agent(OTHER_AGENT),
        }]);
    test()
        .given(active())
        .when(reopen.clone())
        .then_expect_error(ConversationError::NotEnded);
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(reopen)
        .then_expect_error(ConversationError::NotACustomerConversation);
}
