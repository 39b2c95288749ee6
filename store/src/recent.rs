//! The aggregates this process's commands last left, by stream, each with the version of its
//! stream it is the fold of — so a command folds only the events written since (usually none)
//! instead of its whole stream (invariant 10).
//!
//! An entry is *taken out* while a command decides on it, under the stream's turn in
//! `Commands`, and put back only once its append has succeeded (or when the command appended
//! nothing and changed nothing): it never stands for a state the log does not have. The map's
//! lock is a plain mutex held for a lookup or an insert, never across an `.await`.
//!
//! Bounded in entries, with two generations: new entries go to the young one; when it is full it
//! becomes the old one and the previous old one is dropped, so what commands keep using stays
//! and what they stopped using goes, at O(1) per command.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;

type Key = (&'static str, String);
type Entry = (Box<dyn Any + Send + Sync>, i64);

pub(crate) struct Recent {
    /// Entries per generation: at most twice this many are kept.
    per_generation: usize,
    generations: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: HashMap<Key, Entry>,
    old: HashMap<Key, Entry>,
}

impl Recent {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            per_generation: (capacity / 2).max(1),
            generations: Mutex::default(),
        }
    }

    fn generations(&self) -> std::sync::MutexGuard<'_, Generations> {
        // A panic while the lock was held cannot leave a half-made entry: each change is one
        // map operation. Go on with what is there.
        self.generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The aggregate of stream `(kind, id)` and the version it folds, if this process has it;
    /// it is no longer in the cache until [`Recent::keep`] puts it back.
    pub(crate) fn take<A: Any>(&self, kind: &'static str, id: &str) -> Option<(A, i64)> {
        let key = (kind, id.to_owned());
        let (aggregate, version) = {
            let mut generations = self.generations();
            match generations.young.remove(&key) {
                Some(entry) => entry,
                None => generations.old.remove(&key)?,
            }
        };
        // Another type under the same name (never, as types are unique) is a miss.
        aggregate
            .downcast::<A>()
            .ok()
            .map(|aggregate| (*aggregate, version))
    }

    /// Keeps `aggregate`, the fold of stream `(kind, id)` up to `version`.
    pub(crate) fn keep<A: Any + Send + Sync>(
        &self,
        kind: &'static str,
        id: &str,
        aggregate: A,
        version: i64,
    ) {
        let evicted = {
            let mut generations = self.generations();
            let key = (kind, id.to_owned());
            generations.old.remove(&key);
            let mut evicted = None;
            if generations.young.len() >= self.per_generation {
                let young = std::mem::take(&mut generations.young);
                evicted = Some(std::mem::replace(&mut generations.old, young));
            }
            generations
                .young
                .insert(key, (Box::new(aggregate), version));
            evicted
        };
        // Dropped outside the lock: freeing thousands of aggregates takes a while.
        drop(evicted);
    }

    /// How many aggregates are kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        let generations = self.generations();
        generations.young.len() + generations.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_taken_once_and_kept_again() {
        let recent = Recent::new(8);
        recent.keep("queue", "q1", 7_u32, 3);
        assert_eq!(recent.take::<u32>("queue", "q1"), Some((7, 3)));
        assert_eq!(recent.take::<u32>("queue", "q1"), None);
        assert_eq!(recent.take::<u32>("conversation", "q1"), None);
    }

    #[test]
    fn it_keeps_at_most_its_capacity_and_what_is_used_stays() {
        let recent = Recent::new(100);
        for n in 0..10_000 {
            recent.keep("queue", &n.to_string(), n, n.into());
            // One hot stream, used by every tenth command.
            if n % 10 == 0 {
                if let Some((hot, version)) = recent.take::<i32>("queue", "hot") {
                    recent.keep("queue", "hot", hot, version);
                } else {
                    recent.keep("queue", "hot", 0_i32, 0);
                }
            }
            assert!(recent.len() <= 100);
        }
        assert!(recent.take::<i32>("queue", "hot").is_some());
        assert!(recent.take::<i32>("queue", "9999").is_some());
        assert!(recent.take::<i32>("queue", "0").is_none());
    }
}
