//! What the sweeper knows of customers that the log cannot say: when each was last heard
//! from, and which have a WebSocket open (API.md's own sign of life). Kept in this process's
//! memory, marked by authentication and by the sockets, and shared with the other nodes of a
//! Postgres deployment through `crate::nodes`.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// When each customer was last heard from: any request made with its token; and which
/// customers have a WebSocket open (API.md's own sign of life: a customer with an open socket
/// never times out).
#[derive(Debug, Default)]
pub struct CustomerActivity {
    seen: Mutex<HashMap<Uuid, DateTime<Utc>>>,
    sockets: Mutex<HashMap<Uuid, usize>>,
    /// What changed since the shared tables were last written (`crate::nodes`).
    changed: Mutex<Changed>,
}

#[derive(Debug, Default)]
struct Changed {
    seen: HashSet<Uuid>,
    sockets: HashSet<Uuid>,
}

/// What changed of a process's customer activity, to be written to the shared tables.
#[derive(Debug, Default)]
pub struct Changes {
    /// Customers' open sockets on this process now.
    pub sockets: Vec<(Uuid, i32)>,
    /// Customers' last signs of life.
    pub seen: Vec<(Uuid, DateTime<Utc>)>,
}

/// The signs of life the time-out looks at: who has a socket open, and when each was last
/// heard from. This process's ([`CustomerActivity::signs`]), merged on Postgres with every
/// node's.
#[derive(Debug, Clone, Default)]
pub struct Signs {
    pub connected: HashSet<Uuid>,
    pub seen: HashMap<Uuid, DateTime<Utc>>,
}

impl Signs {
    /// Both sets of signs: connected in either, the later sign of the two.
    pub fn merge(mut self, other: store::cluster::CustomerSigns) -> Self {
        self.connected.extend(other.connected);
        for (id, at) in other.seen {
            let last = self.seen.entry(id).or_insert(at);
            *last = (*last).max(at);
        }
        self
    }
}

impl CustomerActivity {
    /// The customer of `conversation_id` showed a sign of life now.
    pub fn saw(&self, conversation_id: Uuid) {
        self.saw_at(conversation_id, Utc::now());
    }

    pub fn saw_at(&self, conversation_id: Uuid, at: DateTime<Utc>) {
        if let Ok(mut seen) = self.seen.lock() {
            let last = seen.entry(conversation_id).or_insert(at);
            *last = (*last).max(at);
        }
        if let Ok(mut changed) = self.changed.lock() {
            changed.seen.insert(conversation_id);
        }
    }

    pub fn last_seen(&self, conversation_id: Uuid) -> Option<DateTime<Utc>> {
        self.seen
            .lock()
            .ok()
            .and_then(|seen| seen.get(&conversation_id).copied())
    }

    /// The customer of `conversation_id` opened a WebSocket.
    pub fn socket_opened(&self, conversation_id: Uuid) {
        if let Ok(mut sockets) = self.sockets.lock() {
            *sockets.entry(conversation_id).or_default() += 1;
        }
        if let Ok(mut changed) = self.changed.lock() {
            changed.sockets.insert(conversation_id);
        }
        self.saw(conversation_id);
    }

    /// One of its WebSockets closed: the time-out counts from now.
    pub fn socket_closed(&self, conversation_id: Uuid) {
        if let Ok(mut sockets) = self.sockets.lock() {
            if let Some(open) = sockets.get_mut(&conversation_id) {
                *open = open.saturating_sub(1);
                if *open == 0 {
                    sockets.remove(&conversation_id);
                }
            }
        }
        if let Ok(mut changed) = self.changed.lock() {
            changed.sockets.insert(conversation_id);
        }
        self.saw(conversation_id);
    }

    /// This process's signs, as the time-out reads them.
    pub fn signs(&self) -> Signs {
        Signs {
            connected: self
                .sockets
                .lock()
                .map(|sockets| sockets.keys().copied().collect())
                .unwrap_or_default(),
            seen: self
                .seen
                .lock()
                .map(|seen| seen.clone())
                .unwrap_or_default(),
        }
    }

    /// The customers whose open sockets changed since the last call, with their count now; and
    /// those heard from since, with when (for the shared tables).
    pub fn drain_changes(&self) -> Changes {
        // Taken and let go before the other locks (`forget_before` takes them the other way).
        let changed = match self.changed.lock() {
            Ok(mut changed) => std::mem::take(&mut *changed),
            Err(_) => return Changes::default(),
        };
        let sockets = self
            .sockets
            .lock()
            .map(|sockets| {
                changed
                    .sockets
                    .iter()
                    .map(|id| {
                        let open = sockets.get(id).copied().unwrap_or(0);
                        (*id, i32::try_from(open).unwrap_or(i32::MAX))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let seen = self
            .seen
            .lock()
            .map(|seen| {
                changed
                    .seen
                    .iter()
                    .filter_map(|id| seen.get(id).map(|at| (*id, *at)))
                    .collect()
            })
            .unwrap_or_default();
        Changes { sockets, seen }
    }

    /// These changes were not written: they are to be written again.
    pub fn unwritten(&self, changes: &Changes) {
        if let Ok(mut changed) = self.changed.lock() {
            changed
                .sockets
                .extend(changes.sockets.iter().map(|(id, _)| *id));
            changed.seen.extend(changes.seen.iter().map(|(id, _)| *id));
        }
    }

    /// Forgets signs older than `cutoff`: they can no longer keep anyone waiting.
    /// So are changes nobody will write (with the embedded store nobody does): a change
    /// outlives the sign it came with, which is written long before it is forgotten.
    pub(super) fn forget_before(&self, cutoff: DateTime<Utc>) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        seen.retain(|_, at| *at >= cutoff);
        let open: HashSet<Uuid> = self
            .sockets
            .lock()
            .map(|sockets| sockets.keys().copied().collect())
            .unwrap_or_default();
        if let Ok(mut changed) = self.changed.lock() {
            changed.seen.retain(|id| seen.contains_key(id));
            changed
                .sockets
                .retain(|id| seen.contains_key(id) || open.contains(id));
        }
    }
}

/// This process's customer activity. A process-wide value rather than a field of `AppState`
/// because it is marked from authentication, which every route shares; the keys are
/// conversation ids, unique across stores, so servers in one test process cannot mix them up.
static ACTIVITY: LazyLock<CustomerActivity> = LazyLock::new(CustomerActivity::default);

pub fn activity() -> &'static CustomerActivity {
    &ACTIVITY
}

/// Marks a sign of life of the customer of `conversation_id` (called from authentication).
pub fn saw_customer(conversation_id: Uuid) {
    ACTIVITY.saw(conversation_id);
}
