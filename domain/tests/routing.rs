//! Auto routing: offers of waiting customers, decided by the `Queue`, and capacity, decided by
//! each agent's `Workload`; and the follow-ups that release a workload.

mod common;

use common::{
    at, fold, handler_added, id, joined, name, open_queue, picked, settings_changed, AGENT, ORG,
    OTHER_AGENT, QUEUE, THIRD_AGENT,
};
use cqrs_es::test::TestFramework;
use domain::conversation::{ConversationEvent, EndReason};
use domain::ids::workload_id;
use domain::process::{follow_ups, FollowUp};
use domain::queue::{
    LeaveReason, OfferTimeout, Queue, QueueCommand as C, QueueError, QueueEvent as E,
    QueueSettings, Routing,
};
use domain::values::{Author, Limit};
use domain::workload::{Workload, WorkloadCommand as W, WorkloadError, WorkloadEvent as WE};
use domain::{ErrorKind, Refusal};
use uuid::Uuid;

const OFFER: Uuid = Uuid::from_u128(0x0_5a);
const CUSTOMER: Uuid = Uuid::from_u128(0x0_2a);
const EVENT: Uuid = Uuid::from_u128(0xe1);

fn test() -> TestFramework<Queue> {
    TestFramework::<Queue>::with(())
}

fn auto(timeout: i64) -> E {
    let mut settings = QueueSettings::named(name("Support"));
    settings.routing = Routing::Auto;
    settings.offer_timeout_seconds = OfferTimeout::parse(timeout).expect("a valid test value");
    settings_changed(settings)
}

/// An open auto queue (offers last 30 s) with `AGENT` and `OTHER_AGENT` as handlers and
/// `CUSTOMER` waiting.
fn auto_queue() -> Vec<E> {
    let mut events = open_queue();
    events.extend([auto(30), handler_added(OTHER_AGENT), joined(CUSTOMER, 1)]);
    events
}

fn with(mut events: Vec<E>, more: impl IntoIterator<Item = E>) -> Vec<E> {
    events.extend(more);
    events
}

fn offer(agent_id: Uuid) -> C {
    C::OfferCustomer {
        offer_id: OFFER,
        conversation_id: CUSTOMER,
        agent_id,
        now: at(1, 12),
    }
}

fn offered(agent_id: Uuid) -> E {
    E::CustomerOffered {
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id: CUSTOMER,
        offer_id: OFFER,
        agent_id,
        expires_at: at(1, 12) + chrono::Duration::seconds(30),
    }
}

fn accept(agent_id: Uuid, seconds_later: i64) -> C {
    C::AcceptOffer {
        conversation_id: CUSTOMER,
        agent_id,
        agent_name: "Aino".into(),
        now: at(1, 12) + chrono::Duration::seconds(seconds_later),
    }
}

fn expire(seconds_later: i64) -> C {
    C::ExpireOffer {
        conversation_id: CUSTOMER,
        offer_id: OFFER,
        now: at(1, 12) + chrono::Duration::seconds(seconds_later),
    }
}

fn declined(agent_id: Uuid) -> E {
    E::OfferDeclined {
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id: CUSTOMER,
        offer_id: OFFER,
        agent_id,
    }
}

// ---- offers ----

#[test]
fn an_auto_queue_offers_a_waiting_customer_to_a_handler_until_its_timeout() {
    test()
        .given(auto_queue())
        .when(offer(AGENT))
        .then_expect_events(vec![offered(AGENT)]);
}

#[test]
fn a_manual_queue_makes_no_offers() {
    test()
        .given(with(open_queue(), [joined(CUSTOMER, 1)]))
        .when(offer(AGENT))
        .then_expect_error(QueueError::NotAutoRouted);
}

#[test]
fn a_customer_under_an_offer_is_not_offered_twice() {
    test()
        .given(with(auto_queue(), [offered(AGENT)]))
        .when(offer(OTHER_AGENT))
        .then_expect_error(QueueError::AlreadyOffered);
}

#[test]
fn only_a_waiting_customer_is_offered_and_only_to_a_handler() {
    test()
        .given(with(auto_queue(), [picked(CUSTOMER, OTHER_AGENT)]))
        .when(offer(AGENT))
        .then_expect_error(QueueError::NotWaiting);
    test()
        .given(auto_queue())
        .when(offer(THIRD_AGENT))
        .then_expect_error(QueueError::NotAHandler);
}

#[test]
fn the_offered_agent_accepts_and_so_picks_the_customer() {
    test()
        .given(with(auto_queue(), [offered(AGENT)]))
        .when(accept(AGENT, 29))
        .then_expect_events(vec![
            E::OfferAccepted {
                queue_id: QUEUE,
                organization_id: ORG,
                conversation_id: CUSTOMER,
                offer_id: OFFER,
                agent_id: AGENT,
            },
            picked(CUSTOMER, AGENT),
        ]);
}

#[test]
fn someone_elses_offer_an_expired_one_or_none_cannot_be_accepted() {
    test()
        .given(with(auto_queue(), [offered(AGENT)]))
        .when(accept(OTHER_AGENT, 1))
        .then_expect_error(QueueError::NotYourOffer);
    test()
        .given(with(auto_queue(), [offered(AGENT)]))
        .when(accept(AGENT, 30))
        .then_expect_error(QueueError::OfferExpired);
    test()
        .given(auto_queue())
        .when(accept(AGENT, 1))
        .then_expect_error(QueueError::NoOffer);
    for refusal in [
        QueueError::NotYourOffer,
        QueueError::OfferExpired,
        QueueError::NoOffer,
    ] {
        assert_eq!(refusal.kind(), ErrorKind::Conflict, "{refusal}");
    }
}

#[test]
fn a_manual_pick_takes_an_offered_customer_and_the_offer_is_gone() {
    let given = with(auto_queue(), [offered(AGENT)]);
    test()
        .given(given.clone())
        .when(C::PickCustomer {
            agent_id: OTHER_AGENT,
            agent_name: "Olli".into(),
        })
        .then_expect_events(vec![E::CustomerPicked {
            queue_id: QUEUE,
            organization_id: ORG,
            conversation_id: CUSTOMER,
            agent_id: OTHER_AGENT,
            agent_name: "Olli".into(),
        }]);
    test()
        .given(with(given, [picked(CUSTOMER, OTHER_AGENT)]))
        .when(accept(AGENT, 1))
        .then_expect_error(QueueError::NotWaiting);
}

#[test]
fn a_decline_passes_the_customer_on_and_never_back() {
    test()
        .given(with(auto_queue(), [offered(AGENT)]))
        .when(C::DeclineOffer {
            conversation_id: CUSTOMER,
            agent_id: AGENT,
        })
        .then_expect_events(vec![declined(AGENT)]);
    test()
        .given(with(auto_queue(), [offered(AGENT)]))
        .when(C::DeclineOffer {
            conversation_id: CUSTOMER,
            agent_id: OTHER_AGENT,
        })
        .then_expect_error(QueueError::NotYourOffer);
    let after = with(auto_queue(), [offered(AGENT), declined(AGENT)]);
    test()
        .given(after.clone())
        .when(offer(AGENT))
        .then_expect_error(QueueError::DeclinedBefore);
    test()
        .given(after)
        .when(offer(OTHER_AGENT))
        .then_expect_events(vec![offered(OTHER_AGENT)]);
}

#[test]
fn an_offer_expires_once_due_and_then_passes_on() {
    test()
        .given(with(auto_queue(), [offered(AGENT)]))
        .when(expire(29))
        .then_expect_error(QueueError::OfferNotDue);
    let expired = E::OfferExpired {
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id: CUSTOMER,
        offer_id: OFFER,
        agent_id: AGENT,
    };
    test()
        .given(with(auto_queue(), [offered(AGENT)]))
        .when(expire(30))
        .then_expect_events(vec![expired.clone()]);
    test()
        .given(with(auto_queue(), [offered(AGENT), expired.clone()]))
        .when(expire(31))
        .then_expect_error(QueueError::NoOffer);
    let queue: Queue = fold(with(auto_queue(), [offered(AGENT), expired]));
    assert!(queue.offers.is_empty());
    assert!(queue
        .offered_to(CUSTOMER)
        .is_some_and(|a| a.contains(&AGENT)));
    assert!(!queue.declined(CUSTOMER, AGENT));
}

#[test]
fn a_customer_who_stops_waiting_leaves_nothing_of_its_offers_behind() {
    let queue: Queue = fold(with(
        auto_queue(),
        [
            offered(AGENT),
            declined(AGENT),
            E::CustomerLeftQueue {
                queue_id: QUEUE,
                organization_id: ORG,
                conversation_id: CUSTOMER,
                reason: LeaveReason::Abandoned,
                to_queue_id: None,
                by: None,
                transfer_id: None,
            },
        ],
    ));
    assert!(queue.offers.is_empty());
    assert!(queue.offered_to.is_empty());
    assert!(queue.declined_by.is_empty());
}

#[test]
fn routing_and_the_offer_timeout_are_settings_with_defaults() {
    let settings = QueueSettings::named(name("Support"));
    assert_eq!(settings.routing, Routing::Manual);
    assert_eq!(settings.offer_timeout_seconds.seconds(), 30);
    // Settings stored before routing existed read as manual.
    let old = serde_json::json!({
        "name": "Support", "max_waiting": null, "welcome_message": null,
        "capacity_per_agent": null, "opening_hours": null, "allowed_origins": []
    });
    let read: QueueSettings = serde_json::from_value(old).expect("old settings read");
    assert_eq!(read.routing, Routing::Manual);
    assert!(Routing::parse("sideways").is_err());
    assert!(OfferTimeout::parse(0).is_err());
    assert!(OfferTimeout::parse(3_601).is_err());
}

// ---- workloads ----

fn take(conversation_id: Uuid, capacity: Option<u32>) -> W {
    W::Take {
        organization_id: ORG,
        agent_id: AGENT,
        conversation_id,
        queue_id: QUEUE,
        capacity: capacity.map(|n| Limit::parse(i64::from(n), "limit").expect("valid")),
        at: at(1, 12),
    }
}

fn taken(conversation_id: Uuid) -> WE {
    WE::ConversationTaken {
        organization_id: ORG,
        agent_id: AGENT,
        conversation_id,
        queue_id: QUEUE,
        at: at(1, 12),
    }
}

fn released(conversation_id: Uuid) -> WE {
    WE::ConversationReleased {
        organization_id: ORG,
        agent_id: AGENT,
        conversation_id,
    }
}

fn release(conversation_id: Uuid) -> W {
    W::Release {
        organization_id: ORG,
        agent_id: AGENT,
        conversation_id,
    }
}

fn workload() -> TestFramework<Workload> {
    TestFramework::<Workload>::with(())
}

#[test]
fn an_agent_takes_conversations_up_to_the_capacity() {
    workload()
        .given(vec![taken(id(1))])
        .when(take(id(2), Some(2)))
        .then_expect_events(vec![taken(id(2))]);
    workload()
        .given(vec![taken(id(1)), taken(id(2))])
        .when(take(id(3), Some(2)))
        .then_expect_error(WorkloadError::AtCapacity);
    assert_eq!(WorkloadError::AtCapacity.kind(), ErrorKind::Conflict);
}

#[test]
fn without_a_capacity_an_agent_takes_however_busy() {
    let busy: Vec<WE> = (1..=50).map(|n| taken(id(n))).collect();
    workload()
        .given(busy)
        .when(take(id(51), None))
        .then_expect_events(vec![taken(id(51))]);
}

#[test]
fn a_released_conversation_frees_its_place_once() {
    workload()
        .given(vec![taken(id(1)), taken(id(2)), released(id(1))])
        .when(take(id(3), Some(2)))
        .then_expect_events(vec![taken(id(3))]);
    workload()
        .given(vec![taken(id(1))])
        .when(release(id(1)))
        .then_expect_events(vec![released(id(1))]);
    // A repeat (the gateway's run and the feed's), or a conversation taken before workloads.
    workload()
        .given(vec![taken(id(1)), released(id(1))])
        .when(release(id(1)))
        .then_expect_events(vec![]);
    workload()
        .given(vec![taken(id(1))])
        .when(take(id(1), None))
        .then_expect_error(WorkloadError::AlreadyTaken);
}

#[test]
fn a_workload_remembers_when_its_agent_last_took_one() {
    let workload: Workload = fold(vec![taken(id(1)), released(id(1))]);
    assert!(workload.open.is_empty());
    assert_eq!(workload.last_taken_at, Some(at(1, 12)));
}

#[test]
fn one_workload_per_agent_and_organization() {
    assert_eq!(workload_id(ORG, AGENT), workload_id(ORG, AGENT));
    assert_ne!(workload_id(ORG, AGENT), workload_id(ORG, OTHER_AGENT));
    assert_ne!(workload_id(ORG, AGENT), workload_id(QUEUE, AGENT));
}

// ---- follow-ups ----

#[test]
fn an_agents_conversation_that_ends_is_released_from_its_workload() {
    let ended = domain::Event::Conversation(ConversationEvent::ConversationEnded {
        conversation_id: CUSTOMER,
        organization_id: ORG,
        queue_id: Some(QUEUE),
        agent_id: Some(AGENT),
        was_waiting: false,
        reason: EndReason::Ended,
        by: Author::system(),
        at: None,
    });
    assert_eq!(
        follow_ups(EVENT, &ended),
        vec![FollowUp::Workload {
            workload_id: workload_id(ORG, AGENT),
            command: release(CUSTOMER),
        }]
    );
    let abandoned = domain::Event::Conversation(ConversationEvent::ConversationEnded {
        conversation_id: CUSTOMER,
        organization_id: ORG,
        queue_id: Some(QUEUE),
        agent_id: None,
        was_waiting: true,
        reason: EndReason::Abandoned,
        by: Author::system(),
        at: None,
    });
    assert_eq!(follow_ups(EVENT, &abandoned), vec![]);
}

#[test]
fn a_conversation_transferred_away_from_its_agent_is_released_from_its_workload() {
    let transferred = domain::Event::Queue(E::ConversationTransferred {
        transfer_id: id(9),
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id: CUSTOMER,
        from_queue_id: id(8),
        from_agent_id: Some(AGENT),
        queue_position: 1,
        by: None,
    });
    let follow = follow_ups(EVENT, &transferred);
    assert!(follow.contains(&FollowUp::Workload {
        workload_id: workload_id(ORG, AGENT),
        command: release(CUSTOMER),
    }));
}
