//! Erasing a customer's personal data (`EraseCustomer` → `CustomerErased`, issue 17): customer
//! conversations only, ended first when they have not, once; nothing personal added after.

mod common;

use common::{
    agent, assigned, at, attachment, channel_started, customer, customer_started, direct_started,
    ended, fold, id, metadata, uploaded, AGENT, CONVERSATION, ORG, OTHER_AGENT, QUEUE,
};
use cqrs_es::test::TestFramework;
use domain::conversation::{
    Conversation, ConversationCommand as C, ConversationError, ConversationEvent as E, EndReason,
    ErasureReason,
};
use domain::ids::direct_conversation_id;
use domain::metadata::LiveMetadata;
use domain::values::{Author, MessageText, NoteText, Score, ERASED};
use serde_json::json;

fn test() -> TestFramework<Conversation> {
    TestFramework::<Conversation>::with(())
}

fn operator() -> Author {
    agent(OTHER_AGENT)
}

fn erase() -> C {
    C::EraseCustomer {
        by: operator(),
        reason: ErasureReason::Request,
        at: at(5, 12),
    }
}

fn erased(reason: ErasureReason) -> E {
    E::CustomerErased {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        queue_id: Some(QUEUE),
        by: operator(),
        reason,
        at: at(5, 12),
    }
}

fn active() -> Vec<E> {
    vec![
        customer_started(CONVERSATION),
        assigned(CONVERSATION, AGENT, QUEUE),
    ]
}

fn ended_and_erased() -> Vec<E> {
    let mut events = active();
    events.push(ended(CONVERSATION, false));
    events.push(erased(ErasureReason::Request));
    events
}

#[test]
fn an_ended_customer_conversation_is_erased_with_one_event() {
    let mut given = active();
    given.push(ended(CONVERSATION, false));
    test()
        .given(given)
        .when(erase())
        .then_expect_events(vec![erased(ErasureReason::Request)]);
}

#[test]
fn an_active_conversation_ends_by_the_eraser_before_it_is_erased() {
    test()
        .given(active())
        .when(erase())
        .then_expect_events(vec![
            E::ConversationEnded {
                conversation_id: CONVERSATION,
                organization_id: ORG,
                queue_id: Some(QUEUE),
                agent_id: Some(AGENT),
                was_waiting: false,
                reason: EndReason::Ended,
                by: operator(),
                at: Some(at(5, 12)),
            },
            erased(ErasureReason::Request),
        ]);
}

#[test]
fn retention_is_recorded_as_the_reason() {
    let mut given = active();
    given.push(ended(CONVERSATION, false));
    test()
        .given(given)
        .when(C::EraseCustomer {
            by: operator(),
            reason: ErasureReason::Retention,
            at: at(5, 12),
        })
        .then_expect_events(vec![erased(ErasureReason::Retention)]);
}

#[test]
fn erasing_an_erased_conversation_appends_nothing() {
    test()
        .given(ended_and_erased())
        .when(erase())
        .then_expect_events(vec![]);
}

#[test]
fn a_customer_still_in_a_line_leaves_it_before_its_erasure() {
    test()
        .given(vec![customer_started(CONVERSATION)])
        .when(erase())
        .then_expect_error(ConversationError::StillWaiting);
}

#[test]
fn a_waiting_left_message_is_erased_as_it_waits_in_no_line() {
    let leave = C::LeaveMessage {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        queue_id: QUEUE,
        metadata: metadata(json!({"name": "Ann", "email": "ann@example.test"})),
        message_id: id(90),
        text: MessageText::parse("call me").expect("a valid test value"),
    };
    let given = test()
        .given_no_previous_events()
        .when(leave)
        .inspect_result()
        .expect("a left message");
    let events = test()
        .given(given)
        .when(erase())
        .inspect_result()
        .expect("erased");
    assert!(matches!(
        events.as_slice(),
        [
            E::ConversationEnded {
                was_waiting: true,
                ..
            },
            E::CustomerErased { .. }
        ]
    ));
}

#[test]
fn channels_and_direct_chats_have_no_customer_to_erase() {
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(erase())
        .then_expect_error(ConversationError::NotACustomerConversation);
    let direct = direct_conversation_id(ORG, AGENT, OTHER_AGENT);
    test()
        .given(vec![direct_started(direct, AGENT, OTHER_AGENT)])
        .when(erase())
        .then_expect_error(ConversationError::NotACustomerConversation);
}

#[test]
fn an_unknown_conversation_is_not_erased() {
    test()
        .given_no_previous_events()
        .when(erase())
        .then_expect_error(ConversationError::UnknownConversation);
}

#[test]
fn the_erased_state_keeps_no_file_names() {
    let mut events = active();
    events.push(uploaded(CONVERSATION, attachment(7, 100)));
    events.push(ended(CONVERSATION, false));
    let before = fold::<Conversation>(events.clone());
    assert_eq!(before.attachments[&id(7)].name.as_str(), "file-7.png");
    assert!(!before.erased);
    events.push(erased(ErasureReason::Request));
    let after = fold::<Conversation>(events);
    assert!(after.erased);
    assert_eq!(after.attachments[&id(7)].name.as_str(), ERASED);
    // The size still counts toward the quota; the snapshot holds no name.
    assert_eq!(after.attachment_bytes, 100);
    let snapshot = serde_json::to_string(&after).expect("a snapshot");
    assert!(!snapshot.contains("file-7.png"), "{snapshot}");
}

#[test]
fn a_snapshot_from_before_erasure_existed_reads_as_not_erased() {
    let mut snapshot = serde_json::to_value(fold::<Conversation>(active())).expect("json");
    snapshot
        .as_object_mut()
        .expect("an object")
        .remove("erased");
    let state: Conversation = serde_json::from_value(snapshot).expect("an older snapshot");
    assert!(!state.erased);
}

#[test]
fn nothing_personal_is_added_to_an_erased_conversation() {
    let refused = [
        C::SendMessage {
            message_id: id(0x41),
            author: agent(AGENT),
            text: Some(MessageText::parse("again").expect("a valid test value")),
            attachments: Vec::new(),
        },
        C::SendMessage {
            message_id: id(0x42),
            author: customer(CONVERSATION),
            text: Some(MessageText::parse("again").expect("a valid test value")),
            attachments: Vec::new(),
        },
        C::AddNote {
            note_id: id(0x43),
            text: NoteText::parse("a note").expect("a valid test value"),
            by: agent(AGENT),
        },
        C::SetCustomerMetadata {
            metadata: metadata(json!({"name": "Ann"})),
            by: agent(AGENT),
        },
        C::UpdateLiveMetadata {
            live: LiveMetadata::parse(json!({"page": "/x"})).expect("a valid test value"),
            by: customer(CONVERSATION),
        },
        C::UploadAttachment {
            attachment: attachment(8, 10),
            by: agent(AGENT),
        },
        C::Reopen {
            by: agent(AGENT),
            at: at(5, 13),
            within_seconds: None,
        },
        C::Rate {
            score: Score::parse(5).expect("a valid test value"),
            comment: None,
            by: customer(CONVERSATION),
        },
    ];
    for command in refused {
        test()
            .given(ended_and_erased())
            .when(command)
            .then_expect_error(ConversationError::Erased);
    }
}

#[test]
fn the_refusal_is_a_conflict() {
    use domain::error::{ErrorKind, Refusal};
    assert_eq!(ConversationError::Erased.kind(), ErrorKind::Conflict);
    assert_eq!(ConversationError::Erased.to_string(), "conversation erased");
}
