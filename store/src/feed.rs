//! The global feed (invariant 3): every event in commit order, as projectors and WebSocket
//! subscribers read it. A reader keeps the last position it handled and asks for what follows;
//! positions may skip numbers but never appear out of order.

use tokio::sync::watch;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::event::StoredEvent;
use crate::log::{Backend, EventStore};
use crate::{postgres, sqlite};

impl EventStore {
    /// Up to `limit` events after `position`, in position order, their personal fields opened.
    /// On Postgres, only events below every transaction still in flight, so a later call can
    /// never reveal an earlier position. This process's fresh commits come from its tail
    /// ([`crate::tail`]), opened already unless their subject was erased since.
    pub async fn read_after(
        &self,
        position: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_after_skipping(position, limit, &[]).await
    }

    /// As [`EventStore::read_after`], the events of the `skipped` types without their payload
    /// (`Null`), for a reader that passes over them: neither read from the log, nor parsed,
    /// nor opened, nor copied from the tail. They still come, in their places, so that the
    /// reader's position and its count of a batch are those of `read_after`.
    pub async fn read_after_skipping(
        &self,
        position: i64,
        limit: usize,
        skipped: &[&str],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_reaching(position, limit, skipped, Reach::File)
            .await
    }

    /// As [`EventStore::read_after_skipping`], up to what this process has heard of: for a
    /// reader woken by [`EventStore::subscribe`] ([`crate::follow::Follower`]). Its own
    /// commits come from the tail, and the database is asked only for what may lie past the
    /// tail: another process's commits, once this process heard of them (each raises the
    /// watch, which wakes the reader). A follower woken by every commit asked the database
    /// once or twice per commit for nothing (on Postgres, about eight round trips per append).
    pub(crate) async fn read_heard_of(
        &self,
        position: i64,
        limit: usize,
        skipped: &[&str],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_reaching(position, limit, skipped, Reach::HeardOf)
            .await
    }

    async fn read_reaching(
        &self,
        position: i64,
        limit: usize,
        skipped: &[&str],
        reach: Reach,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // The readable head as this process last heard of it, read before the tail: its own
        // commits are in the tail before they raise it, and another process's raise it (through
        // NOTIFY on Postgres, the file's watcher on SQLite).
        let known = match reach {
            Reach::File => i64::MAX,
            Reach::HeardOf => *self.shared().head.borrow(),
        };
        let (kept, end) = match self.shared().tail.lock() {
            Ok(mut tail) => (tail.after(position, limit, skipped), tail.end()),
            Err(_) => (None, None),
        };
        let (kept, rest) = match kept {
            // The rest, if the run ended before the limit (and, for a follower, this process
            // heard of a later event): another process's commits may follow.
            Some(kept) if kept.len() < limit => {
                let last = kept.last().map_or(position, |event| event.position);
                let rest = if last < known {
                    Some(self.read_sealed(last, limit - kept.len(), skipped).await?)
                } else {
                    None
                };
                (kept, rest)
            }
            Some(kept) => (kept, None),
            // A follower at the run's end, with nothing later heard of: nothing to read.
            None if end == Some(position) && position >= known => (Vec::new(), None),
            None => (
                Vec::new(),
                Some(self.read_sealed(position, limit, skipped).await?),
            ),
        };
        if let Reach::HeardOf = reach {
            self.metrics().record_follower_read(rest.is_none());
        }
        let rest = rest.unwrap_or_default();
        // Another process's erasures, for what the tail gives later.
        if !rest.is_empty() {
            if let Ok(mut tail) = self.shared().tail.lock() {
                tail.note_erasures(&rest);
            }
        }
        // Only what is still sealed looks for keys: the file's events, and the tail's of an
        // erased subject.
        let mut events = kept;
        events.extend(rest);
        self.opened(events).await
    }

    /// As [`EventStore::read_after`], with personal fields as the log holds them: sealed
    /// (see [`crate::seal`]). For copies of the log that must not open them (an export).
    pub async fn read_after_sealed(
        &self,
        position: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_sealed(position, limit, &[]).await
    }

    async fn read_sealed(
        &self,
        position: i64,
        limit: usize,
        skipped: &[&str],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match self.backend() {
            Backend::Sqlite(_, readers) => {
                sqlite::read_after(readers, position, limit, skipped).await
            }
            Backend::Postgres(pool) => postgres::read_after(pool, position, limit, skipped).await,
        }
    }

    /// The events at `positions` (those that exist), in position order: for a reader that
    /// learned the positions from a read model and wants the events themselves.
    pub async fn read_positions(&self, positions: &[i64]) -> Result<Vec<StoredEvent>, StoreError> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let events = match self.backend() {
            Backend::Sqlite(_, readers) => sqlite::read_positions(readers, positions).await,
            Backend::Postgres(pool) => postgres::read_positions(pool, positions).await,
        }?;
        self.opened(events).await
    }

    /// The highest position `read_after` can return now (0 for an empty log).
    pub async fn head(&self) -> Result<i64, StoreError> {
        match self.backend() {
            Backend::Sqlite(_, readers) => sqlite::head(readers).await,
            Backend::Postgres(pool) => postgres::head(pool).await,
        }
    }

    /// The position of the last event committed now, in this process or another (0 for an empty
    /// log): what a read that begins now must see. On Postgres this may lie above [`head`]
    /// while an earlier position's transaction is still in flight; a reader that waits for it
    /// waits for that transaction too.
    ///
    /// [`head`]: EventStore::head
    pub async fn last_committed(&self) -> Result<i64, StoreError> {
        match self.backend() {
            Backend::Sqlite(_, readers) => sqlite::head(readers).await,
            Backend::Postgres(pool) => postgres::last_committed(pool).await,
        }
    }

    /// The position of the last event of one stream (0 if it has none): the newest change a
    /// reader of what that stream decides (an organization's members and roles) must see.
    pub async fn stream_last_position(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<i64, StoreError> {
        // The stream's unique (type, id, sequence) index: its last row, not a scan of the stream.
        let last: Option<(i64,)> = dialect::fetch_optional(
            self.backend(),
            "SELECT position FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
             ORDER BY sequence DESC LIMIT 1",
            params![aggregate_type, aggregate_id],
        )
        .await?;
        Ok(last.map_or(0, |(position,)| position))
    }

    /// A watch of the readable head: it changes after events commit, in this process or (on
    /// Postgres, through LISTEN/NOTIFY) in another. A wake-up is a hint to call `read_after`.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.shared().head.subscribe()
    }
}

/// How far a read of the feed looks.
#[derive(Clone, Copy)]
enum Reach {
    /// Everything the database holds now.
    File,
    /// What this process has heard of (see [`EventStore::read_heard_of`]).
    HeardOf,
}
