//! Presence: who of the agents is online and what they said of themselves (`PUT
//! /v1/me/status`: online or away). An agent is present while it has a WebSocket open in this
//! process, and for a while after it declared its status over HTTP (a declaration is itself a
//! sign of life, so a client without a socket is shown as it said). It is ephemeral by
//! nature, never in the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// How long a status declared over HTTP keeps an agent without a socket present (as long as a
/// silent waiting customer keeps its place).
pub const DECLARED_FOR: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Presence {
    inner: Mutex<HashMap<Uuid, Entry>>,
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
            .map(|map| map.get(&agent_id).copied().unwrap_or_default())
            .unwrap_or_default();
        let declared = entry
            .declared_at
            .is_some_and(|at| now.saturating_duration_since(at) < DECLARED_FOR);
        match (entry.sockets > 0 || declared, entry.away) {
            (false, _) => (false, "offline"),
            (true, true) => (true, "away"),
            (true, false) => (true, "online"),
        }
    }

    /// The agent declared itself away (or back online) now.
    pub fn set_away(&self, agent_id: Uuid, away: bool) {
        self.declare_at(agent_id, away, Instant::now());
    }

    fn declare_at(&self, agent_id: Uuid, away: bool, at: Instant) {
        if let Ok(mut map) = self.inner.lock() {
            let entry = map.entry(agent_id).or_default();
            entry.away = away;
            entry.declared_at = Some(at);
        }
    }

    /// A socket of `agent_id` opened.
    pub fn connected(&self, agent_id: Uuid) {
        if let Ok(mut map) = self.inner.lock() {
            map.entry(agent_id).or_default().sockets += 1;
        }
    }

    /// A socket of `agent_id` closed.
    pub fn disconnected(&self, agent_id: Uuid) {
        if let Ok(mut map) = self.inner.lock() {
            if let Some(entry) = map.get_mut(&agent_id) {
                entry.sockets = entry.sockets.saturating_sub(1);
            }
        }
    }
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
