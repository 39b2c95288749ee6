//! Handing a customer conversation over to a named teammate: offered by its agent's side,
//! accepted or declined by that teammate only, while open and unexpired; a new handoff
//! replaces an open one; the accept makes the teammate its agent, and the process manager
//! releases the agent it came from.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{
    agent, assigned, channel_started, customer, customer_started, ended, id, requeued, AGENT,
    CONVERSATION, ORG, OTHER_AGENT, OTHER_QUEUE, QUEUE, THIRD_AGENT, TRANSFER,
};
use cqrs_es::test::TestFramework;
use domain::conversation::{
    Conversation, ConversationCommand as C, ConversationError, ConversationEvent as E,
};
use domain::event::Event;
use domain::ids::workload_id;
use domain::process::{follow_ups, FollowUp};
use domain::workload::WorkloadCommand;
use uuid::Uuid;

fn test() -> TestFramework<Conversation> {
    TestFramework::<Conversation>::with(())
}

fn active() -> Vec<E> {
    vec![
        customer_started(CONVERSATION),
        assigned(CONVERSATION, AGENT, QUEUE),
    ]
}

fn with(mut events: Vec<E>, more: impl IntoIterator<Item = E>) -> Vec<E> {
    events.extend(more);
    events
}

const HANDOFF: Uuid = Uuid::from_u128(0x51);
const OTHER_HANDOFF: Uuid = Uuid::from_u128(0x52);

fn expires() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .expect("a time")
        .with_timezone(&Utc)
}

fn offer(handoff_id: Uuid, to: Uuid) -> C {
    C::OfferHandoff {
        handoff_id,
        to_agent_id: to,
        by: agent(AGENT),
        expires_at: expires(),
        by_operator: false,
    }
}

fn offered(handoff_id: Uuid, to: Uuid) -> E {
    E::HandoffOffered {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        handoff_id,
        queue_id: Some(QUEUE),
        from_agent_id: Some(AGENT),
        to_agent_id: to,
        expires_at: expires(),
        by: agent(AGENT),
    }
}

fn accept(agent_id: Uuid, now: DateTime<Utc>) -> C {
    C::AcceptHandoff {
        agent_id,
        agent_name: "Mate".into(),
        now,
    }
}

fn accepted(from: Uuid, to: Uuid) -> E {
    E::HandoffAccepted {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        handoff_id: HANDOFF,
        queue_id: Some(QUEUE),
        from_agent_id: Some(from),
        agent_id: to,
        agent_name: "Mate".into(),
    }
}

#[test]
fn an_active_customer_conversation_is_offered_to_another_agent() {
    test()
        .given(active())
        .when(offer(HANDOFF, OTHER_AGENT))
        .then_expect_events(vec![offered(HANDOFF, OTHER_AGENT)]);
    test()
        .given(active())
        .when(offer(HANDOFF, AGENT))
        .then_expect_error(ConversationError::HandoffToItsAgent);
    test()
        .given(vec![customer_started(CONVERSATION)])
        .when(offer(HANDOFF, OTHER_AGENT))
        .then_expect_error(ConversationError::NotHandedOver);
    test()
        .given(with(active(), [ended(CONVERSATION, false)]))
        .when(offer(HANDOFF, OTHER_AGENT))
        .then_expect_error(ConversationError::ConversationEnded);
    test()
        .given(vec![channel_started(CONVERSATION)])
        .when(offer(HANDOFF, OTHER_AGENT))
        .then_expect_error(ConversationError::NotACustomerConversation);
    test()
        .given(active())
        .when(C::OfferHandoff {
            handoff_id: HANDOFF,
            to_agent_id: OTHER_AGENT,
            by: customer(CONVERSATION),
            expires_at: expires(),
            by_operator: false,
        })
        .then_expect_error(ConversationError::AgentsOnly);
}

#[test]
fn only_the_named_teammate_accepts_while_it_is_open_and_unexpired() {
    let now = expires() - Duration::seconds(5);
    test()
        .given(with(active(), [offered(HANDOFF, OTHER_AGENT)]))
        .when(accept(OTHER_AGENT, now))
        .then_expect_events(vec![accepted(AGENT, OTHER_AGENT)]);
    test()
        .given(with(active(), [offered(HANDOFF, OTHER_AGENT)]))
        .when(accept(THIRD_AGENT, now))
        .then_expect_error(ConversationError::NotYourHandoff);
    test()
        .given(with(active(), [offered(HANDOFF, OTHER_AGENT)]))
        .when(accept(OTHER_AGENT, expires() + Duration::seconds(1)))
        .then_expect_error(ConversationError::HandoffExpired);
    test()
        .given(active())
        .when(accept(OTHER_AGENT, now))
        .then_expect_error(ConversationError::NoHandoffOpen);
    // Accepted once: the teammate is its agent, and no handoff is open any more.
    test()
        .given(with(
            active(),
            [offered(HANDOFF, OTHER_AGENT), accepted(AGENT, OTHER_AGENT)],
        ))
        .when(accept(OTHER_AGENT, now))
        .then_expect_error(ConversationError::NoHandoffOpen);
    // Ended or moved to another line meanwhile: gone.
    test()
        .given(with(
            active(),
            [offered(HANDOFF, OTHER_AGENT), ended(CONVERSATION, false)],
        ))
        .when(accept(OTHER_AGENT, now))
        .then_expect_error(ConversationError::ConversationEnded);
    test()
        .given(with(
            active(),
            [
                offered(HANDOFF, OTHER_AGENT),
                requeued(CONVERSATION, OTHER_QUEUE, TRANSFER),
            ],
        ))
        .when(accept(OTHER_AGENT, now))
        .then_expect_error(ConversationError::NoHandoffOpen);
}

#[test]
fn the_new_agent_hands_it_on_and_a_new_handoff_replaces_an_open_one() {
    // After an accept, the teammate is the agent: handing it to itself is refused, to the
    // first agent back is fine.
    let after = with(
        active(),
        [offered(HANDOFF, OTHER_AGENT), accepted(AGENT, OTHER_AGENT)],
    );
    test()
        .given(after.clone())
        .when(C::OfferHandoff {
            handoff_id: OTHER_HANDOFF,
            to_agent_id: OTHER_AGENT,
            by: agent(OTHER_AGENT),
            expires_at: expires(),
            by_operator: false,
        })
        .then_expect_error(ConversationError::HandoffToItsAgent);
    test()
        .given(after)
        .when(C::OfferHandoff {
            handoff_id: OTHER_HANDOFF,
            to_agent_id: AGENT,
            by: agent(OTHER_AGENT),
            expires_at: expires(),
            by_operator: false,
        })
        .then_expect_events(vec![E::HandoffOffered {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            handoff_id: OTHER_HANDOFF,
            queue_id: Some(QUEUE),
            from_agent_id: Some(OTHER_AGENT),
            to_agent_id: AGENT,
            expires_at: expires(),
            by: agent(OTHER_AGENT),
        }]);
    let replaced = with(
        active(),
        [
            offered(HANDOFF, OTHER_AGENT),
            offered(OTHER_HANDOFF, THIRD_AGENT),
        ],
    );
    test()
        .given(replaced.clone())
        .when(accept(OTHER_AGENT, expires() - Duration::seconds(5)))
        .then_expect_error(ConversationError::NotYourHandoff);
    test()
        .given(replaced)
        .when(C::DeclineHandoff {
            agent_id: THIRD_AGENT,
        })
        .then_expect_events(vec![E::HandoffDeclined {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            handoff_id: OTHER_HANDOFF,
            queue_id: Some(QUEUE),
            from_agent_id: Some(AGENT),
            agent_id: THIRD_AGENT,
        }]);
}

#[test]
fn a_decline_keeps_it_and_closes_the_handoff() {
    let declined = E::HandoffDeclined {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        handoff_id: HANDOFF,
        queue_id: Some(QUEUE),
        from_agent_id: Some(AGENT),
        agent_id: OTHER_AGENT,
    };
    test()
        .given(with(active(), [offered(HANDOFF, OTHER_AGENT)]))
        .when(C::DeclineHandoff {
            agent_id: THIRD_AGENT,
        })
        .then_expect_error(ConversationError::NotYourHandoff);
    test()
        .given(with(active(), [offered(HANDOFF, OTHER_AGENT)]))
        .when(C::DeclineHandoff {
            agent_id: OTHER_AGENT,
        })
        .then_expect_events(vec![declined.clone()]);
    test()
        .given(with(active(), [offered(HANDOFF, OTHER_AGENT), declined]))
        .when(accept(OTHER_AGENT, expires() - Duration::seconds(5)))
        .then_expect_error(ConversationError::NoHandoffOpen);
}

#[test]
fn an_accepted_handoff_releases_the_agent_it_came_from() {
    let follow = follow_ups(id(0x99), &Event::Conversation(accepted(AGENT, OTHER_AGENT)));
    assert_eq!(
        follow,
        vec![FollowUp::Workload {
            workload_id: workload_id(ORG, AGENT),
            command: WorkloadCommand::Release {
                organization_id: ORG,
                agent_id: AGENT,
                conversation_id: CONVERSATION,
            },
        }]
    );
    for quiet in [offered(HANDOFF, OTHER_AGENT), accepted(AGENT, AGENT)] {
        assert!(follow_ups(id(0x99), &Event::Conversation(quiet)).is_empty());
    }
}

#[test]
fn a_handoff_expires_once_due_and_only_the_open_one() {
    let open = with(active(), [offered(HANDOFF, OTHER_AGENT)]);
    let expire = |handoff_id: Uuid, now: DateTime<Utc>| C::ExpireHandoff { handoff_id, now };
    let expired = E::HandoffExpired {
        conversation_id: CONVERSATION,
        organization_id: ORG,
        handoff_id: HANDOFF,
        queue_id: Some(QUEUE),
        from_agent_id: Some(AGENT),
        agent_id: OTHER_AGENT,
    };
    test()
        .given(open.clone())
        .when(expire(HANDOFF, expires() + Duration::seconds(1)))
        .then_expect_events(vec![expired.clone()]);
    test()
        .given(open.clone())
        .when(expire(HANDOFF, expires()))
        .then_expect_error(ConversationError::HandoffNotDue);
    test()
        .given(open.clone())
        .when(expire(OTHER_HANDOFF, expires() + Duration::seconds(1)))
        .then_expect_error(ConversationError::NoHandoffOpen);
    test()
        .given(with(open.clone(), [expired]))
        .when(expire(HANDOFF, expires() + Duration::seconds(1)))
        .then_expect_error(ConversationError::NoHandoffOpen);
    test()
        .given(with(open, [accepted(AGENT, OTHER_AGENT)]))
        .when(expire(HANDOFF, expires() + Duration::seconds(1)))
        .then_expect_error(ConversationError::NoHandoffOpen);
}

/// The conversation's agent hands it over; another agent only as an operator (a fact of the
/// organization's stream the command carries), decided by the conversation as it is now.
#[test]
fn only_its_agent_or_an_operator_hands_a_conversation_over() {
    let third = Uuid::from_u128(0x77);
    let by_teammate = |by_operator| C::OfferHandoff {
        handoff_id: HANDOFF,
        to_agent_id: third,
        by: agent(OTHER_AGENT),
        expires_at: expires(),
        by_operator,
    };
    test()
        .given(active())
        .when(by_teammate(false))
        .then_expect_error(ConversationError::NotYourConversation);
    test()
        .given(active())
        .when(by_teammate(true))
        .then_expect_events(vec![E::HandoffOffered {
            conversation_id: CONVERSATION,
            organization_id: ORG,
            handoff_id: HANDOFF,
            queue_id: Some(QUEUE),
            from_agent_id: Some(AGENT),
            to_agent_id: third,
            expires_at: expires(),
            by: agent(OTHER_AGENT),
        }]);
}
