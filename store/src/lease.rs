//! Leases (invariant 12): a duty that must run once per deployment (the outbox relay) runs in
//! whichever process holds its lease. On Postgres a lease is a session advisory lock held on a
//! connection of its own: when the holder dies or loses its connection, Postgres releases the
//! lock and another process takes the duty over at its next try.

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
    /// Postgres has leases: the embedded store serves one process, which needs none.
    pub async fn try_lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let Backend::Postgres(pool) = self.backend() else {
            return Err(StoreError::Unavailable(
                "leases need Postgres; the embedded store serves one process".into(),
            ));
        };
        let mut connection = pool.acquire().await?.detach();
        let taken: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
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
