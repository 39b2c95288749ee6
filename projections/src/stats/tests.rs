//! Figures against hand-computed answers, over a history given as (time, event) pairs.
//!
//! The story, in seconds after T0 (queues A and B of one organization; agents X < Y):
//! - c1 joins A at 10, X picks it at 40 (wait 30), it ends at 100 (handle 60), rated 5 at 110.
//! - c2 joins A at 20 and abandons at 50 (wait 30).
//! - c3 joins A at 30 and times out at 330 (wait 300).
//! - c4 joins A at 60, is transferred while waiting to B at 70 (wait 10), Y picks it in B at 90
//!   (wait 20), it ends at 190 (handle 100).
//! - c5 joins A at 80, Y picks it at 85 (wait 5), is transferred, picked, to B at 145 (handle
//!   60, out of A), X picks it in B at 150 (wait 5), it ends at 400 (handle 250), rated 2 at 410.
//! - c6 joins A at 200 and is still waiting.
//! - c7 joins A at 210 and an agent ends it at 220 (wait 10, removed).

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::conversation::{ConversationEvent, EndReason};
use domain::metadata::CustomerMetadata;
use domain::queue::{LeaveReason, QueueEvent};
use domain::values::{Author, Name, Score};
use domain::Event;
use uuid::Uuid;

use super::*;

const ORG: Uuid = Uuid::from_u128(0x0);
const A: Uuid = Uuid::from_u128(0xa);
const B: Uuid = Uuid::from_u128(0xb);
const X: Uuid = Uuid::from_u128(0x1);
const Y: Uuid = Uuid::from_u128(0x2);
const OTHER_ORG: Uuid = Uuid::from_u128(0xf0);
const OTHER_QUEUE: Uuid = Uuid::from_u128(0xf1);

fn c(n: u128) -> Uuid {
    Uuid::from_u128(0xc00 + n)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0)
        .single()
        .expect("a valid time")
}

/// `seconds` after T0, scaled by `unit` (1 for seconds, 60 to stretch the story over hours).
fn at(seconds: i64, unit: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds * unit)
}

fn created(queue_id: Uuid, organization_id: Uuid) -> Event {
    Event::Queue(QueueEvent::QueueCreated {
        queue_id,
        organization_id,
        name: Name::parse("Support").expect("a name"),
    })
}

fn opened(queue_id: Uuid, organization_id: Uuid) -> Event {
    Event::Queue(QueueEvent::QueueOpened {
        queue_id,
        organization_id,
        by: None,
    })
}

fn joined(queue_id: Uuid, conversation_id: Uuid) -> Event {
    Event::Queue(QueueEvent::CustomerJoinedQueue {
        queue_id,
        organization_id: ORG,
        conversation_id,
        queue_position: 1,
        welcome_message: None,
        metadata: CustomerMetadata::default(),
        customer: None,
    })
}

fn joined_other(conversation_id: Uuid) -> Event {
    let Event::Queue(QueueEvent::CustomerJoinedQueue {
        queue_id,
        conversation_id,
        queue_position,
        welcome_message,
        metadata,
        ..
    }) = joined(OTHER_QUEUE, conversation_id)
    else {
        unreachable!()
    };
    Event::Queue(QueueEvent::CustomerJoinedQueue {
        queue_id,
        organization_id: OTHER_ORG,
        conversation_id,
        queue_position,
        welcome_message,
        metadata,
        customer: None,
    })
}

fn left(queue_id: Uuid, conversation_id: Uuid, reason: LeaveReason, to: Option<Uuid>) -> Event {
    Event::Queue(QueueEvent::CustomerLeftQueue {
        queue_id,
        organization_id: ORG,
        conversation_id,
        reason,
        to_queue_id: to,
        by: None,
        transfer_id: None,
    })
}

fn picked(queue_id: Uuid, conversation_id: Uuid, agent_id: Uuid) -> Event {
    Event::Queue(QueueEvent::CustomerPicked {
        queue_id,
        organization_id: ORG,
        conversation_id,
        agent_id,
        agent_name: "Agent".into(),
    })
}

fn transferred(to: Uuid, conversation_id: Uuid, from: Uuid, from_agent: Option<Uuid>) -> Event {
    Event::Queue(QueueEvent::ConversationTransferred {
        transfer_id: Uuid::new_v5(&conversation_id, from.as_bytes()),
        queue_id: to,
        organization_id: ORG,
        conversation_id,
        from_queue_id: from,
        from_agent_id: from_agent,
        queue_position: 1,
        by: None,
    })
}

fn ended(
    conversation_id: Uuid,
    queue_id: Uuid,
    agent_id: Option<Uuid>,
    was_waiting: bool,
    reason: EndReason,
) -> Event {
    Event::Conversation(ConversationEvent::ConversationEnded {
        conversation_id,
        organization_id: ORG,
        queue_id: Some(queue_id),
        agent_id,
        was_waiting,
        reason,
        by: Author::system(),
        at: None,
    })
}

fn rated(conversation_id: Uuid, queue_id: Uuid, agent_id: Uuid, score: i64) -> Event {
    Event::Conversation(ConversationEvent::ConversationRated {
        conversation_id,
        organization_id: ORG,
        queue_id: Some(queue_id),
        agent_id: Some(agent_id),
        score: Score::parse(score).expect("a score"),
        comment: None,
    })
}

fn story() -> Vec<(i64, Event)> {
    use EndReason::{Abandoned, Ended, Timeout};
    use LeaveReason as L;
    vec![
        (0, created(A, ORG)),
        (0, created(B, ORG)),
        (0, created(OTHER_QUEUE, OTHER_ORG)),
        (1, opened(A, ORG)),
        (1, opened(B, ORG)),
        (1, opened(OTHER_QUEUE, OTHER_ORG)),
        (10, joined(A, c(1))),
        (15, joined_other(c(99))),
        (20, joined(A, c(2))),
        (30, joined(A, c(3))),
        (40, picked(A, c(1), X)),
        (50, left(A, c(2), L::Abandoned, None)),
        (50, ended(c(2), A, None, true, Abandoned)),
        (60, joined(A, c(4))),
        (70, left(A, c(4), L::Transferred, Some(B))),
        (70, transferred(B, c(4), A, None)),
        (80, joined(A, c(5))),
        (85, picked(A, c(5), Y)),
        (90, picked(B, c(4), Y)),
        (100, ended(c(1), A, Some(X), false, Ended)),
        (110, rated(c(1), A, X, 5)),
        (145, transferred(B, c(5), A, Some(Y))),
        (150, picked(B, c(5), X)),
        (190, ended(c(4), B, Some(Y), false, Ended)),
        (200, joined(A, c(6))),
        (210, joined(A, c(7))),
        (220, left(A, c(7), L::Removed, None)),
        (220, ended(c(7), A, None, true, Ended)),
        (330, left(A, c(3), L::Timeout, None)),
        (330, ended(c(3), A, None, true, Timeout)),
        (400, ended(c(5), B, Some(X), false, Ended)),
        (410, rated(c(5), B, X, 2)),
    ]
}

fn samples(unit: i64) -> Samples {
    let mut fold = StatsFold::default();
    for (position, (seconds, event)) in story().into_iter().enumerate() {
        fold.apply(position as i64 + 1, at(seconds, unit), &event);
    }
    fold.into_samples()
}

fn p(p50: f64, p90: f64, max: f64) -> Percentiles {
    Percentiles {
        p50: Some(p50),
        p90: Some(p90),
        max: Some(max),
    }
}

const NONE: Percentiles = Percentiles {
    p50: None,
    p90: None,
    max: None,
};

#[test]
fn queue_a_over_all_time() {
    let stats = compute(&samples(1), Scope::Queue(A), None, at(1000, 1));
    assert_eq!(stats.from, None);
    assert_eq!(stats.to, at(1000, 1));
    let f = stats.figures;
    assert_eq!(f.joined, 7);
    assert_eq!(f.picked, 2);
    assert_eq!(f.abandoned, 1);
    assert_eq!(f.timed_out, 1);
    // c4 left waiting, c5 left picked.
    assert_eq!(f.transferred_out, 2);
    assert_eq!(f.waiting_now, 1);
    // Waits 5, 10, 10, 30, 30, 300: ranks ⌈3⌉ = 3 and ⌈5.4⌉ = 6.
    assert_eq!(f.wait_seconds, p(10.0, 300.0, 300.0));
    assert_eq!(f.handle_seconds, p(60.0, 60.0, 60.0));
    assert_eq!(f.rating.count, 1);
    assert_eq!(f.rating.mean, Some(5.0));
    assert_eq!(
        f.per_agent,
        vec![
            AgentFigures {
                agent_id: X,
                picked: 1,
                handle_seconds_p50: Some(60.0)
            },
            AgentFigures {
                agent_id: Y,
                picked: 1,
                handle_seconds_p50: Some(60.0)
            },
        ]
    );
}

#[test]
fn queue_b_counts_transfers_in_as_joins() {
    let f = compute(&samples(1), Scope::Queue(B), None, at(1000, 1)).figures;
    assert_eq!(
        (f.joined, f.picked, f.transferred_out, f.waiting_now),
        (2, 2, 0, 0)
    );
    assert_eq!((f.abandoned, f.timed_out), (0, 0));
    assert_eq!(f.wait_seconds, p(5.0, 20.0, 20.0));
    assert_eq!(f.handle_seconds, p(100.0, 250.0, 250.0));
    assert_eq!((f.rating.count, f.rating.mean), (1, Some(2.0)));
}

#[test]
fn an_organization_is_the_sum_of_its_queues() {
    let f = compute(&samples(1), Scope::Organization(ORG), None, at(1000, 1)).figures;
    assert_eq!(f.joined, 9);
    assert_eq!(f.picked, 4);
    assert_eq!((f.abandoned, f.timed_out, f.transferred_out), (1, 1, 2));
    assert_eq!(f.waiting_now, 1);
    // Waits 5, 5, 10, 10, 20, 30, 30, 300: ranks 4 and ⌈7.2⌉ = 8.
    assert_eq!(f.wait_seconds, p(10.0, 300.0, 300.0));
    // Handles 60, 60, 100, 250: ranks 2 and ⌈3.6⌉ = 4.
    assert_eq!(f.handle_seconds, p(60.0, 250.0, 250.0));
    assert_eq!((f.rating.count, f.rating.mean), (2, Some(3.5)));
    let agents: Vec<_> = f
        .per_agent
        .iter()
        .map(|a| (a.agent_id, a.picked, a.handle_seconds_p50))
        .collect();
    assert_eq!(agents, vec![(X, 2, Some(60.0)), (Y, 2, Some(60.0))]);
}

#[test]
fn another_organizations_queue_is_left_out() {
    let f = compute(&samples(1), Scope::Queue(OTHER_QUEUE), None, at(1000, 1)).figures;
    assert_eq!((f.joined, f.waiting_now, f.picked), (1, 1, 0));
    assert_eq!(f.wait_seconds, NONE);
    assert_eq!(f.rating.mean, None);
    assert!(f.per_agent.is_empty());
}

#[test]
fn a_wait_that_starts_before_from_and_ends_inside_counts() {
    // [25, 60): c1's wait (10 → 40) and c2's (20 → 50) end inside; c3 joins inside.
    let f = compute(&samples(1), Scope::Queue(A), Some(at(25, 1)), at(60, 1)).figures;
    assert_eq!((f.joined, f.picked, f.abandoned), (1, 1, 1));
    assert_eq!(f.wait_seconds, p(30.0, 30.0, 30.0));
    // c3 waits at 60; c4 joins exactly at 60, which is not before it.
    assert_eq!(f.waiting_now, 1);
    assert_eq!(f.handle_seconds, NONE);
}

#[test]
fn a_wait_that_ends_at_to_does_not_count_and_still_waits() {
    // c2 abandons at exactly 50: in the next window, and waiting at the instant 50.
    let f = compute(&samples(1), Scope::Queue(A), Some(at(25, 1)), at(50, 1)).figures;
    assert_eq!((f.picked, f.abandoned), (1, 0));
    assert_eq!(f.waiting_now, 2);
    let next = compute(&samples(1), Scope::Queue(A), Some(at(50, 1)), at(51, 1)).figures;
    assert_eq!((next.abandoned, next.joined, next.waiting_now), (1, 0, 1));
    assert_eq!(next.wait_seconds, p(30.0, 30.0, 30.0));
}

#[test]
fn a_handle_counts_in_the_window_in_which_it_ends() {
    // c5's handle in A (85 → 145) ends by its transfer; c4's in B (90 → 190) by its end.
    let a = compute(&samples(1), Scope::Queue(A), Some(at(140, 1)), at(200, 1)).figures;
    assert_eq!(a.transferred_out, 1);
    assert_eq!(a.handle_seconds, p(60.0, 60.0, 60.0));
    assert_eq!(a.picked, 0);
    assert_eq!(a.per_agent.len(), 1);
    assert_eq!(a.per_agent[0].agent_id, Y);
    assert_eq!(a.per_agent[0].picked, 0);
}

#[test]
fn hourly_buckets_agree_with_their_windows() {
    // Stretched to minutes, the story spans seven hours.
    let samples = samples(60);
    for scope in [Scope::Queue(A), Scope::Queue(B), Scope::Organization(ORG)] {
        for from in [None, Some(at(25, 60))] {
            let to = at(500, 60);
            let buckets =
                compute_buckets(&samples, scope, from, to, By::Hour).expect("few buckets");
            // Without `from`, the first bucket is the hour of the scope's first sample.
            let first = match (from, scope) {
                (Some(from), _) => from,
                (None, Scope::Queue(B)) => By::Hour.floor(at(70, 60)),
                (None, _) => By::Hour.floor(at(10, 60)),
            };
            assert_eq!(buckets[0].start, first);
            for (index, bucket) in buckets.iter().enumerate() {
                let end = buckets.get(index + 1).map_or(to, |next| next.start);
                let alone = compute(&samples, scope, Some(bucket.start), end);
                assert_eq!(bucket.figures, alone.figures, "{scope:?} {from:?} #{index}");
            }
            let joined: u64 = buckets.iter().map(|b| b.figures.joined).sum();
            assert_eq!(joined, compute(&samples, scope, from, to).figures.joined);
        }
    }
}

#[test]
fn buckets_fall_on_the_hour_and_the_day() {
    let t = Utc
        .with_ymd_and_hms(2026, 3, 4, 13, 45, 12)
        .single()
        .expect("a valid time");
    assert_eq!(By::Hour.floor(t).to_rfc3339(), "2026-03-04T13:00:00+00:00");
    assert_eq!(By::Day.floor(t).to_rfc3339(), "2026-03-04T00:00:00+00:00");
}

#[test]
fn daily_buckets_of_an_empty_window_are_none() {
    let buckets = compute_buckets(&samples(1), Scope::Queue(A), None, at(5, 1), By::Day);
    assert_eq!(buckets, Some(Vec::new()));
}

#[test]
fn a_century_by_the_hour_is_refused() {
    let from = Some(at(0, 1) - Duration::days(36_500));
    assert!(compute_buckets(&samples(1), Scope::Queue(A), from, at(0, 1), By::Hour).is_none());
}

#[test]
fn the_fold_keeps_open_waits_and_queue_history() {
    let samples = samples(1);
    let open: Vec<_> = samples.open_waits().map(|w| w.conversation_id).collect();
    assert_eq!(open, vec![c(99), c(6)]);
    let history = &samples.queues[&A];
    assert_eq!(history.organization_id, ORG);
    assert_eq!(history.changes, vec![(at(1, 1), true)]);
    assert_eq!(samples.position, story().len() as i64);
}

/// The stream an event of the story is stored in.
fn stream_of(event: &Event) -> (&'static str, Uuid) {
    match event {
        Event::Queue(
            QueueEvent::QueueCreated { queue_id, .. }
            | QueueEvent::QueueOpened { queue_id, .. }
            | QueueEvent::CustomerJoinedQueue { queue_id, .. }
            | QueueEvent::CustomerLeftQueue { queue_id, .. }
            | QueueEvent::CustomerPicked { queue_id, .. }
            | QueueEvent::ConversationTransferred { queue_id, .. },
        ) => ("queue", *queue_id),
        Event::Conversation(
            ConversationEvent::ConversationEnded {
                conversation_id, ..
            }
            | ConversationEvent::ConversationRated {
                conversation_id, ..
            },
        ) => ("conversation", *conversation_id),
        other => panic!("not in the story: {other:?}"),
    }
}

#[test]
fn a_scoped_fold_that_skips_what_it_does_not_want_gives_the_same_figures() {
    for scope in [Scope::Queue(A), Scope::Queue(B), Scope::Organization(ORG)] {
        let mut fold = StatsFold::for_scope(scope);
        let mut skipped = 0;
        for (position, (seconds, event)) in story().into_iter().enumerate() {
            let (kind, id) = stream_of(&event);
            if fold.wants(kind, &id.to_string(), &event.event_type()) {
                fold.apply(position as i64 + 1, at(seconds, 1), &event);
            } else {
                skipped += 1;
            }
        }
        assert!(skipped > 0, "{scope:?} skipped nothing");
        assert_eq!(
            compute(fold.samples(), scope, None, at(1000, 1)),
            compute(&samples(1), scope, None, at(1000, 1)),
            "{scope:?}"
        );
        assert_eq!(
            compute(fold.samples(), scope, Some(at(60, 1)), at(200, 1)),
            compute(&samples(1), scope, Some(at(60, 1)), at(200, 1)),
            "{scope:?}"
        );
    }
    let b = StatsFold::for_scope(Scope::Queue(B));
    assert!(!b.wants("queue", &A.to_string(), "CustomerJoinedQueue"));
    assert!(b.wants("queue", &A.to_string(), "ConversationTransferred"));
    assert!(!b.wants("conversation", &c(1).to_string(), "MessageSent"));
}

mod nearest_rank {
    use super::super::nearest_rank;

    #[test]
    fn of_nothing_is_none() {
        assert_eq!(nearest_rank::<i64>(&[], 50), None);
    }

    #[test]
    fn of_one_sample_is_that_sample() {
        assert_eq!(nearest_rank(&[7], 50), Some(7));
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        assert_eq!(nearest_rank(&[7], 100), Some(7));
    }

    #[test]
    fn of_two_samples_p50_is_the_first_and_p90_the_second() {
        // ⌈0.5·2⌉ = 1, ⌈0.9·2⌉ = 2.
        assert_eq!(nearest_rank(&[1, 2], 50), Some(1));
        assert_eq!(nearest_rank(&[1, 2], 90), Some(2));
    }

    #[test]
    fn of_ten_samples_p50_is_the_fifth_and_p90_the_ninth() {
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&ten, 50), Some(5));
        assert_eq!(nearest_rank(&ten, 90), Some(9));
        assert_eq!(nearest_rank(&ten, 100), Some(10));
        assert_eq!(nearest_rank(&ten, 1), Some(1));
    }

    #[test]
    fn of_eleven_samples_p50_rounds_up_to_the_sixth() {
        let eleven: Vec<i64> = (1..=11).collect();
        // ⌈5.5⌉ = 6, ⌈9.9⌉ = 10.
        assert_eq!(nearest_rank(&eleven, 50), Some(6));
        assert_eq!(nearest_rank(&eleven, 90), Some(10));
    }

    #[test]
    fn never_averages() {
        assert_eq!(nearest_rank(&[10, 20, 30, 40], 50), Some(20));
    }
}

#[test]
fn seconds_are_rounded_to_the_millisecond() {
    let mut fold = StatsFold::default();
    let start = t0();
    let end = start + Duration::microseconds(1_234_567);
    fold.apply(1, start, &created(A, ORG));
    fold.apply(2, start, &joined(A, c(1)));
    fold.apply(3, end, &picked(A, c(1), X));
    let f = compute(&fold.into_samples(), Scope::Queue(A), None, at(10, 1)).figures;
    assert_eq!(f.wait_seconds.max, Some(1.235));
}

mod targets {
    //! Queue A with a wait target of 20 s and a first-response target of 60 s from 5 s:
    //! - c1 joins at 10, is picked at 25 (met at 25), answered at 50 (met at 50).
    //! - c2 joins at 20, is picked at 50 (breached at 40), answered at 100 (breached at 80).
    //! - c3 joins at 30, abandons at 40 and ends unanswered: before both deadlines, not counted.
    //! - c4 joins at 40 and still waits: breached at 60 (wait) and at 100 (first response).
    //! - c5 joins at 45, abandons at 70 (breached at 65); ended unanswered at 70, before its
    //!   first-response deadline (105): not counted.
    //! - the targets are cleared at 150; c6 joins at 160 and waits past any target: not counted.
    use super::*;
    use domain::queue::QueueSettings;
    use domain::values::Limit;

    fn targets(wait: Option<u32>, first_response: Option<u32>) -> Event {
        let mut settings = QueueSettings::named(Name::parse("Support").expect("a name"));
        settings.target_wait_seconds = wait.map(|s| Limit::try_from(s).expect("a limit"));
        settings.target_first_response_seconds =
            first_response.map(|s| Limit::try_from(s).expect("a limit"));
        Event::Queue(QueueEvent::QueueSettingsChanged {
            queue_id: A,
            organization_id: ORG,
            settings,
            by: None,
        })
    }

    fn answered(conversation_id: Uuid, agent_id: Uuid) -> Event {
        Event::Conversation(ConversationEvent::MessageSent {
            conversation_id,
            organization_id: ORG,
            message_id: Uuid::new_v4(),
            seq: 2,
            author: Author::agent(agent_id, "Agent"),
            text: "Hello".into(),
            attachments: Vec::new(),
        })
    }

    fn from_customer(conversation_id: Uuid) -> Event {
        Event::Conversation(ConversationEvent::MessageSent {
            conversation_id,
            organization_id: ORG,
            message_id: Uuid::new_v4(),
            seq: 2,
            author: Author::customer(conversation_id, "Ann"),
            text: "Hi".into(),
            attachments: Vec::new(),
        })
    }

    fn story() -> Vec<(i64, Event)> {
        use EndReason::Abandoned;
        use LeaveReason as L;
        vec![
            (0, created(A, ORG)),
            (1, opened(A, ORG)),
            (5, targets(Some(20), Some(60))),
            (10, joined(A, c(1))),
            (12, from_customer(c(1))),
            (20, joined(A, c(2))),
            (25, picked(A, c(1), X)),
            (30, joined(A, c(3))),
            (40, joined(A, c(4))),
            (40, left(A, c(3), L::Abandoned, None)),
            (40, ended(c(3), A, None, true, Abandoned)),
            (45, joined(A, c(5))),
            (50, picked(A, c(2), Y)),
            (50, answered(c(1), X)),
            (55, answered(c(1), X)),
            (70, left(A, c(5), L::Abandoned, None)),
            (70, ended(c(5), A, None, true, Abandoned)),
            (100, answered(c(2), Y)),
            (150, targets(None, None)),
            (160, joined(A, c(6))),
        ]
    }

    fn samples() -> Samples {
        let mut fold = StatsFold::default();
        for (position, (seconds, event)) in story().into_iter().enumerate() {
            fold.apply(position as i64 + 1, at(seconds, 1), &event);
        }
        fold.into_samples()
    }

    fn target(met: u64, breached: u64) -> TargetFigures {
        TargetFigures {
            met,
            breached,
            met_share: (met + breached > 0).then(|| met as f64 / (met + breached) as f64),
        }
    }

    #[test]
    fn over_all_time_the_share_met_and_the_breaches() {
        let stats = compute(&samples(), Scope::Queue(A), None, at(1000, 1));
        assert_eq!(stats.figures.wait_target, target(1, 3));
        assert_eq!(stats.figures.wait_target.met_share, Some(0.25));
        assert_eq!(stats.figures.first_response_target, target(1, 2));
    }

    #[test]
    fn a_breach_counts_when_the_target_passes_not_when_the_wait_ends() {
        let stats = compute(&samples(), Scope::Queue(A), None, at(62, 1));
        assert_eq!(stats.figures.wait_target, target(1, 2));
        assert_eq!(stats.figures.first_response_target, target(1, 0));
        let later = compute(&samples(), Scope::Queue(A), Some(at(62, 1)), at(1000, 1));
        assert_eq!(later.figures.wait_target, target(0, 1));
        assert_eq!(later.figures.first_response_target, target(0, 2));
    }

    #[test]
    fn without_decisions_the_share_is_none() {
        let stats = compute(&samples(), Scope::Queue(A), None, at(11, 1));
        assert_eq!(stats.figures.wait_target, target(0, 0));
        assert_eq!(stats.figures.wait_target.met_share, None);
    }

    #[test]
    fn buckets_count_each_decision_once() {
        let buckets =
            compute_buckets(&samples(), Scope::Queue(A), None, at(7200, 1), By::Hour).unwrap();
        let (mut wait, mut first) = (target(0, 0), target(0, 0));
        for bucket in &buckets {
            wait.met += bucket.figures.wait_target.met;
            wait.breached += bucket.figures.wait_target.breached;
            first.met += bucket.figures.first_response_target.met;
            first.breached += bucket.figures.first_response_target.breached;
        }
        assert_eq!((wait.met, wait.breached), (1, 3));
        assert_eq!((first.met, first.breached), (1, 2));
    }
}
