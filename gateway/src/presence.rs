//! Presence: who of the agents is online and what they said of themselves (`PUT
//! /v1/me/status`: online or away). An agent is present while it has a WebSocket open on any
//! node, and for a while after it declared its status over HTTP (a declaration is itself a
//! sign of life, so a client without a socket is shown as it said). It is ephemeral by
//! nature, never in the log.
//!
//! [`Presence`] counts this process's sockets. With the embedded store that is the whole
//! truth; on Postgres each node writes its counts to the shared tables under its heartbeat
//! (`crate::nodes`, `store::cluster`), declarations go there too, and [`statuses`] reads every
//! node's, so an agent on node B is online to callers of node A, and offline once B is gone.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a status declared over HTTP keeps an agent without a socket present (as long as a
/// silent waiting customer keeps its place).
pub const DECLARED_FOR: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Presence {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Uuid, Entry>,
    /// Agents whose socket count changed since the last [`Presence::drain_changes`].
    changed: HashSet<Uuid>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    sockets: usize,
    away: bool,
    declared_at: Option<Instant>,
}

impl Presence {
    /// `(online, status)` as `GET /v1/orgs/{org}/members` shows them: `status` is `offline`
    /// for an agent not present, else `away` if the agent said so, else `online`.
    pub fn of(&self, agent_id: Uuid) -> (bool, &'static str) {
        self.at(agent_id, Instant::now())
    }

    fn at(&self, agent_id: Uuid, now: Instant) -> (bool, &'static str) {
        let entry = self
            .inner
            .lock()
            .map(|inner| inner.entries.get(&agent_id).copied().unwrap_or_default())
            .unwrap_or_default();
        let declared = entry
            .declared_at
            .is_some_and(|at| now.saturating_duration_since(at) < DECLARED_FOR);
        shown(entry.sockets > 0 || declared, entry.away)
    }

    /// The agent declared itself away (or back online) now.
    pub fn set_away(&self, agent_id: Uuid, away: bool) {
        self.declare_at(agent_id, away, Instant::now());
    }

    fn declare_at(&self, agent_id: Uuid, away: bool, at: Instant) {
        if let Ok(mut inner) = self.inner.lock() {
            let entry = inner.entries.entry(agent_id).or_default();
            entry.away = away;
            entry.declared_at = Some(at);
        }
    }

    /// A socket of `agent_id` opened.
    pub fn connected(&self, agent_id: Uuid) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.entries.entry(agent_id).or_default().sockets += 1;
            inner.changed.insert(agent_id);
        }
    }

    /// A socket of `agent_id` closed.
    pub fn disconnected(&self, agent_id: Uuid) {
        if let Ok(mut inner) = self.inner.lock() {
            if let Some(entry) = inner.entries.get_mut(&agent_id) {
                entry.sockets = entry.sockets.saturating_sub(1);
            }
            inner.changed.insert(agent_id);
        }
    }

    /// The agents whose socket count changed since the last call, with their count now (for
    /// the shared tables).
    pub fn drain_changes(&self) -> Vec<(Uuid, i32)> {
        let Ok(mut inner) = self.inner.lock() else {
            return Vec::new();
        };
        let changed = std::mem::take(&mut inner.changed);
        changed
            .into_iter()
            .map(|agent_id| {
                let sockets = inner
                    .entries
                    .get(&agent_id)
                    .map_or(0, |entry| entry.sockets);
                (agent_id, i32::try_from(sockets).unwrap_or(i32::MAX))
            })
            .collect()
    }

    /// These changes were not written: they are to be written again.
    pub fn unwritten(&self, agents: impl IntoIterator<Item = Uuid>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.changed.extend(agents);
        }
    }
}

/// `(online, status)` as shown: `offline` when not present, else `away` if the agent said so,
/// else `online`.
fn shown(present: bool, away: bool) -> (bool, &'static str) {
    match (present, away) {
        (false, _) => (false, "offline"),
        (true, true) => (true, "away"),
        (true, false) => (true, "online"),
    }
}

/// `(online, status)` of each of `agents` as every node sees them (API.md: members' `online`
/// and `status`). This process's own sockets count at once; other nodes' once they wrote them.
pub async fn statuses(
    state: &AppState,
    agents: &[Uuid],
) -> Result<HashMap<Uuid, (bool, &'static str)>, ApiError> {
    let Some(cluster) = state.store.cluster() else {
        return Ok(agents
            .iter()
            .map(|agent_id| (*agent_id, state.presence.of(*agent_id)))
            .collect());
    };
    let shared = cluster.presence(agents, DECLARED_FOR).await?;
    let Ok(inner) = state.presence.inner.lock() else {
        return Err(ApiError::Internal("the presence lock is poisoned".into()));
    };
    Ok(agents
        .iter()
        .map(|agent_id| {
            let seen = shared.get(agent_id).copied().unwrap_or_default();
            let here = inner
                .entries
                .get(agent_id)
                .is_some_and(|entry| entry.sockets > 0);
            // The declaration is the deployment's, wherever it was made.
            let present = seen.connected || seen.declared || here;
            (*agent_id, shown(present, seen.away))
        })
        .collect())
}

/// The agent declared itself away (or online): on every node.
pub async fn declare(state: &AppState, agent_id: Uuid, away: bool) -> Result<(), ApiError> {
    if let Some(cluster) = state.store.cluster() {
        cluster.declare(agent_id, away).await?;
    }
    state.presence.set_away(agent_id, away);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_follows_sockets_and_the_manual_away() {
        let presence = Presence::default();
        let agent = Uuid::new_v4();
        assert_eq!(presence.of(agent), (false, "offline"));
        presence.connected(agent);
        presence.connected(agent);
        assert_eq!(presence.of(agent), (true, "online"));
        presence.set_away(agent, true);
        assert_eq!(presence.of(agent), (true, "away"));
        presence.disconnected(agent);
        assert_eq!(presence.of(agent), (true, "away"));
        presence.disconnected(agent);
        // Declared a moment ago: still shown as it said.
        assert_eq!(presence.of(agent), (true, "away"));
    }

    #[test]
    fn a_status_declared_without_a_socket_shows_until_it_is_stale() {
        let presence = Presence::default();
        let agent = Uuid::new_v4();
        let then = Instant::now();
        presence.declare_at(agent, true, then);
        assert_eq!(presence.at(agent, then), (true, "away"));
        presence.declare_at(agent, false, then);
        assert_eq!(
            presence.at(agent, then + DECLARED_FOR / 2),
            (true, "online")
        );
        assert_eq!(presence.at(agent, then + DECLARED_FOR), (false, "offline"));
        // A socket keeps it present whatever the declaration's age.
        presence.connected(agent);
        assert_eq!(
            presence.at(agent, then + DECLARED_FOR * 2),
            (true, "online")
        );
    }
}
