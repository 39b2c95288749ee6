//! One way to follow the log, so that its readers — the projector groups, the process manager,
//! the live hub, the JetStream and webhook relays, the router, the sweeper — each keep only
//! their own work. They used to hold ten copies of the same loop: a watch of the head to wake
//! on, a safety-net sleep for a missed wake-up, a back-off on errors and a stop on shutdown.
//!
//! A [`Follower`] reads in batches from a position, moving it past what it read; a reader with a
//! checkpoint saves [`Follower::position`] once the batch's work is done, so a crash repeats
//! the work rather than skips it. [`Follower::next_batch`] waits for the next batch;
//! [`Follower::read`] and [`Follower::wait`] are its two halves, for a loop that waits on
//! other things as well. [`pause`] is the one sleep that shutdown cuts short.

use std::time::Duration;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::StoredEvent;
use crate::log::EventStore;

/// How many events a batch holds unless [`Follower::batch`] says otherwise.
const BATCH: usize = 500;
/// How long a follower sleeps without a wake-up: a missed one costs at most this long.
const IDLE: Duration = Duration::from_secs(5);
/// The first wait after a failed read; it doubles up to the follower's idle time.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Sleeps for `delay` unless shutdown comes first (or has come); true when it did. A dropped
/// sender counts as shutdown.
pub async fn pause(shutdown: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => *shutdown.borrow(),
        changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
    }
}

/// A reader of the log from a position: see the module's documentation.
pub struct Follower {
    /// Names the reader in the log's warnings.
    name: &'static str,
    store: EventStore,
    position: i64,
    batch: usize,
    types: Option<&'static [&'static str]>,
    skipped: &'static [&'static str],
    idle: Duration,
    wake: watch::Receiver<i64>,
    retry: Duration,
    caught_up: bool,
}

impl Follower {
    /// Follows `store` after `position` (0: from the start), in batches of 500, waking on every
    /// commit and at least every 5 s.
    pub fn new(name: &'static str, store: &EventStore, position: i64) -> Follower {
        Follower {
            name,
            wake: store.subscribe(),
            store: store.clone(),
            position,
            batch: BATCH,
            types: None,
            skipped: &[],
            idle: IDLE,
            retry: FIRST_RETRY,
            caught_up: false,
        }
    }

    /// At most `batch` events a read.
    pub fn batch(mut self, batch: usize) -> Follower {
        self.batch = batch.max(1);
        self
    }

    /// Only events of these types (the others are passed over, and the position moves past
    /// them too).
    pub fn types(mut self, types: &'static [&'static str]) -> Follower {
        self.types = Some(types);
        self
    }

    /// Events of these types come without their payload (`Null`): for a reader that passes
    /// over them, the log reads, parses and opens none of theirs (see
    /// [`EventStore::read_after_skipping`]).
    pub fn skip_payloads(mut self, skipped: &'static [&'static str]) -> Follower {
        self.skipped = skipped;
        self
    }

    /// From the next read on, the payloads of `skipped` (and only those) are skipped.
    pub fn set_skipped_payloads(&mut self, skipped: &'static [&'static str]) {
        self.skipped = skipped;
    }

    /// Sleeps at most `idle` without a wake-up (a safety net, or a tick of the reader's own).
    pub fn idle(mut self, idle: Duration) -> Follower {
        self.idle = idle;
        self
    }

    /// Where the follower is: every event up to here has been read.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Reads after `position` from now on: back, to read again what a failed piece of work
    /// read, or on, past what another reader did.
    pub fn seek(&mut self, position: i64) {
        self.position = position;
    }

    /// Whether the last read reached the head of the log (as it was then).
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// The next events, without waiting: empty at the head. The position moves past them.
    pub async fn read(&mut self) -> Result<Vec<StoredEvent>, StoreError> {
        if !self.caught_up {
            // Catching up: on SQLite a read runs in this thread and never waits, so a reader
            // going through a long log in a loop would keep its worker thread to itself, and
            // two of them every worker (the sweeper's and the router's first fold of a
            // 1,000,000-event log held the read models' fill and every request for 15 s).
            tokio::task::yield_now().await;
        }
        // Marked seen before reading, so that a commit after the read wakes `wait` again.
        self.wake.borrow_and_update();
        loop {
            let mut events = self
                .store
                .read_heard_of(self.position, self.batch, self.skipped)
                .await?;
            self.caught_up = events.len() < self.batch;
            let Some(last) = events.last() else {
                return Ok(events);
            };
            self.position = last.position;
            if let Some(types) = self.types {
                events.retain(|event| types.contains(&event.event_type.as_str()));
            }
            if !events.is_empty() || self.caught_up {
                return Ok(events);
            }
        }
    }

    /// Waits until the log may have moved on: a commit, or the idle time passed. True when
    /// shutdown came first.
    pub async fn wait(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        matches!(self.woken(shutdown).await, Woken::Shutdown)
    }

    /// The next batch, waiting for it; retries a failed read after a growing pause (1 s, up
    /// to the idle time). Empty when the idle time passed with nothing new (a reader with
    /// something to do when idle does it then); `None` at shutdown.
    pub async fn next_batch(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<Vec<StoredEvent>> {
        loop {
            if *shutdown.borrow() {
                return None;
            }
            match self.read().await {
                Ok(events) => {
                    self.retry = FIRST_RETRY;
                    if !events.is_empty() {
                        return Some(events);
                    }
                    match self.woken(shutdown).await {
                        Woken::Commit => {}
                        Woken::Idle => return Some(events),
                        Woken::Shutdown => return None,
                    }
                }
                Err(error) => {
                    tracing::warn!(follower = self.name, %error, "cannot read the log; retrying");
                    let delay = self.retry;
                    self.retry = (self.retry * 2).min(self.idle.max(FIRST_RETRY));
                    if pause(shutdown, delay).await {
                        return None;
                    }
                }
            }
        }
    }

    async fn woken(&mut self, shutdown: &mut watch::Receiver<bool>) -> Woken {
        if *shutdown.borrow() {
            return Woken::Shutdown;
        }
        tokio::select! {
            changed = self.wake.changed() => match changed {
                Ok(()) => Woken::Commit,
                // The store is closing: no more wake-ups, only the safety net.
                Err(_) => {
                    if pause(shutdown, self.idle).await {
                        Woken::Shutdown
                    } else {
                        Woken::Idle
                    }
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    Woken::Shutdown
                } else {
                    Woken::Commit
                }
            }
            _ = tokio::time::sleep(self.idle) => Woken::Idle,
        }
    }
}

/// What ended a wait.
enum Woken {
    /// A commit (or a change of the shutdown signal that is no stop): read again.
    Commit,
    /// The idle time passed without one.
    Idle,
    Shutdown,
}
