//! What the `jono serve` nodes of one Postgres deployment share outside the log (invariant 12),
//! so that no node's memory decides what a user sees or a limit counts:
//!
//! - each node's open WebSockets — agents' (presence) and waiting customers' (the time-out) —
//!   counted per node under the node's heartbeat. A node that stops beating (killed, cut off)
//!   has its sockets expire after [`NODE_EXPIRY`]: they no longer count as open, and the
//!   node's last beat counts as its customers' last sign of life;
//! - the status agents declared (`PUT /v1/me/status`) and when;
//! - customers' last signs of life (any request with their token), written by each node;
//! - rate-limit token buckets, taken atomically in one statement, whatever node asks.
//!
//! None of it is an event: it is ephemeral state, forgotten when stale. The embedded store
//! serves one process, which keeps all of this in memory instead (so these are Postgres only).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::error::StoreError;
use crate::log::{Backend, EventStore};

/// A node that has not beaten for this long is gone: its sockets no longer count as open.
pub const NODE_EXPIRY: Duration = Duration::from_secs(10);

/// The tables, created with the log's (`postgres::open`).
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS live_nodes (
    node_id UUID PRIMARY KEY,
    seen_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS live_sockets (
    node_id    UUID NOT NULL,
    kind       TEXT NOT NULL,
    subject_id UUID NOT NULL,
    sockets    INTEGER NOT NULL,
    PRIMARY KEY (node_id, kind, subject_id)
);
CREATE INDEX IF NOT EXISTS live_sockets_subject ON live_sockets (kind, subject_id);
CREATE TABLE IF NOT EXISTS agent_status (
    agent_id    UUID PRIMARY KEY,
    away        BOOLEAN NOT NULL,
    declared_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_seen (
    conversation_id UUID PRIMARY KEY,
    seen_at         TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_buckets (
    name       TEXT NOT NULL,
    bucket_key TEXT NOT NULL,
    tokens     DOUBLE PRECISION NOT NULL,
    allowed    BOOLEAN NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, bucket_key)
);
"#;

/// Which sockets a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// An agent's, by agent id (presence).
    Agent,
    /// A customer's, by conversation id (the time-out).
    Customer,
}

impl SocketKind {
    fn as_str(self) -> &'static str {
        match self {
            SocketKind::Agent => "agent",
            SocketKind::Customer => "customer",
        }
    }
}

/// An agent's presence as every node sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentPresence {
    /// A live node has a socket of the agent open.
    pub connected: bool,
    /// The agent's last declaration said away.
    pub away: bool,
    /// The agent declared a status within the `declared_for` asked about.
    pub declared: bool,
}

/// Waiting customers' signs of life as every node sees them.
#[derive(Debug, Clone, Default)]
pub struct CustomerSigns {
    /// A live node has a socket of theirs open.
    pub connected: HashSet<Uuid>,
    /// Their last sign: a request, a socket closing, or the last beat of a gone node that had
    /// their socket open.
    pub seen: HashMap<Uuid, DateTime<Utc>>,
}

/// The tables the nodes of a Postgres deployment share. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    pool: PgPool,
}

impl EventStore {
    /// The shared tables, on Postgres; `None` for the embedded store, whose one process keeps
    /// this state in memory.
    pub fn cluster(&self) -> Option<Cluster> {
        match self.backend() {
            Backend::Postgres(pool) => Some(Cluster { pool: pool.clone() }),
            Backend::Sqlite(..) => None,
        }
    }
}

fn expiry_seconds() -> f64 {
    NODE_EXPIRY.as_secs_f64()
}

impl Cluster {
    /// The node's heartbeat: its sockets count as open for [`NODE_EXPIRY`] from now.
    pub async fn beat(&self, node_id: Uuid) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO live_nodes (node_id, seen_at) VALUES ($1, now()) \
             ON CONFLICT (node_id) DO UPDATE SET seen_at = now()",
        )
        .bind(node_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many sockets of each subject the node now has open (0: none, the row goes).
    pub async fn set_sockets(
        &self,
        node_id: Uuid,
        kind: SocketKind,
        counts: &[(Uuid, i32)],
    ) -> Result<(), StoreError> {
        let (open, closed): (Vec<_>, Vec<_>) = counts.iter().partition(|(_, count)| *count > 0);
        let open_ids: Vec<Uuid> = open.iter().map(|(id, _)| *id).collect();
        let open_counts: Vec<i32> = open.iter().map(|(_, count)| *count).collect();
        let closed_ids: Vec<Uuid> = closed.iter().map(|(id, _)| *id).collect();
        let mut tx = self.pool.begin().await?;
        if !open_ids.is_empty() {
            sqlx::query(
                "INSERT INTO live_sockets (node_id, kind, subject_id, sockets) \
                 SELECT $1, $2, id, n FROM unnest($3::uuid[], $4::int[]) AS t(id, n) \
                 ON CONFLICT (node_id, kind, subject_id) DO UPDATE SET sockets = excluded.sockets",
            )
            .bind(node_id)
            .bind(kind.as_str())
            .bind(&open_ids)
            .bind(&open_counts)
            .execute(&mut *tx)
            .await?;
        }
        if !closed_ids.is_empty() {
            sqlx::query(
                "DELETE FROM live_sockets WHERE node_id = $1 AND kind = $2 AND subject_id = ANY($3)",
            )
            .bind(node_id)
            .bind(kind.as_str())
            .bind(&closed_ids)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The node stops: its sockets and its heartbeat go at once, rather than expiring.
    pub async fn leave(&self, node_id: Uuid) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM live_sockets WHERE node_id = $1")
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM live_nodes WHERE node_id = $1")
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The agent declared itself away (or online) now.
    pub async fn declare(&self, agent_id: Uuid, away: bool) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agent_status (agent_id, away, declared_at) VALUES ($1, $2, now()) \
             ON CONFLICT (agent_id) DO UPDATE SET away = excluded.away, declared_at = now()",
        )
        .bind(agent_id)
        .bind(away)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The presence of each of `agents`, a declaration counting for `declared_for`.
    pub async fn presence(
        &self,
        agents: &[Uuid],
        declared_for: Duration,
    ) -> Result<HashMap<Uuid, AgentPresence>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.id, \
               EXISTS (SELECT 1 FROM live_sockets s JOIN live_nodes n USING (node_id) \
                       WHERE s.kind = 'agent' AND s.subject_id = a.id \
                         AND n.seen_at > now() - make_interval(secs => $2)) AS connected, \
               COALESCE(st.away, false) AS away, \
               COALESCE(st.declared_at > now() - make_interval(secs => $3), false) AS declared \
             FROM unnest($1::uuid[]) AS a(id) LEFT JOIN agent_status st ON st.agent_id = a.id",
        )
        .bind(agents)
        .bind(expiry_seconds())
        .bind(declared_for.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            out.insert(
                row.try_get("id")?,
                AgentPresence {
                    connected: row.try_get("connected")?,
                    away: row.try_get("away")?,
                    declared: row.try_get("declared")?,
                },
            );
        }
        Ok(out)
    }

    /// Customers' signs of life seen by this node (a later one of another node stays).
    pub async fn saw_customers(&self, seen: &[(Uuid, DateTime<Utc>)]) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = seen.iter().map(|(id, _)| *id).collect();
        let times: Vec<DateTime<Utc>> = seen.iter().map(|(_, at)| *at).collect();
        sqlx::query(
            "INSERT INTO customer_seen (conversation_id, seen_at) \
             SELECT id, at FROM unnest($1::uuid[], $2::timestamptz[]) AS t(id, at) \
             ON CONFLICT (conversation_id) \
             DO UPDATE SET seen_at = GREATEST(customer_seen.seen_at, excluded.seen_at)",
        )
        .bind(&ids)
        .bind(&times)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What every node knows of the customers of `conversations`.
    pub async fn customer_signs(
        &self,
        conversations: &[Uuid],
    ) -> Result<CustomerSigns, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id, \
               EXISTS (SELECT 1 FROM live_sockets s JOIN live_nodes n USING (node_id) \
                       WHERE s.kind = 'customer' AND s.subject_id = c.id \
                         AND n.seen_at > now() - make_interval(secs => $2)) AS connected, \
               GREATEST( \
                 (SELECT seen_at FROM customer_seen WHERE conversation_id = c.id), \
                 (SELECT max(n.seen_at) FROM live_sockets s JOIN live_nodes n USING (node_id) \
                   WHERE s.kind = 'customer' AND s.subject_id = c.id)) AS seen \
             FROM unnest($1::uuid[]) AS c(id)",
        )
        .bind(conversations)
        .bind(expiry_seconds())
        .fetch_all(&self.pool)
        .await?;
        let mut signs = CustomerSigns::default();
        for row in rows {
            let id: Uuid = row.try_get("id")?;
            if row.try_get::<bool, _>("connected")? {
                signs.connected.insert(id);
            }
            if let Some(seen) = row.try_get::<Option<DateTime<Utc>>, _>("seen")? {
                signs.seen.insert(id, seen);
            }
        }
        Ok(signs)
    }

    /// Takes one token of the bucket `(name, key)` (`burst` tokens, refilled at `per_second`),
    /// atomically whichever node asks: `Ok(Err(seconds))` when it is empty, with when to retry.
    pub async fn take(
        &self,
        name: &str,
        key: &str,
        per_second: f64,
        burst: f64,
    ) -> Result<Result<(), u64>, StoreError> {
        // Every expression of the update reads the row as it was: `allowed` and `tokens` are
        // decided from the same refill, under the row's lock.
        let row = sqlx::query(
            "INSERT INTO rate_buckets AS b (name, bucket_key, tokens, allowed, at) \
             VALUES ($1, $2, $4 - 1, true, now()) \
             ON CONFLICT (name, bucket_key) DO UPDATE SET \
               tokens = LEAST($4, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM now() - b.at)::float8) * $3) \
                      - CASE WHEN LEAST($4, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM now() - b.at)::float8) * $3) >= 1 \
                             THEN 1 ELSE 0 END, \
               allowed = LEAST($4, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM now() - b.at)::float8) * $3) >= 1, \
               at = GREATEST(b.at, now()) \
             RETURNING allowed, tokens",
        )
        .bind(name)
        .bind(key)
        .bind(per_second)
        .bind(burst)
        .fetch_one(&self.pool)
        .await?;
        let allowed: bool = row.try_get("allowed")?;
        let tokens: f64 = row.try_get("tokens")?;
        if allowed {
            Ok(Ok(()))
        } else {
            let wait = (1.0 - tokens) / per_second;
            Ok(Err(wait.ceil().max(1.0) as u64))
        }
    }

    /// Forgets what can no longer matter: nodes gone for an hour and their sockets, customers'
    /// signs older than `signs_for`, buckets idle for a day (full again by then).
    pub async fn forget_stale(&self, signs_for: Duration) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM live_sockets WHERE node_id IN \
             (SELECT node_id FROM live_nodes WHERE seen_at < now() - interval '1 hour')",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM live_nodes WHERE seen_at < now() - interval '1 hour'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM customer_seen WHERE seen_at < now() - make_interval(secs => $1)")
            .bind(signs_for.as_secs_f64())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM rate_buckets WHERE at < now() - interval '1 day'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
