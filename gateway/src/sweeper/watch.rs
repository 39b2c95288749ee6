//! What the sweeper knows from the log ([`Watch`]): who waits where since when, and each
//! queue's schedule — a pure fold, so the rules of the time-out and of the schedule are tested
//! here without a store or a clock.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::queue::QueueEvent;
use domain::schedule::OpeningHours;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::activity::Signs;

/// The version of what [`Watch`] keeps and how it folds: a kept fold of another version is
/// not resumed (`store::kept_fold`). Raise it with any change to either.
pub const FOLD_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Waiter {
    queue_id: Uuid,
    /// When this wait began: the join, or the transfer into the queue.
    since: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Schedule {
    hours: OpeningHours,
    /// What the schedule said when the sweeper last acted on it (or when the queue was last
    /// opened or closed); `None` when the schedule is new and should take effect at once.
    said: Option<bool>,
}

/// What the sweeper knows from the log: who waits where since when, and each queue's schedule.
/// A pure fold, so its rules are tested without a store or a clock; kept beside the log so
/// that a start resumes it (`store::kept_fold`).
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    waiting: HashMap<Uuid, Waiter>,
    schedules: HashMap<Uuid, Schedule>,
}

/// What the schedule asks of one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledChange {
    pub queue_id: Uuid,
    pub open: bool,
}

impl Watch {
    /// Applies one event of a queue's stream, recorded at `at`.
    pub fn apply(&mut self, at: DateTime<Utc>, event: &QueueEvent) {
        match event {
            QueueEvent::CustomerJoinedQueue {
                queue_id,
                conversation_id,
                ..
            }
            | QueueEvent::ConversationTransferred {
                queue_id,
                conversation_id,
                ..
            } => {
                self.waiting.insert(
                    *conversation_id,
                    Waiter {
                        queue_id: *queue_id,
                        since: at,
                    },
                );
            }
            QueueEvent::CustomerLeftQueue {
                queue_id,
                conversation_id,
                ..
            }
            | QueueEvent::CustomerPicked {
                queue_id,
                conversation_id,
                ..
            } => {
                if self
                    .waiting
                    .get(conversation_id)
                    .is_some_and(|w| w.queue_id == *queue_id)
                {
                    self.waiting.remove(conversation_id);
                }
            }
            QueueEvent::QueueSettingsChanged {
                queue_id, settings, ..
            } => match &settings.opening_hours {
                None => {
                    self.schedules.remove(queue_id);
                }
                Some(hours) => {
                    let unchanged = self
                        .schedules
                        .get(queue_id)
                        .is_some_and(|s| s.hours == *hours);
                    if !unchanged {
                        self.schedules.insert(
                            *queue_id,
                            Schedule {
                                hours: hours.clone(),
                                said: None,
                            },
                        );
                    }
                }
            },
            QueueEvent::QueueOpened { queue_id, .. } | QueueEvent::QueueClosed { queue_id, .. } => {
                if let Some(schedule) = self.schedules.get_mut(queue_id) {
                    schedule.said = Some(schedule.hours.is_open_at(at));
                }
            }
            QueueEvent::QueueCreated { .. }
            | QueueEvent::QueueHandlerAdded { .. }
            | QueueEvent::QueueHandlerRemoved { .. }
            | QueueEvent::CustomerOffered { .. }
            | QueueEvent::OfferAccepted { .. }
            | QueueEvent::OfferDeclined { .. }
            | QueueEvent::OfferExpired { .. }
            | QueueEvent::MessageLeft { .. } => {}
        }
    }

    /// The queues whose schedule changed its mind since it was last acted on, with what it says
    /// now. Each is taken as done; [`Watch::retry`] puts one back if its command failed.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<ScheduledChange> {
        let mut due = Vec::new();
        for (queue_id, schedule) in &mut self.schedules {
            let open = schedule.hours.is_open_at(now);
            if schedule.said != Some(open) {
                schedule.said = Some(open);
                due.push(ScheduledChange {
                    queue_id: *queue_id,
                    open,
                });
            }
        }
        due.sort_by_key(|change| change.queue_id);
        due
    }

    /// The schedule of `queue_id` is to be acted on again on the next tick.
    pub fn retry(&mut self, queue_id: Uuid) {
        if let Some(schedule) = self.schedules.get_mut(&queue_id) {
            schedule.said = None;
        }
    }

    /// Who waits now.
    pub fn waiting(&self) -> Vec<Uuid> {
        self.waiting.keys().copied().collect()
    }

    /// The waiting customers `(queue_id, conversation_id)` last heard from `timeout` or more
    /// before `now`. The last sign of life is the latest of: the wait's start, `floor` (when
    /// this process began watching) and the customer's own signs; one with a socket open is
    /// never timed out.
    pub fn timed_out(
        &self,
        now: DateTime<Utc>,
        timeout: Duration,
        floor: DateTime<Utc>,
        signs: &Signs,
    ) -> Vec<(Uuid, Uuid)> {
        let Ok(timeout) = chrono::Duration::from_std(timeout) else {
            return Vec::new();
        };
        let mut out: Vec<(Uuid, Uuid)> = self
            .waiting
            .iter()
            .filter(|(conversation_id, waiter)| {
                if signs.connected.contains(*conversation_id) {
                    return false;
                }
                let mut last = waiter.since.max(floor);
                if let Some(seen) = signs.seen.get(*conversation_id) {
                    last = last.max(*seen);
                }
                now - last >= timeout
            })
            .map(|(conversation_id, waiter)| (waiter.queue_id, *conversation_id))
            .collect();
        out.sort();
        out
    }

    /// The customer no longer waits as far as the sweeper is concerned (until the log says
    /// otherwise).
    pub(super) fn forget(&mut self, conversation_id: Uuid) {
        self.waiting.remove(&conversation_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweeper::CustomerActivity;
    use chrono::TimeZone;
    use domain::queue::{LeaveReason, QueueSettings};
    use domain::schedule::{RawOpeningHours, RawPeriod};
    use domain::values::Name;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        // Wednesday 2026-11-25.
        Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap()
    }

    fn nine_to_five_utc() -> OpeningHours {
        let weekly = ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|day| RawPeriod {
                day: (*day).into(),
                open: "09:00".into(),
                close: "17:00".into(),
            })
            .collect();
        OpeningHours::parse(RawOpeningHours {
            timezone: "UTC".into(),
            weekly,
        })
        .unwrap()
    }

    /// What a kept fold holds, pinned beside its version: a change to `Watch`'s shape must
    /// raise `FOLD_VERSION` (a kept fold of the old shape would otherwise be resumed as the new
    /// one), then update this pin.
    #[test]
    fn the_kept_shape_is_pinned_to_its_fold_version() {
        let mut watch = Watch::default();
        watch.waiting.insert(
            Uuid::from_u128(1),
            Waiter {
                queue_id: Uuid::from_u128(2),
                since: at(9, 30),
            },
        );
        watch.schedules.insert(
            Uuid::from_u128(2),
            Schedule {
                hours: nine_to_five_utc(),
                said: Some(true),
            },
        );
        let kept = serde_json::to_string(&watch).expect("serializes");
        const PINNED: &str = r#"{"waiting":{"00000000-0000-0000-0000-000000000001":{"queue_id":"00000000-0000-0000-0000-000000000002","since":"2026-11-25T09:30:00Z"}},"schedules":{"00000000-0000-0000-0000-000000000002":{"hours":{"timezone":"UTC","weekly":[{"day":"mon","open":"09:00","close":"17:00"},{"day":"tue","open":"09:00","close":"17:00"},{"day":"wed","open":"09:00","close":"17:00"},{"day":"thu","open":"09:00","close":"17:00"},{"day":"fri","open":"09:00","close":"17:00"}]},"said":true}}}"#;
        assert_eq!(
            (FOLD_VERSION, kept.as_str()),
            (1, PINNED),
            "the kept shape changed: raise FOLD_VERSION, then this pin"
        );
    }

    fn joined(queue_id: Uuid, conversation_id: Uuid) -> QueueEvent {
        QueueEvent::CustomerJoinedQueue {
            queue_id,
            organization_id: Uuid::nil(),
            conversation_id,
            queue_position: 1,
            welcome_message: None,
            metadata: Default::default(),
            customer: None,
        }
    }

    fn with_hours(queue_id: Uuid, hours: Option<OpeningHours>) -> QueueEvent {
        let mut settings = QueueSettings::named(Name::parse("Support").unwrap());
        settings.opening_hours = hours;
        QueueEvent::QueueSettingsChanged {
            queue_id,
            organization_id: Uuid::nil(),
            settings,
            by: None,
        }
    }

    fn opened(queue_id: Uuid) -> QueueEvent {
        QueueEvent::QueueOpened {
            queue_id,
            organization_id: Uuid::nil(),
            by: None,
        }
    }

    fn closed(queue_id: Uuid) -> QueueEvent {
        QueueEvent::QueueClosed {
            queue_id,
            organization_id: Uuid::nil(),
            by: None,
        }
    }

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn a_silent_customer_times_out_five_minutes_after_joining() {
        let (queue, customer) = (Uuid::new_v4(), Uuid::new_v4());
        let mut watch = Watch::default();
        watch.apply(at(10, 0), &joined(queue, customer));
        let activity = CustomerActivity::default();
        let floor = at(0, 0);
        assert!(watch
            .timed_out(at(10, 4), FIVE_MINUTES, floor, &activity.signs())
            .is_empty());
        assert_eq!(
            watch.timed_out(at(10, 5), FIVE_MINUTES, floor, &activity.signs()),
            vec![(queue, customer)]
        );
    }

    #[test]
    fn a_sign_of_life_keeps_a_customer_waiting() {
        let (queue, customer) = (Uuid::new_v4(), Uuid::new_v4());
        let mut watch = Watch::default();
        watch.apply(at(10, 0), &joined(queue, customer));
        let activity = CustomerActivity::default();
        activity.saw_at(customer, at(10, 4));
        let floor = at(0, 0);
        assert!(watch
            .timed_out(at(10, 8), FIVE_MINUTES, floor, &activity.signs())
            .is_empty());
        assert_eq!(
            watch.timed_out(at(10, 9), FIVE_MINUTES, floor, &activity.signs()),
            vec![(queue, customer)]
        );
        // An older sign does not move the last one back.
        activity.saw_at(customer, at(10, 1));
        assert_eq!(activity.last_seen(customer), Some(at(10, 4)));
    }

    #[test]
    fn an_open_socket_keeps_a_customer_waiting() {
        let (queue, customer) = (Uuid::new_v4(), Uuid::new_v4());
        let mut watch = Watch::default();
        // The socket's signs are marked with the real clock: closing it counts as one.
        let joined_at = Utc::now();
        watch.apply(joined_at, &joined(queue, customer));
        let activity = CustomerActivity::default();
        activity.socket_opened(customer);
        let much_later = joined_at + chrono::Duration::hours(1);
        assert!(watch
            .timed_out(much_later, FIVE_MINUTES, joined_at, &activity.signs())
            .is_empty());
        activity.socket_closed(customer);
        let closed_at = activity.last_seen(customer).unwrap();
        let after = closed_at + chrono::Duration::minutes(5);
        assert!(watch
            .timed_out(
                after - chrono::Duration::seconds(1),
                FIVE_MINUTES,
                joined_at,
                &activity.signs()
            )
            .is_empty());
        assert_eq!(
            watch
                .timed_out(after, FIVE_MINUTES, joined_at, &activity.signs())
                .len(),
            1
        );
    }

    #[test]
    fn after_a_restart_everyone_gets_a_fresh_time_out() {
        let (queue, customer) = (Uuid::new_v4(), Uuid::new_v4());
        let mut watch = Watch::default();
        watch.apply(at(9, 0), &joined(queue, customer));
        let restarted = at(10, 0);
        let activity = CustomerActivity::default();
        assert!(watch
            .timed_out(at(10, 4), FIVE_MINUTES, restarted, &activity.signs())
            .is_empty());
        assert_eq!(
            watch
                .timed_out(at(10, 5), FIVE_MINUTES, restarted, &activity.signs())
                .len(),
            1
        );
    }

    #[test]
    fn picked_left_and_transferred_customers_are_not_timed_out_here() {
        let (queue, other_queue) = (Uuid::new_v4(), Uuid::new_v4());
        let (picked, left, moved) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut watch = Watch::default();
        for customer in [picked, left, moved] {
            watch.apply(at(10, 0), &joined(queue, customer));
        }
        let org = Uuid::nil();
        watch.apply(
            at(10, 1),
            &QueueEvent::CustomerPicked {
                queue_id: queue,
                organization_id: org,
                conversation_id: picked,
                agent_id: Uuid::new_v4(),
                agent_name: "Ann".into(),
            },
        );
        watch.apply(
            at(10, 1),
            &QueueEvent::CustomerLeftQueue {
                queue_id: queue,
                organization_id: org,
                conversation_id: left,
                reason: LeaveReason::Abandoned,
                to_queue_id: None,
                by: None,
                transfer_id: None,
            },
        );
        watch.apply(
            at(10, 2),
            &QueueEvent::CustomerLeftQueue {
                queue_id: queue,
                organization_id: org,
                conversation_id: moved,
                reason: LeaveReason::Transferred,
                to_queue_id: Some(other_queue),
                by: None,
                transfer_id: None,
            },
        );
        watch.apply(
            at(10, 2),
            &QueueEvent::ConversationTransferred {
                transfer_id: Uuid::new_v4(),
                queue_id: other_queue,
                organization_id: org,
                conversation_id: moved,
                from_queue_id: queue,
                from_agent_id: None,
                queue_position: 1,
                by: None,
            },
        );
        let activity = CustomerActivity::default();
        // The transferred customer waits again, from the transfer.
        assert!(watch
            .timed_out(at(10, 6), FIVE_MINUTES, at(0, 0), &activity.signs())
            .is_empty());
        assert_eq!(
            watch.timed_out(at(10, 7), FIVE_MINUTES, at(0, 0), &activity.signs()),
            vec![(other_queue, moved)]
        );
    }

    #[test]
    fn a_new_schedule_takes_effect_at_once() {
        let queue = Uuid::new_v4();
        let mut watch = Watch::default();
        watch.apply(at(10, 0), &with_hours(queue, Some(nine_to_five_utc())));
        assert_eq!(
            watch.due(at(10, 0)),
            vec![ScheduledChange {
                queue_id: queue,
                open: true
            }]
        );
        assert!(watch.due(at(10, 1)).is_empty(), "acted on once");
    }

    #[test]
    fn the_schedule_acts_on_its_changes_and_not_against_a_manual_close() {
        let queue = Uuid::new_v4();
        let mut watch = Watch::default();
        watch.apply(at(8, 0), &with_hours(queue, Some(nine_to_five_utc())));
        assert_eq!(
            watch.due(at(8, 0)),
            vec![ScheduledChange {
                queue_id: queue,
                open: false
            }]
        );
        assert!(watch.due(at(8, 59)).is_empty());
        assert_eq!(
            watch.due(at(9, 0)),
            vec![ScheduledChange {
                queue_id: queue,
                open: true
            }]
        );
        watch.apply(at(9, 0), &opened(queue));
        // An operator closes during opening hours: the schedule leaves it closed…
        watch.apply(at(12, 0), &closed(queue));
        assert!(watch.due(at(12, 1)).is_empty());
        assert!(watch.due(at(16, 59)).is_empty());
        // …and closes it (already closed, a no-op) at five.
        assert_eq!(
            watch.due(at(17, 0)),
            vec![ScheduledChange {
                queue_id: queue,
                open: false
            }]
        );
        // An operator opens after hours: left open until the next change.
        watch.apply(at(18, 0), &opened(queue));
        assert!(watch.due(at(23, 0)).is_empty());
    }

    #[test]
    fn a_change_missed_while_no_sweeper_ran_is_made_up() {
        // Opened by the schedule at nine; the sweeper was down across five o'clock.
        let queue = Uuid::new_v4();
        let mut watch = Watch::default();
        watch.apply(at(8, 0), &with_hours(queue, Some(nine_to_five_utc())));
        watch.apply(at(9, 0), &opened(queue));
        assert_eq!(
            watch.due(at(18, 0)),
            vec![ScheduledChange {
                queue_id: queue,
                open: false
            }]
        );
    }

    #[test]
    fn a_cleared_schedule_stops_acting_and_a_failed_change_is_retried() {
        let queue = Uuid::new_v4();
        let mut watch = Watch::default();
        watch.apply(at(10, 0), &with_hours(queue, Some(nine_to_five_utc())));
        assert_eq!(watch.due(at(10, 0)).len(), 1);
        watch.retry(queue);
        assert_eq!(watch.due(at(10, 0)).len(), 1);
        // Another setting changes; the schedule does not start over.
        watch.apply(at(10, 1), &with_hours(queue, Some(nine_to_five_utc())));
        assert!(watch.due(at(10, 2)).is_empty());
        watch.apply(at(10, 3), &with_hours(queue, None));
        assert!(watch.due(at(18, 0)).is_empty());
    }
}
