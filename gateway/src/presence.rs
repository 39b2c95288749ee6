//! Presence: who of the agents is online (has an open WebSocket in this process) and what they
//! said of themselves (`PUT /v1/me/status`: online or away). It is ephemeral by nature, never
//! in the log.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

#[derive(Debug, Default)]
pub struct Presence {
    inner: Mutex<HashMap<Uuid, Entry>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    sockets: usize,
    away: bool,
}

impl Presence {
    /// `(online, status)` as `GET /v1/orgs/{org}/members` shows them: `status` is `offline`
    /// without an open socket, else `away` if the agent said so, else `online`.
    pub fn of(&self, agent_id: Uuid) -> (bool, &'static str) {
        let entry = self
            .inner
            .lock()
            .map(|map| map.get(&agent_id).copied().unwrap_or_default())
            .unwrap_or_default();
        match (entry.sockets > 0, entry.away) {
            (false, _) => (false, "offline"),
            (true, true) => (true, "away"),
            (true, false) => (true, "online"),
        }
    }

    pub fn set_away(&self, agent_id: Uuid, away: bool) {
        if let Ok(mut map) = self.inner.lock() {
            map.entry(agent_id).or_default().away = away;
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
        assert_eq!(presence.of(agent), (false, "offline"));
    }
}
