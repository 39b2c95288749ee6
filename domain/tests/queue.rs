//! `Queue`: the only authority on who waits. Join, pick, leave, time-out and transfers.

mod common;

use common::{
    agent, customer, fold, handler_added, id, joined, metadata, name, open_queue, picked,
    queue_closed, queue_created, queue_opened, settings_changed, transferred_in, welcome, AGENT,
    ORG, OTHER_AGENT, OTHER_ORG, OTHER_QUEUE, OTHER_TRANSFER, QUEUE, TRANSFER,
};
use cqrs_es::test::TestFramework;
use domain::metadata::CustomerMetadata;
use domain::queue::{
    LeaveReason, Queue, QueueCommand as C, QueueError, QueueEvent as E, QueueSettings,
    SettingsPatch,
};
use domain::schedule::Origin;
use domain::values::{Author, Limit};
use domain::{ErrorKind, Refusal};
use serde_json::json;
use uuid::Uuid;

fn test() -> TestFramework<Queue> {
    TestFramework::<Queue>::with(())
}

fn with(mut events: Vec<E>, more: impl IntoIterator<Item = E>) -> Vec<E> {
    events.extend(more);
    events
}

fn join(conversation_id: Uuid) -> C {
    C::JoinQueue {
        conversation_id,
        metadata: CustomerMetadata::default(),
        customer: None,
    }
}

fn pick(agent_id: Uuid) -> C {
    C::PickCustomer {
        agent_id,
        agent_name: "Aino".into(),
    }
}

fn limit(n: i64) -> Limit {
    Limit::parse(n, "limit").expect("a valid test value")
}

fn settings_with(change: impl FnOnce(&mut QueueSettings)) -> QueueSettings {
    let mut settings = QueueSettings::named(name("Support"));
    change(&mut settings);
    settings
}

fn left(conversation_id: Uuid, reason: LeaveReason, by: Option<Author>) -> E {
    E::CustomerLeftQueue {
        queue_id: QUEUE,
        organization_id: ORG,
        conversation_id,
        reason,
        to_queue_id: None,
        by,
        transfer_id: None,
    }
}

// ---- CreateQueue ----

#[test]
fn a_queue_is_created_with_its_name() {
    test()
        .given_no_previous_events()
        .when(C::CreateQueue {
            queue_id: QUEUE,
            organization_id: ORG,
            name: name("Support"),
        })
        .then_expect_events(vec![queue_created()]);
}

#[test]
fn a_queue_is_created_once() {
    test()
        .given(vec![queue_created()])
        .when(C::CreateQueue {
            queue_id: QUEUE,
            organization_id: ORG,
            name: name("Sales"),
        })
        .then_expect_error(QueueError::AlreadyCreated);
}

#[test]
fn a_new_queue_is_closed() {
    let queue: Queue = fold(vec![queue_created()]);
    assert!(!queue.open);
    test()
        .given(vec![queue_created()])
        .when(join(id(1)))
        .then_expect_error(QueueError::QueueClosed);
}

// ---- OpenQueue / CloseQueue ----

#[test]
fn a_closed_queue_opens() {
    test()
        .given(vec![queue_created()])
        .when(C::OpenQueue {
            by: Some(AGENT),
            by_operator: true,
        })
        .then_expect_events(vec![E::QueueOpened {
            queue_id: QUEUE,
            organization_id: ORG,
            by: Some(AGENT),
        }]);
}

#[test]
fn opening_an_open_queue_writes_nothing() {
    test()
        .given(vec![queue_created(), queue_opened()])
        .when(C::OpenQueue {
            by: Some(AGENT),
            by_operator: true,
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_open_queue_closes() {
    test()
        .given(vec![queue_created(), queue_opened()])
        .when(C::CloseQueue {
            by: None,
            by_operator: false,
        })
        .then_expect_events(vec![queue_closed()]);
}

#[test]
fn closing_a_closed_queue_writes_nothing() {
    test()
        .given(vec![queue_created(), queue_opened(), queue_closed()])
        .when(C::CloseQueue {
            by: None,
            by_operator: false,
        })
        .then_expect_events(vec![]);
}

/// Its handlers, the organization's operators and the clock open and close a queue; another
/// member of the organization may not (the queue's stream decides, not a read model).
#[test]
fn only_its_handlers_operators_and_the_clock_open_and_close_a_queue() {
    let opened = |by| E::QueueOpened {
        queue_id: QUEUE,
        organization_id: ORG,
        by,
    };
    let member = C::OpenQueue {
        by: Some(OTHER_AGENT),
        by_operator: false,
    };
    test()
        .given(vec![queue_created()])
        .when(member.clone())
        .then_expect_error(QueueError::NotAHandler);
    test()
        .given(vec![queue_created(), queue_opened()])
        .when(C::CloseQueue {
            by: Some(OTHER_AGENT),
            by_operator: false,
        })
        .then_expect_error(QueueError::NotAHandler);
    test()
        .given(vec![queue_created(), handler_added(OTHER_AGENT)])
        .when(member)
        .then_expect_events(vec![opened(Some(OTHER_AGENT))]);
    test()
        .given(vec![queue_created()])
        .when(C::OpenQueue {
            by: Some(OTHER_AGENT),
            by_operator: true,
        })
        .then_expect_events(vec![opened(Some(OTHER_AGENT))]);
    test()
        .given(vec![queue_created()])
        .when(C::OpenQueue {
            by: None,
            by_operator: false,
        })
        .then_expect_events(vec![opened(None)]);
}

#[test]
fn an_unknown_queue_neither_opens_nor_closes() {
    test()
        .given_no_previous_events()
        .when(C::OpenQueue {
            by: None,
            by_operator: false,
        })
        .then_expect_error(QueueError::UnknownQueue);
    test()
        .given_no_previous_events()
        .when(C::CloseQueue {
            by: None,
            by_operator: false,
        })
        .then_expect_error(QueueError::UnknownQueue);
}

// ---- ChangeSettings ----

#[test]
fn a_settings_change_records_the_whole_settings_after_it() {
    let patch = SettingsPatch {
        max_waiting: Some(Some(limit(5))),
        welcome_message: Some(Some(welcome("Hello!"))),
        ..SettingsPatch::default()
    };
    test()
        .given(vec![queue_created()])
        .when(C::ChangeSettings {
            patch,
            by: Some(AGENT),
        })
        .then_expect_events(vec![E::QueueSettingsChanged {
            queue_id: QUEUE,
            organization_id: ORG,
            settings: settings_with(|s| {
                s.max_waiting = Some(limit(5));
                s.welcome_message = Some(welcome("Hello!"));
            }),
            by: Some(AGENT),
        }]);
}

#[test]
fn a_null_clears_a_setting_and_an_absent_field_keeps_it() {
    let before = settings_with(|s| {
        s.max_waiting = Some(limit(5));
        s.capacity_per_agent = Some(limit(2));
    });
    let patch = SettingsPatch {
        max_waiting: Some(None),
        ..SettingsPatch::default()
    };
    test()
        .given(vec![queue_created(), settings_changed(before)])
        .when(C::ChangeSettings { patch, by: None })
        .then_expect_events(vec![settings_changed(settings_with(|s| {
            s.capacity_per_agent = Some(limit(2));
        }))]);
}

#[test]
fn service_level_targets_are_set_and_cleared_one_by_one() {
    let both = settings_with(|s| {
        s.target_wait_seconds = Some(limit(30));
        s.target_first_response_seconds = Some(limit(120));
    });
    test()
        .given(vec![queue_created()])
        .when(C::ChangeSettings {
            patch: SettingsPatch {
                target_wait_seconds: Some(Some(limit(30))),
                target_first_response_seconds: Some(Some(limit(120))),
                ..SettingsPatch::default()
            },
            by: None,
        })
        .then_expect_events(vec![settings_changed(both.clone())]);
    test()
        .given(vec![queue_created(), settings_changed(both)])
        .when(C::ChangeSettings {
            patch: SettingsPatch {
                target_wait_seconds: Some(None),
                ..SettingsPatch::default()
            },
            by: None,
        })
        .then_expect_events(vec![settings_changed(settings_with(|s| {
            s.target_first_response_seconds = Some(limit(120));
        }))]);
}

#[test]
fn settings_recorded_before_the_targets_read_as_none() {
    let mut recorded = serde_json::to_value(QueueSettings::named(name("Support"))).unwrap();
    recorded
        .as_object_mut()
        .unwrap()
        .retain(|key, _| !key.starts_with("target_"));
    let read: QueueSettings = serde_json::from_value(recorded).unwrap();
    assert_eq!(read.target_wait_seconds, None);
    assert_eq!(read.target_first_response_seconds, None);
}

#[test]
fn allowed_origins_are_kept_sorted_without_duplicates() {
    let origin = |raw: &str| Origin::parse(raw).expect("a valid test value");
    let patch = SettingsPatch {
        allowed_origins: Some(vec![
            origin("https://b.example"),
            origin("https://a.example"),
            origin("https://B.example/"),
        ]),
        ..SettingsPatch::default()
    };
    test()
        .given(vec![queue_created()])
        .when(C::ChangeSettings { patch, by: None })
        .then_expect_events(vec![settings_changed(settings_with(|s| {
            s.allowed_origins = vec![origin("https://a.example"), origin("https://b.example")];
        }))]);
}

#[test]
fn a_settings_change_that_changes_nothing_writes_nothing() {
    let patch = SettingsPatch {
        name: Some(name("Support")),
        max_waiting: Some(None),
        ..SettingsPatch::default()
    };
    test()
        .given(vec![queue_created()])
        .when(C::ChangeSettings { patch, by: None })
        .then_expect_events(vec![]);
}

#[test]
fn an_unknown_queue_has_no_settings_to_change() {
    test()
        .given_no_previous_events()
        .when(C::ChangeSettings {
            patch: SettingsPatch::default(),
            by: None,
        })
        .then_expect_error(QueueError::UnknownQueue);
}

// ---- AddHandler / RemoveHandler ----

#[test]
fn an_operator_adds_a_handler() {
    test()
        .given(vec![queue_created()])
        .when(C::AddHandler {
            agent_id: OTHER_AGENT,
            by: Some(AGENT),
        })
        .then_expect_events(vec![E::QueueHandlerAdded {
            queue_id: QUEUE,
            organization_id: ORG,
            agent_id: OTHER_AGENT,
            by: Some(AGENT),
        }]);
}

#[test]
fn adding_a_handler_twice_writes_nothing() {
    test()
        .given(open_queue())
        .when(C::AddHandler {
            agent_id: AGENT,
            by: None,
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_operator_removes_a_handler() {
    test()
        .given(open_queue())
        .when(C::RemoveHandler {
            agent_id: AGENT,
            by: Some(OTHER_AGENT),
        })
        .then_expect_events(vec![E::QueueHandlerRemoved {
            queue_id: QUEUE,
            organization_id: ORG,
            agent_id: AGENT,
            by: Some(OTHER_AGENT),
        }]);
}

#[test]
fn removing_a_non_handler_writes_nothing() {
    test()
        .given(open_queue())
        .when(C::RemoveHandler {
            agent_id: OTHER_AGENT,
            by: None,
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_unknown_queue_has_no_handlers() {
    test()
        .given_no_previous_events()
        .when(C::AddHandler {
            agent_id: AGENT,
            by: None,
        })
        .then_expect_error(QueueError::UnknownQueue);
    test()
        .given_no_previous_events()
        .when(C::RemoveHandler {
            agent_id: AGENT,
            by: None,
        })
        .then_expect_error(QueueError::UnknownQueue);
}

// ---- JoinQueue ----

#[test]
fn a_verified_customer_is_recorded_with_its_join() {
    let user_id = domain::metadata::ExternalUserId::parse("u-42").expect("a valid test value");
    let customer = domain::metadata::VerifiedCustomer {
        customer_ref: domain::ids::customer_ref(id(9), QUEUE, &user_id),
        user_id,
        name: Some(domain::values::DisplayName::parse("Ann Lee").expect("a valid test value")),
    };
    test()
        .given(open_queue())
        .when(C::JoinQueue {
            conversation_id: id(1),
            metadata: CustomerMetadata::default(),
            customer: Some(customer.clone()),
        })
        .then_expect_events(vec![E::CustomerJoinedQueue {
            queue_id: QUEUE,
            organization_id: ORG,
            conversation_id: id(1),
            queue_position: 1,
            welcome_message: None,
            metadata: CustomerMetadata::default(),
            customer: Some(customer),
        }]);
}

#[test]
fn a_join_recorded_before_returning_customers_reads_as_a_guests() {
    let mut recorded = serde_json::to_value(joined(id(1), 1)).expect("JSON");
    recorded
        .as_object_mut()
        .expect("an object")
        .remove("customer");
    let read: E = serde_json::from_value(recorded).expect("an event");
    assert_eq!(read, joined(id(1), 1));
}

#[test]
fn a_customer_joins_an_open_queue_at_the_end_of_the_line() {
    test()
        .given(with(open_queue(), [joined(id(1), 1), joined(id(2), 2)]))
        .when(C::JoinQueue {
            conversation_id: id(3),
            metadata: metadata(json!({"name": "Ann"})),
            customer: None,
        })
        .then_expect_events(vec![E::CustomerJoinedQueue {
            queue_id: QUEUE,
            organization_id: ORG,
            conversation_id: id(3),
            queue_position: 3,
            welcome_message: None,
            metadata: metadata(json!({"name": "Ann"})),
            customer: None,
        }]);
}

#[test]
fn a_join_carries_the_queues_welcome_message_of_the_time() {
    let settings = settings_with(|s| s.welcome_message = Some(welcome("Hei!")));
    let events = test()
        .given(with(open_queue(), [settings_changed(settings)]))
        .when(join(id(1)))
        .inspect_result()
        .unwrap();
    let [E::CustomerJoinedQueue {
        welcome_message,
        queue_position,
        ..
    }] = events.as_slice()
    else {
        panic!("expected one CustomerJoinedQueue, got {events:?}");
    };
    assert_eq!(welcome_message.as_ref(), Some(&welcome("Hei!")));
    assert_eq!(*queue_position, 1);
}

#[test]
fn a_closed_queue_refuses_joins() {
    test()
        .given(with(open_queue(), [queue_closed()]))
        .when(join(id(1)))
        .then_expect_error(QueueError::QueueClosed);
}

#[test]
fn a_conversation_joins_once() {
    test()
        .given(with(open_queue(), [joined(id(1), 1)]))
        .when(join(id(1)))
        .then_expect_error(QueueError::AlreadyJoined);
}

#[test]
fn a_queue_remembers_only_who_waits() {
    // A queue's stream never ends: after a thousand customers came and went, its state holds
    // nothing of them. A repeat of a join or transfer of one of them is refused by its
    // conversation's stream, in the same append (process.rs).
    let mut history = open_queue();
    for n in 0..1_000 {
        if n % 2 == 0 {
            history.push(joined(id(n), 1));
        } else {
            history.push(transferred_in(id(0x10_000 + n), id(n), OTHER_QUEUE));
        }
        history.push(picked(id(n), AGENT));
    }
    history.push(joined(id(5_000), 1));
    let queue: Queue = fold(history.clone());
    assert_eq!(queue.waiting, [id(5_000)]);
    assert!(queue.arrived_by.is_empty());
    let empty: Queue = fold(open_queue());
    let size = |queue: &Queue| serde_json::to_string(queue).map(|json| json.len()).unwrap();
    assert!(size(&queue) <= size(&empty) + 64, "{}", size(&queue));
}

#[test]
fn a_full_queue_refuses_joins() {
    let settings = settings_with(|s| s.max_waiting = Some(limit(2)));
    test()
        .given(with(
            open_queue(),
            [
                settings_changed(settings),
                joined(id(1), 1),
                joined(id(2), 2),
            ],
        ))
        .when(join(id(3)))
        .then_expect_error(QueueError::QueueFull);
}

#[test]
fn a_full_queue_takes_joins_again_once_someone_is_picked() {
    let settings = settings_with(|s| s.max_waiting = Some(limit(2)));
    let events = test()
        .given(with(
            open_queue(),
            [
                settings_changed(settings),
                joined(id(1), 1),
                joined(id(2), 2),
                picked(id(1), AGENT),
            ],
        ))
        .when(join(id(3)))
        .inspect_result()
        .unwrap();
    assert!(matches!(
        events.as_slice(),
        [E::CustomerJoinedQueue {
            queue_position: 2,
            ..
        }]
    ));
}

#[test]
fn nobody_joins_an_unknown_queue() {
    test()
        .given_no_previous_events()
        .when(join(id(1)))
        .then_expect_error(QueueError::UnknownQueue);
}

// ---- LeaveQueue ----

#[test]
fn a_waiting_customer_abandons_the_queue() {
    test()
        .given(with(open_queue(), [joined(id(1), 1)]))
        .when(C::LeaveQueue {
            conversation_id: id(1),
            reason: LeaveReason::Abandoned,
            by: Some(customer(id(1))),
        })
        .then_expect_events(vec![left(
            id(1),
            LeaveReason::Abandoned,
            Some(customer(id(1))),
        )]);
}

#[test]
fn a_silent_customer_times_out() {
    test()
        .given(with(open_queue(), [joined(id(1), 1)]))
        .when(C::LeaveQueue {
            conversation_id: id(1),
            reason: LeaveReason::Timeout,
            by: None,
        })
        .then_expect_events(vec![left(id(1), LeaveReason::Timeout, None)]);
}

#[test]
fn an_agent_removes_a_waiting_customer() {
    test()
        .given(with(open_queue(), [joined(id(1), 1)]))
        .when(C::LeaveQueue {
            conversation_id: id(1),
            reason: LeaveReason::Removed,
            by: Some(agent(AGENT)),
        })
        .then_expect_events(vec![left(id(1), LeaveReason::Removed, Some(agent(AGENT)))]);
}

#[test]
fn only_a_waiting_customer_leaves() {
    for history in [
        vec![],
        vec![joined(id(1), 1), picked(id(1), AGENT)],
        vec![joined(id(1), 1), left(id(1), LeaveReason::Timeout, None)],
    ] {
        test()
            .given(with(open_queue(), history))
            .when(C::LeaveQueue {
                conversation_id: id(1),
                reason: LeaveReason::Abandoned,
                by: None,
            })
            .then_expect_error(QueueError::NotWaiting);
    }
}

#[test]
fn leaving_by_transfer_needs_a_target_queue() {
    test()
        .given(with(open_queue(), [joined(id(1), 1)]))
        .when(C::LeaveQueue {
            conversation_id: id(1),
            reason: LeaveReason::Transferred,
            by: None,
        })
        .then_expect_error(QueueError::TransferNeedsTarget);
}

#[test]
fn nobody_leaves_an_unknown_queue() {
    test()
        .given_no_previous_events()
        .when(C::LeaveQueue {
            conversation_id: id(1),
            reason: LeaveReason::Abandoned,
            by: None,
        })
        .then_expect_error(QueueError::UnknownQueue);
}

// ---- PickCustomer ----

#[test]
fn the_longest_waiting_customer_is_picked_first() {
    test()
        .given(with(
            open_queue(),
            [joined(id(1), 1), joined(id(2), 2), joined(id(3), 3)],
        ))
        .when(pick(AGENT))
        .then_expect_events(vec![picked(id(1), AGENT)]);
}

#[test]
fn the_next_pick_takes_the_next_in_line() {
    test()
        .given(with(
            open_queue(),
            [
                handler_added(OTHER_AGENT),
                joined(id(1), 1),
                joined(id(2), 2),
                picked(id(1), AGENT),
            ],
        ))
        .when(pick(OTHER_AGENT))
        .then_expect_events(vec![picked(id(2), OTHER_AGENT)]);
}

#[test]
fn a_closed_queue_still_serves_those_who_wait() {
    test()
        .given(with(open_queue(), [joined(id(1), 1), queue_closed()]))
        .when(pick(AGENT))
        .then_expect_events(vec![picked(id(1), AGENT)]);
}

#[test]
fn only_handlers_pick() {
    test()
        .given(with(open_queue(), [joined(id(1), 1)]))
        .when(pick(OTHER_AGENT))
        .then_expect_error(QueueError::NotAHandler);
}

#[test]
fn a_removed_handler_no_longer_picks() {
    test()
        .given(with(
            open_queue(),
            [
                joined(id(1), 1),
                E::QueueHandlerRemoved {
                    queue_id: QUEUE,
                    organization_id: ORG,
                    agent_id: AGENT,
                    by: None,
                },
            ],
        ))
        .when(pick(AGENT))
        .then_expect_error(QueueError::NotAHandler);
}

#[test]
fn nobody_is_picked_from_an_empty_queue() {
    test()
        .given(open_queue())
        .when(pick(AGENT))
        .then_expect_error(QueueError::NobodyWaiting);
}

#[test]
fn a_picked_customer_is_not_picked_again() {
    test()
        .given(with(
            open_queue(),
            [
                handler_added(OTHER_AGENT),
                joined(id(1), 1),
                picked(id(1), AGENT),
            ],
        ))
        .when(pick(OTHER_AGENT))
        .then_expect_error(QueueError::NobodyWaiting);
}

#[test]
fn nobody_picks_from_an_unknown_queue() {
    test()
        .given_no_previous_events()
        .when(pick(AGENT))
        .then_expect_error(QueueError::UnknownQueue);
}

// ---- TransferOut ----

#[test]
fn a_waiting_customer_is_transferred_out_to_another_queue() {
    test()
        .given(with(open_queue(), [joined(id(1), 1), joined(id(2), 2)]))
        .when(C::TransferOut {
            conversation_id: id(2),
            to_queue_id: OTHER_QUEUE,
            by: Some(agent(AGENT)),
        })
        .then_expect_events(vec![E::CustomerLeftQueue {
            queue_id: QUEUE,
            organization_id: ORG,
            conversation_id: id(2),
            reason: LeaveReason::Transferred,
            to_queue_id: Some(OTHER_QUEUE),
            by: Some(agent(AGENT)),
            transfer_id: None,
        }]);
}

#[test]
fn only_a_waiting_customer_is_transferred_out() {
    test()
        .given(with(open_queue(), [joined(id(1), 1), picked(id(1), AGENT)]))
        .when(C::TransferOut {
            conversation_id: id(1),
            to_queue_id: OTHER_QUEUE,
            by: None,
        })
        .then_expect_error(QueueError::NotWaiting);
}

#[test]
fn nothing_is_transferred_out_of_an_unknown_queue() {
    test()
        .given_no_previous_events()
        .when(C::TransferOut {
            conversation_id: id(1),
            to_queue_id: OTHER_QUEUE,
            by: None,
        })
        .then_expect_error(QueueError::UnknownQueue);
}

// ---- TransferAcross ----

#[test]
fn a_waiting_customer_transferred_across_names_the_transfer_it_arrives_by() {
    test()
        .given(with(open_queue(), [joined(id(1), 1), joined(id(2), 2)]))
        .when(C::TransferAcross {
            conversation_id: id(2),
            to_queue_id: OTHER_QUEUE,
            transfer_id: TRANSFER,
            by: Some(agent(AGENT)),
        })
        .then_expect_events(vec![E::CustomerLeftQueue {
            queue_id: QUEUE,
            organization_id: ORG,
            conversation_id: id(2),
            reason: LeaveReason::Transferred,
            to_queue_id: Some(OTHER_QUEUE),
            by: Some(agent(AGENT)),
            transfer_id: Some(TRANSFER),
        }]);
}

#[test]
fn only_a_waiting_customer_is_transferred_across() {
    test()
        .given(with(open_queue(), [joined(id(1), 1), picked(id(1), AGENT)]))
        .when(C::TransferAcross {
            conversation_id: id(1),
            to_queue_id: OTHER_QUEUE,
            transfer_id: TRANSFER,
            by: None,
        })
        .then_expect_error(QueueError::NotWaiting);
}

#[test]
fn a_customer_is_not_transferred_into_the_line_it_waits_in() {
    test()
        .given(with(open_queue(), [joined(id(1), 1)]))
        .when(C::TransferAcross {
            conversation_id: id(1),
            to_queue_id: QUEUE,
            transfer_id: TRANSFER,
            by: None,
        })
        .then_expect_error(QueueError::AlreadyWaiting);
}

// ---- TransferIn ----

fn transfer_in(
    transfer_id: Uuid,
    conversation_id: Uuid,
    organization_id: Uuid,
    from_agent_id: Option<Uuid>,
) -> C {
    C::TransferIn {
        transfer_id,
        conversation_id,
        organization_id,
        from_queue_id: OTHER_QUEUE,
        from_agent_id,
        by: Some(agent(OTHER_AGENT)),
    }
}

#[test]
fn a_transferred_customer_waits_first_in_line() {
    test()
        .given(with(open_queue(), [joined(id(1), 1), joined(id(2), 2)]))
        .when(transfer_in(TRANSFER, id(9), ORG, Some(OTHER_AGENT)))
        .then_expect_events(vec![E::ConversationTransferred {
            transfer_id: TRANSFER,
            queue_id: QUEUE,
            organization_id: ORG,
            conversation_id: id(9),
            from_queue_id: OTHER_QUEUE,
            from_agent_id: Some(OTHER_AGENT),
            queue_position: 1,
            by: Some(agent(OTHER_AGENT)),
        }]);
    // And so it is the next one picked.
    test()
        .given(with(
            open_queue(),
            [
                joined(id(1), 1),
                joined(id(2), 2),
                transferred_in(TRANSFER, id(9), OTHER_QUEUE),
            ],
        ))
        .when(pick(AGENT))
        .then_expect_events(vec![picked(id(9), AGENT)]);
}

#[test]
fn a_transfer_stays_within_its_organization() {
    test()
        .given(open_queue())
        .when(transfer_in(TRANSFER, id(9), OTHER_ORG, None))
        .then_expect_error(QueueError::OtherOrganization);
}

#[test]
fn a_conversation_already_waiting_here_is_not_transferred_in_again() {
    // By another transfer: the conversation waits here already.
    test()
        .given(with(
            open_queue(),
            [transferred_in(TRANSFER, id(9), OTHER_QUEUE)],
        ))
        .when(transfer_in(OTHER_TRANSFER, id(9), ORG, None))
        .then_expect_error(QueueError::AlreadyWaiting);
    test()
        .given(with(open_queue(), [joined(id(1), 1)]))
        .when(transfer_in(TRANSFER, id(1), ORG, None))
        .then_expect_error(QueueError::AlreadyWaiting);
}

#[test]
fn a_repeated_transfer_is_refused_as_arrived_already() {
    // While its customer still waits here: the transfer is named first, before `AlreadyWaiting`.
    test()
        .given(with(
            open_queue(),
            [transferred_in(TRANSFER, id(9), OTHER_QUEUE)],
        ))
        .when(transfer_in(TRANSFER, id(9), ORG, None))
        .then_expect_error(QueueError::TransferAlreadyArrived);
}

#[test]
fn a_new_transfer_of_a_customer_picked_here_is_taken() {
    // Its agent sends it back here: another transfer, so it waits again, first in line.
    test()
        .given(with(
            open_queue(),
            [
                joined(id(1), 1),
                transferred_in(TRANSFER, id(9), OTHER_QUEUE),
                picked(id(9), AGENT),
            ],
        ))
        .when(transfer_in(OTHER_TRANSFER, id(9), ORG, Some(AGENT)))
        .then_expect_events(vec![E::ConversationTransferred {
            transfer_id: OTHER_TRANSFER,
            queue_id: QUEUE,
            organization_id: ORG,
            conversation_id: id(9),
            from_queue_id: OTHER_QUEUE,
            from_agent_id: Some(AGENT),
            queue_position: 1,
            by: Some(agent(OTHER_AGENT)),
        }]);
}

#[test]
fn a_transfer_arrived_already_is_a_conflict() {
    assert_eq!(
        QueueError::TransferAlreadyArrived.kind(),
        ErrorKind::Conflict
    );
}

#[test]
fn a_transferred_in_conversation_cannot_also_join() {
    test()
        .given(with(
            open_queue(),
            [transferred_in(TRANSFER, id(9), OTHER_QUEUE)],
        ))
        .when(join(id(9)))
        .then_expect_error(QueueError::AlreadyJoined);
}

#[test]
fn nothing_is_transferred_into_an_unknown_queue() {
    test()
        .given_no_previous_events()
        .when(transfer_in(TRANSFER, id(9), ORG, None))
        .then_expect_error(QueueError::UnknownQueue);
}

#[test]
fn positions_count_from_the_front() {
    let queue: Queue = fold(with(
        open_queue(),
        [
            joined(id(1), 1),
            joined(id(2), 2),
            transferred_in(TRANSFER, id(9), OTHER_QUEUE),
        ],
    ));
    assert_eq!(queue.position_of(id(9)), Some(1));
    assert_eq!(queue.position_of(id(1)), Some(2));
    assert_eq!(queue.position_of(id(2)), Some(3));
    assert_eq!(queue.position_of(id(7)), None);
}

#[test]
fn a_closed_queue_refuses_a_transfer_in() {
    test()
        .given(with(open_queue(), [joined(id(1), 1), queue_closed()]))
        .when(transfer_in(TRANSFER, id(9), ORG, Some(OTHER_AGENT)))
        .then_expect_error(QueueError::TargetClosed);
    // A new queue is closed until it opens.
    test()
        .given(vec![queue_created()])
        .when(transfer_in(TRANSFER, id(9), ORG, None))
        .then_expect_error(QueueError::TargetClosed);
    assert_eq!(QueueError::TargetClosed.kind(), ErrorKind::Conflict);
    assert_eq!(
        QueueError::TargetClosed.to_string(),
        "the target queue is closed"
    );
}

#[test]
fn a_reopened_queue_takes_transfers_in_again() {
    test()
        .given(with(open_queue(), [queue_closed(), queue_opened()]))
        .when(transfer_in(TRANSFER, id(9), ORG, None))
        .then_expect_events(vec![E::ConversationTransferred {
            transfer_id: TRANSFER,
            queue_id: QUEUE,
            organization_id: ORG,
            conversation_id: id(9),
            from_queue_id: OTHER_QUEUE,
            from_agent_id: None,
            queue_position: 1,
            by: Some(agent(OTHER_AGENT)),
        }]);
}
