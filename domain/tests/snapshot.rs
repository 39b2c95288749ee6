//! A snapshot is an aggregate's state as JSON, read back by the same fold version: what is read
//! back must be the state that was written, or a command started from a snapshot would decide
//! on something else than one that replayed the log.

mod common;

use common::{
    agent, assigned, attachment, customer_started, fold, id, joined, open_queue, picked, requeued,
    transferred_in, uploaded, AGENT, CONVERSATION, ORG, OTHER_QUEUE, QUEUE, TRANSFER,
};
use domain::conversation::{Conversation, ConversationEvent};
use domain::organization::{Organization, OrganizationEvent};
use domain::queue::Queue;
use domain::Snapshot;

/// The state folded from `history`, written and read back, writes the same JSON, and goes on
/// to the same state as the original when `next` is applied to both.
fn round_trips<A: Snapshot>(history: Vec<A::Event>, next: A::Event) {
    let state: A = fold(history);
    let written = serde_json::to_value(&state).expect("a state writes");
    let mut read: A = serde_json::from_value(written.clone()).expect("and reads back");
    assert_eq!(serde_json::to_value(&read).expect("json"), written);
    let mut state = state;
    state.apply(next.clone());
    read.apply(next);
    assert_eq!(
        serde_json::to_value(&read).expect("json"),
        serde_json::to_value(&state).expect("json")
    );
}

#[test]
fn a_queue_reads_back_from_its_snapshot() {
    let mut history = open_queue();
    history.extend([
        joined(id(1), 1),
        joined(id(2), 2),
        transferred_in(TRANSFER, id(9), OTHER_QUEUE),
        picked(id(1), AGENT),
    ]);
    round_trips::<Queue>(history, picked(id(9), AGENT));
}

#[test]
fn a_conversation_reads_back_from_its_snapshot() {
    let history = vec![
        customer_started(CONVERSATION),
        assigned(CONVERSATION, AGENT, QUEUE),
        uploaded(CONVERSATION, attachment(1, 1_000)),
        requeued(CONVERSATION, OTHER_QUEUE, TRANSFER),
    ];
    round_trips::<Conversation>(history, assigned(CONVERSATION, AGENT, OTHER_QUEUE));
}

#[test]
fn a_conversations_latest_message_ids_read_back_in_order() {
    let sent = |n: u64| ConversationEvent::MessageSent {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        message_id: id(0x1000 + u128::from(n)),
        seq: n,
        author: agent(AGENT),
        text: "hello".into(),
        attachments: Vec::new(),
    };
    let mut history = vec![
        customer_started(CONVERSATION),
        assigned(CONVERSATION, AGENT, QUEUE),
    ];
    history.extend((1..=200).map(sent));
    // The next message pushes the oldest remembered id out, in the snapshot as in the state.
    round_trips::<Conversation>(history, sent(201));
}

#[test]
fn an_organizations_pending_and_used_invitations_read_back() {
    let invited = |n: u128| OrganizationEvent::InvitationCreated {
        organization_id: ORG,
        invitation_id: id(0x4000 + n),
        email: domain::values::Email::parse("new@example.com").expect("an email"),
        role: domain::values::Role::Agent,
        expires_at: common::at(8, 12),
        invited_by: None,
        created_at: Some(common::at(1, 12)),
    };
    let accepted = |n: u128| OrganizationEvent::InvitationAccepted {
        organization_id: ORG,
        invitation_id: id(0x4000 + n),
        agent_id: id(0x9000 + n),
    };
    let mut history = vec![OrganizationEvent::OrganizationCreated {
        organization_id: ORG,
        name: common::name("Acme"),
        owner_id: None,
    }];
    for n in 0..100 {
        history.push(invited(n));
        history.push(accepted(n));
    }
    history.push(invited(100));
    history.push(invited(101));
    round_trips::<Organization>(history, accepted(100));
}
