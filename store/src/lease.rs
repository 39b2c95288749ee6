//! Leases (invariant 12): a duty that must run once per deployment (the outbox relay, the
//! sweeper) runs in whichever process holds its lease. On Postgres a lease is a session
//! advisory lock held on a connection of its own: when the holder dies or loses its connection,
//! Postgres releases the lock and another process takes the duty over at its next try. A shared
//! lease lets many processes in together while keeping out one that wants it whole (`jono
//! serve` without NATS runs alone).

use sqlx::{Connection, PgConnection};

use crate::error::StoreError;
use crate::log::{Backend, EventStore};

/// A lease held by this process, with the connection that holds it. Dropping it (or losing the
/// connection) gives it up.
pub struct Lease {
    connection: PgConnection,
}

impl EventStore {
    /// Takes the lease `name` if no process holds it: `None` when another one does. Only
    /// Postgres has leases: the embedded store serves one process, which needs none. Advisory
    /// locks are the database's, so the name is taken within the schema the log is in: two
    /// deployments in two schemas of one database have leases of their own.
    pub async fn try_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        self.try_lock(
            name,
            "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || '/' || $1, 0))",
        )
        .await
    }

    /// Takes a share of the lease `name`, which any number of processes may hold together, but
    /// not while one holds it whole ([`EventStore::try_lease`]) — nor it while they do.
    pub async fn try_lease_shared(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        self.try_lock(
            name,
            "SELECT pg_try_advisory_lock_shared(hashtextextended(current_schema() || '/' || $1, 0))",
        )
        .await
    }

    async fn try_lock(&self, name: &str, sql: &str) -> Result<Option<Lease>, StoreError> {
        let Backend::Postgres(pool) = self.backend() else {
            return Err(StoreError::Unavailable(
                "leases need Postgres; the embedded store serves one process".into(),
            ));
        };
        let mut connection = pool.acquire().await?.detach();
        let taken: bool = sqlx::query_scalar(sql)
            .bind(name)
            .fetch_one(&mut connection)
            .await?;
        if taken {
            Ok(Some(Lease { connection }))
        } else {
            let _ = connection.close().await;
            Ok(None)
        }
    }
}

impl Lease {
    /// Saves the holder's checkpoint `name` through the lease's own connection, so that a holder
    /// that lost its lease (its connection) cannot move the checkpoint and learns it here.
    pub async fn set_checkpoint(&mut self, name: &str, position: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )
        .bind(name)
        .bind(position)
        .execute(&mut self.connection)
        .await?;
        Ok(())
    }

    /// Whether the lease's connection still answers (and so the lease is still held).
    pub async fn held(&mut self) -> bool {
        self.connection.ping().await.is_ok()
    }
}
