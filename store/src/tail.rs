//! The log's newest events as this process's writer committed them, so that the readers that
//! follow the log — the projectors, the process manager, the live hub, the relays, the router,
//! the sweeper: seven of them — take a fresh commit from memory instead of each reading,
//! decoding and opening it from the file again.
//!
//! What it may answer is decided by positions alone: it keeps one run of consecutive
//! positions, and answers "what comes after `p`" only when it holds `p + 1`. Positions are
//! unique, so a run from `p + 1` leaves no room for another process's event inside it; an
//! event of another process (or a gap) after the run's end starts a new run when this
//! writer next commits, and until then the reader goes to the file, where that event is.
//!
//! Both writers feed it: SQLite's, and Postgres's, whose batches commit under the append lock
//! and so in position order (a batch it had to do one request at a time is not kept: the gap
//! it leaves starts a new run, and readers go to the database for it).
//!
//! Each event is kept as stored (sealed) and, when the writer sealed it with a live key, as
//! opened: the payload the command gave. A subject's erasure (here, or another process's
//! `CustomerErased` met in the log by any reader of this process) makes its events come out
//! sealed from then on, to be opened against the keys, which no longer hold its key: a reader
//! meets the erasure event before any later event of its subject, since it reads in order.

use std::collections::{HashSet, VecDeque};

use serde_json::Value;

use crate::event::StoredEvent;

/// Events kept: a few batches of the busiest writer, a few megabytes.
const KEPT: usize = 4_096;

/// How far back from the run's end [`Tail::stream_after`] looks for a stream's last event: a
/// stream quiet for longer is read from the file, and the tail's lock is held for a short scan.
const STREAM_LOOKBACK: usize = 1_024;

/// Erased subjects remembered: far more than the subjects of [`KEPT`] events, and far more than
/// the writer's key cache holds (a key it kept from before another process's erasure is the
/// one way an event sealed after it could come out opened).
const ERASED_KEPT: usize = 65_536;

/// The event type by which the log says a subject's key is going.
const ERASURE: &str = "CustomerErased";

/// One committed event.
pub(crate) struct Kept {
    /// As stored.
    pub(crate) sealed: StoredEvent,
    /// Its subject and its payload opened, if its subject's key was live when it was sealed.
    pub(crate) opened: Option<(String, Value)>,
}

impl Kept {
    /// `event` as a writer committed it at `position`: `payload` is what it stored (sealed
    /// with `keys`), and the command's own payload is kept opened when its subject's key was
    /// live.
    pub(crate) fn committed(
        event: &crate::event::NewEvent,
        payload: Value,
        position: i64,
        recorded_at: chrono::DateTime<chrono::Utc>,
        idempotency_key: Option<String>,
        keys: &crate::seal::BatchKeys,
    ) -> Kept {
        let opened = crate::seal::subject_of(&event.aggregate_type, &event.payload)
            .filter(|subject| keys.get(subject).is_some_and(Option::is_some))
            .map(|subject| (subject, event.payload.clone()));
        let as_stored = crate::event::NewEvent {
            payload,
            ..event.clone()
        };
        Kept {
            sealed: StoredEvent::from_new(as_stored, position, recorded_at, idempotency_key),
            opened,
        }
    }
}

#[derive(Default)]
pub(crate) struct Tail {
    /// Consecutive positions, oldest first.
    run: VecDeque<Kept>,
    /// Subjects erased since this process began, newest last; their events come out sealed.
    erased: HashSet<String>,
    erased_order: VecDeque<String>,
}

impl Tail {
    /// Adds what one commit appended, in position order. An event that does not follow the run
    /// starts a new one.
    pub(crate) fn push(&mut self, committed: impl IntoIterator<Item = Kept>) {
        for kept in committed {
            if self
                .run
                .back()
                .is_some_and(|last| last.sealed.position + 1 != kept.sealed.position)
            {
                self.run.clear();
            }
            if self.run.len() == KEPT {
                self.run.pop_front();
            }
            self.run.push_back(kept);
        }
    }

    /// The last position the run holds.
    pub(crate) fn end(&self) -> Option<i64> {
        self.run.back().map(|kept| kept.sealed.position)
    }

    /// Up to `limit` events after `position`, if the run holds the one right after it;
    /// `None` sends the reader to the file. An event comes out opened unless its subject is
    /// erased; erasures among them count for those after them.
    ///
    /// The events of the `skipped` types come without their payload (`Null`): nothing of
    /// theirs is copied but their columns.
    pub(crate) fn after(
        &mut self,
        position: i64,
        limit: usize,
        skipped: &[&str],
    ) -> Option<Vec<StoredEvent>> {
        let first = self.run.front()?.sealed.position;
        let skip = usize::try_from(position + 1 - first).ok()?;
        if skip >= self.run.len() {
            return None;
        }
        let mut events = Vec::with_capacity(limit.min(self.run.len() - skip));
        for at in skip..self.run.len().min(skip.saturating_add(limit)) {
            events.push(self.copy(at, skipped));
        }
        Some(events)
    }

    /// The events of stream `(kind, id)` after its `sequence`, in order, if the run holds
    /// them all: the stream's event at `sequence` is among the run's last [`STREAM_LOOKBACK`]
    /// and the run reaches `known`, the head as this process has heard of it (an event the run
    /// does not hold can lie only past its end). `None` sends the reader to the file.
    pub(crate) fn stream_after(
        &mut self,
        kind: &str,
        id: &str,
        sequence: i64,
        known: i64,
    ) -> Option<Vec<StoredEvent>> {
        if self.end()? < known || sequence < 1 {
            return None;
        }
        let mut later = Vec::new();
        let mut found = false;
        for at in (0..self.run.len()).rev().take(STREAM_LOOKBACK) {
            let sealed = &self.run[at].sealed;
            if sealed.aggregate_type != kind || sealed.aggregate_id != id {
                continue;
            }
            if sealed.sequence <= sequence {
                found = sealed.sequence == sequence;
                break;
            }
            later.push(at);
        }
        if !found {
            return None;
        }
        Some(
            later
                .into_iter()
                .rev()
                .map(|at| self.copy(at, &[]))
                .collect(),
        )
    }

    /// The run's event at `at`, as a reader gets it: opened unless its subject is erased, the
    /// payload of a `skipped` type `Null`. An erasure counts for the events after it.
    fn copy(&mut self, at: usize, skipped: &[&str]) -> StoredEvent {
        let kept = &self.run[at];
        let sealed = &kept.sealed;
        // One payload copied: the opened one, or the sealed one for an erased subject.
        let payload = match &kept.opened {
            _ if skipped.contains(&sealed.event_type.as_str()) => &Value::Null,
            Some((subject, opened)) if !self.erased.contains(subject) => opened,
            _ => &sealed.payload,
        };
        let event = StoredEvent {
            position: sealed.position,
            event_id: sealed.event_id,
            aggregate_type: sealed.aggregate_type.clone(),
            aggregate_id: sealed.aggregate_id.clone(),
            sequence: sealed.sequence,
            event_type: sealed.event_type.clone(),
            event_version: sealed.event_version.clone(),
            payload: payload.clone(),
            actor: sealed.actor.clone(),
            recorded_at: sealed.recorded_at,
            idempotency_key: sealed.idempotency_key.clone(),
        };
        if is_erasure(&event) {
            let subject = event.aggregate_id.clone();
            self.erase(subject);
        }
        event
    }

    /// Notes erasures among `events` (read from the file).
    pub(crate) fn note_erasures(&mut self, events: &[StoredEvent]) {
        for event in events.iter().filter(|event| is_erasure(event)) {
            self.erase(event.aggregate_id.clone());
        }
    }

    /// From now on, `subject`'s events come out sealed.
    pub(crate) fn erase(&mut self, subject: String) {
        if !self.erased.insert(subject.clone()) {
            return;
        }
        self.erased_order.push_back(subject);
        if self.erased_order.len() > ERASED_KEPT {
            if let Some(oldest) = self.erased_order.pop_front() {
                self.erased.remove(&oldest);
            }
        }
    }
}

/// Whether `event` says its subject (the conversation, its stream) is erased.
fn is_erasure(event: &StoredEvent) -> bool {
    event.event_type == ERASURE && event.aggregate_type == crate::seal::CONVERSATION
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;

    fn stored(position: i64, event_type: &str, subject: &str, payload: Value) -> StoredEvent {
        StoredEvent::from_new(
            NewEvent {
                event_id: uuid::Uuid::new_v4(),
                aggregate_type: "conversation".into(),
                aggregate_id: subject.into(),
                sequence: position,
                event_type: event_type.into(),
                event_version: "1".into(),
                payload,
                actor: None,
            },
            position,
            chrono::Utc::now(),
            None,
        )
    }

    fn event(position: i64) -> Kept {
        Kept {
            sealed: stored(position, "E", "a", serde_json::json!({ "n": position })),
            opened: None,
        }
    }

    /// A message of `subject`, sealed, with its opened payload.
    fn message(position: i64, subject: &str) -> Kept {
        Kept {
            sealed: stored(
                position,
                "MessageSent",
                subject,
                serde_json::json!({ "text": { "$sealed": "…" } }),
            ),
            opened: Some((subject.into(), serde_json::json!({ "text": "hello" }))),
        }
    }

    fn erasure(position: i64, subject: &str) -> Kept {
        Kept {
            sealed: stored(position, ERASURE, subject, serde_json::json!({})),
            opened: None,
        }
    }

    fn texts(events: Option<Vec<StoredEvent>>) -> Vec<String> {
        events
            .unwrap_or_default()
            .iter()
            .map(|e| e.payload["text"].to_string())
            .collect()
    }

    fn positions(events: Option<Vec<StoredEvent>>) -> Option<Vec<i64>> {
        events.map(|events| events.iter().map(|e| e.position).collect())
    }

    #[test]
    fn answers_only_from_the_position_right_after_a_held_one() {
        let mut tail = Tail::default();
        assert_eq!(positions(tail.after(0, 10, &[])), None);
        tail.push([event(5), event(6), event(7)]);
        assert_eq!(positions(tail.after(4, 10, &[])), Some(vec![5, 6, 7]));
        assert_eq!(positions(tail.after(5, 1, &[])), Some(vec![6]));
        // Before the run: what lies between is in the file only.
        assert_eq!(positions(tail.after(3, 10, &[])), None);
        // At the run's end: another process may have committed since.
        assert_eq!(positions(tail.after(7, 10, &[])), None);
    }

    #[test]
    fn a_gap_starts_a_new_run() {
        let mut tail = Tail::default();
        tail.push([event(1), event(2)]);
        // Position 3 is another process's.
        tail.push([event(4)]);
        assert_eq!(positions(tail.after(1, 10, &[])), None);
        assert_eq!(positions(tail.after(2, 10, &[])), None);
        assert_eq!(positions(tail.after(3, 10, &[])), Some(vec![4]));
    }

    #[test]
    fn keeps_a_bounded_run() {
        let mut tail = Tail::default();
        tail.push((1..=KEPT as i64 + 10).map(event));
        assert_eq!(tail.run.len(), KEPT);
        assert_eq!(positions(tail.after(0, 1, &[])), None);
        assert_eq!(positions(tail.after(10, 1, &[])), Some(vec![11]));
    }

    #[test]
    fn an_erased_subjects_events_come_out_sealed() {
        let mut tail = Tail::default();
        tail.push([message(1, "s"), message(2, "t")]);
        assert_eq!(texts(tail.after(0, 10, &[])), [r#""hello""#, r#""hello""#]);
        tail.erase("s".into());
        assert_eq!(
            texts(tail.after(0, 10, &[])),
            [r#"{"$sealed":"…"}"#, r#""hello""#]
        );
    }

    #[test]
    fn an_erasure_in_the_run_counts_for_the_events_after_it() {
        let mut tail = Tail::default();
        tail.push([message(1, "s"), erasure(2, "s"), message(3, "s")]);
        // Before the erasure, as the key then was; after it, sealed, in the same answer.
        let events = tail.after(0, 10, &[]);
        assert_eq!(texts(events), [r#""hello""#, "null", r#"{"$sealed":"…"}"#]);
    }

    #[test]
    fn an_erasure_read_from_the_file_counts_for_the_run() {
        let mut tail = Tail::default();
        tail.push([message(2, "s")]);
        tail.note_erasures(&[erasure(1, "s").sealed]);
        assert_eq!(texts(tail.after(1, 10, &[])), [r#"{"$sealed":"…"}"#]);
    }
}
