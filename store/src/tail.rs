//! The log's newest events as this process's writer committed them (sealed, as stored), so
//! that the readers that follow the log — the projectors, the process manager, the live hub,
//! the relays, the router, the sweeper: seven of them — take a fresh commit from memory
//! instead of each reading and decoding it from the file again.
//!
//! What it may answer is decided by positions alone: it keeps one run of consecutive
//! positions, and answers "what comes after `p`" only when it holds `p + 1`. Positions are
//! unique, so a run from `p + 1` leaves no room for another process's event inside it; an
//! event of another process (or a gap) after the run's end starts a new run when this
//! writer next commits, and until then the reader goes to the file, where that event is.
//! Events come out as the file would give them, to be opened the same way (an erased
//! subject's fields stay sealed).

use std::collections::VecDeque;

use crate::event::StoredEvent;

/// Events kept: a few batches of the busiest writer, a few megabytes.
const KEPT: usize = 4_096;

#[derive(Default)]
pub(crate) struct Tail {
    /// Consecutive positions, oldest first.
    run: VecDeque<StoredEvent>,
}

impl Tail {
    /// Adds what one commit appended, in position order. An event that does not follow the run
    /// starts a new one.
    pub(crate) fn push(&mut self, committed: impl IntoIterator<Item = StoredEvent>) {
        for event in committed {
            if self
                .run
                .back()
                .is_some_and(|last| last.position + 1 != event.position)
            {
                self.run.clear();
            }
            if self.run.len() == KEPT {
                self.run.pop_front();
            }
            self.run.push_back(event);
        }
    }

    /// Up to `limit` events after `position`, if the run holds the one right after it;
    /// `None` sends the reader to the file.
    pub(crate) fn after(&self, position: i64, limit: usize) -> Option<Vec<StoredEvent>> {
        let first = self.run.front()?.position;
        let skip = usize::try_from(position + 1 - first).ok()?;
        if skip >= self.run.len() {
            return None;
        }
        Some(self.run.iter().skip(skip).take(limit).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;

    fn event(position: i64) -> StoredEvent {
        StoredEvent::from_new(
            NewEvent {
                event_id: uuid::Uuid::new_v4(),
                aggregate_type: "T".into(),
                aggregate_id: "a".into(),
                sequence: position,
                event_type: "E".into(),
                event_version: "1".into(),
                payload: serde_json::json!({ "n": position }),
                actor: None,
            },
            position,
            chrono::Utc::now(),
            None,
        )
    }

    fn positions(events: Option<Vec<StoredEvent>>) -> Option<Vec<i64>> {
        events.map(|events| events.iter().map(|e| e.position).collect())
    }

    #[test]
    fn answers_only_from_the_position_right_after_a_held_one() {
        let mut tail = Tail::default();
        assert_eq!(positions(tail.after(0, 10)), None);
        tail.push([event(5), event(6), event(7)]);
        assert_eq!(positions(tail.after(4, 10)), Some(vec![5, 6, 7]));
        assert_eq!(positions(tail.after(5, 1)), Some(vec![6]));
        // Before the run: what lies between is in the file only.
        assert_eq!(positions(tail.after(3, 10)), None);
        // At the run's end: another process may have committed since.
        assert_eq!(positions(tail.after(7, 10)), None);
    }

    #[test]
    fn a_gap_starts_a_new_run() {
        let mut tail = Tail::default();
        tail.push([event(1), event(2)]);
        // Position 3 is another process's.
        tail.push([event(4)]);
        assert_eq!(positions(tail.after(1, 10)), None);
        assert_eq!(positions(tail.after(2, 10)), None);
        assert_eq!(positions(tail.after(3, 10)), Some(vec![4]));
    }

    #[test]
    fn keeps_a_bounded_run() {
        let mut tail = Tail::default();
        tail.push((1..=KEPT as i64 + 10).map(event));
        assert_eq!(tail.run.len(), KEPT);
        assert_eq!(positions(tail.after(0, 1)), None);
        assert_eq!(positions(tail.after(10, 1)), Some(vec![11]));
    }
}
