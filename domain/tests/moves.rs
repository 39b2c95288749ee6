//! Where a transfer or an end of a conversation starts (`Conversation::transfer_from`,
//! `end_from`), and the conversation's own refusals of a transfer, decided in the append that
//! moves the customer (`Requeue`): only a customer conversation moves, and not once it ended.

mod common;

use common::{
    assigned, channel_started, customer_started, ended, fold, requeued, AGENT, CONVERSATION,
    OTHER_QUEUE, QUEUE, TRANSFER,
};
use cqrs_es::test::TestFramework;
use domain::conversation::{
    Conversation, ConversationCommand as C, ConversationError, ConversationEvent as E, EndFrom,
    TransferFrom,
};
use domain::{ErrorKind, Refusal};

fn requeue(from_agent_id: Option<uuid::Uuid>) -> C {
    C::Requeue {
        queue_id: OTHER_QUEUE,
        transfer_id: TRANSFER,
        from_agent_id,
    }
}

#[test]
fn a_waiting_customer_is_transferred_from_its_line() {
    let waiting: Conversation = fold([customer_started(CONVERSATION)]);
    assert_eq!(
        waiting.transfer_from(OTHER_QUEUE),
        Ok(TransferFrom::Line { queue_id: QUEUE })
    );
    assert_eq!(waiting.end_from(), Ok(EndFrom::Line { queue_id: QUEUE }));
}

#[test]
fn a_picked_conversation_is_transferred_from_its_agent() {
    let picked: Conversation = fold([
        customer_started(CONVERSATION),
        assigned(CONVERSATION, AGENT, QUEUE),
    ]);
    let from = TransferFrom::Agent {
        queue_id: QUEUE,
        agent_id: Some(AGENT),
    };
    // Into the queue it was picked from, too: it waits there again.
    assert_eq!(picked.transfer_from(OTHER_QUEUE), Ok(from));
    assert_eq!(picked.transfer_from(QUEUE), Ok(from));
    assert_eq!(picked.end_from(), Ok(EndFrom::Here));
}

#[test]
fn a_customer_is_not_transferred_into_the_line_it_waits_in() {
    let waiting: Conversation = fold([customer_started(CONVERSATION)]);
    assert_eq!(
        waiting.transfer_from(QUEUE),
        Err(ConversationError::AlreadyWaiting)
    );
    let transferred: Conversation = fold([
        customer_started(CONVERSATION),
        assigned(CONVERSATION, AGENT, QUEUE),
        requeued(CONVERSATION, OTHER_QUEUE, TRANSFER),
    ]);
    assert_eq!(
        transferred.transfer_from(OTHER_QUEUE),
        Err(ConversationError::AlreadyWaiting)
    );
    assert_eq!(
        ConversationError::AlreadyWaiting.kind(),
        ErrorKind::Conflict
    );
}

#[test]
fn only_a_customer_conversation_is_transferred() {
    let channel: Conversation = fold([channel_started(CONVERSATION)]);
    assert_eq!(
        channel.transfer_from(QUEUE),
        Err(ConversationError::NotACustomerConversation)
    );
    assert_eq!(
        ConversationError::NotACustomerConversation.kind(),
        ErrorKind::Conflict
    );
    // And in the append itself.
    TestFramework::<Conversation>::with(())
        .given(vec![channel_started(CONVERSATION)])
        .when(requeue(None))
        .then_expect_error(ConversationError::NotACustomerConversation);
}

#[test]
fn an_ended_conversation_is_neither_transferred_nor_ended_again() {
    let history = [
        customer_started(CONVERSATION),
        assigned(CONVERSATION, AGENT, QUEUE),
        ended(CONVERSATION, false),
    ];
    let gone: Conversation = fold(history.clone());
    assert_eq!(
        gone.transfer_from(OTHER_QUEUE),
        Err(ConversationError::ConversationEnded)
    );
    assert_eq!(gone.end_from(), Err(ConversationError::ConversationEnded));
    assert_eq!(
        ConversationError::ConversationEnded.kind(),
        ErrorKind::Conflict
    );
    // And in the append itself: it ended after the transfer looked.
    TestFramework::<Conversation>::with(())
        .given(history.to_vec())
        .when(requeue(Some(AGENT)))
        .then_expect_error(ConversationError::ConversationEnded);
}

#[test]
fn an_unknown_conversation_is_not_transferred() {
    let nothing = Conversation::default();
    assert_eq!(
        nothing.transfer_from(QUEUE),
        Err(ConversationError::UnknownConversation)
    );
}

#[test]
fn a_transfer_requeues_the_conversation_in_its_target() {
    TestFramework::<Conversation>::with(())
        .given(vec![customer_started(CONVERSATION)])
        .when(requeue(None))
        .then_expect_events(vec![E::ConversationRequeued {
            conversation_id: CONVERSATION,
            organization_id: common::ORG,
            queue_id: OTHER_QUEUE,
            transfer_id: TRANSFER,
        }]);
}
