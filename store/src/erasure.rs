//! Erasure by crypto-shredding, the log's side: opening sealed fields on every read, and
//! destroying a data subject's key (see [`crate::seal`] for the format and the guarantees).

use std::collections::HashMap;

use crate::error::StoreError;
use crate::event::StoredEvent;
use crate::log::{Backend, EventStore};
use crate::seal::{self, SubjectKey};
use crate::{postgres, sqlite};

/// What one erasure did to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Erased {
    /// Events written before sealing existed whose personal fields were rewritten.
    pub rewritten: usize,
    /// Snapshots of the subject's conversation dropped.
    pub snapshots: usize,
}

impl EventStore {
    /// `events` with their sealed fields opened: with their subject's key, or as erased.
    pub(crate) async fn opened(
        &self,
        mut events: Vec<StoredEvent>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let subjects = seal::subjects_to_open(
            events
                .iter()
                .map(|e| (e.aggregate_type.as_str(), &e.payload)),
        );
        if subjects.is_empty() {
            return Ok(events);
        }
        let keys = self.subject_keys(&subjects).await?;
        for event in &mut events {
            seal::open_with(&keys, &mut event.payload);
        }
        Ok(events)
    }

    /// The live keys of `subjects` (an erased subject has none).
    pub async fn subject_keys(
        &self,
        subjects: &[String],
    ) -> Result<HashMap<String, SubjectKey>, StoreError> {
        if subjects.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = match self.backend() {
            Backend::Sqlite(_, readers) => sqlite::subject_keys(readers, subjects).await?,
            Backend::Postgres(pool) => postgres::subject_keys(pool, subjects).await?,
        };
        Ok(rows
            .into_iter()
            .filter_map(|(subject, key)| SubjectKey::from_slice(&key).map(|key| (subject, key)))
            .collect())
    }

    /// Erases a data subject (a customer's conversation): destroys its key, so every sealed
    /// field of its events reads as erased from now on, in every process; rewrites the personal
    /// fields of its events written before sealing existed; drops its conversation's
    /// snapshots. Idempotent. Read models, kept answers and files are the callers' to clear;
    /// [`EventStore::compact_after_erasure`] then leaves no old page of the files behind.
    pub async fn erase_subject(&self, subject: &str) -> Result<Erased, StoreError> {
        let erased = match self.backend() {
            Backend::Sqlite(pool, _) => sqlite::erase_subject(pool, subject).await?,
            Backend::Postgres(pool) => postgres::erase_subject(pool, subject).await?,
        };
        if let Ok(mut kept) = self.shared().keys.lock() {
            kept.forget(subject);
        }
        if let Ok(mut tail) = self.shared().tail.lock() {
            tail.erase(subject.to_owned());
        }
        Ok(erased)
    }

    /// After erasures, makes the files hold no copy of what was erased: on SQLite (whose
    /// connections run with `secure_delete`, so freed cells and pages are zeroed) the
    /// write-ahead logs of the log's and the read models' files are checkpointed and truncated;
    /// on Postgres the log's tables are vacuumed (the read models' tables by autovacuum, and
    /// Postgres's own write-ahead log keeps old pages until it recycles its segments: a
    /// documented limit).
    /// `erased` is what the erasure did: the log's events table is vacuumed only when some of
    /// its rows were rewritten (a sealed event is never touched: its key is what went).
    pub async fn compact_after_erasure(&self, erased: Erased) -> Result<(), StoreError> {
        match (self.backend(), self.read_model_backend()) {
            (Backend::Sqlite(log, _), Backend::Sqlite(read_models, _)) => {
                sqlite::truncate_wal(read_models).await?;
                sqlite::truncate_wal(log).await
            }
            (Backend::Postgres(pool), _) => postgres::vacuum_log(pool, erased.rewritten > 0).await,
            (Backend::Sqlite(log, _), Backend::Postgres(_)) => sqlite::truncate_wal(log).await,
        }
    }
}
