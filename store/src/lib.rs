//! Jono's event log and command layer.
//!
//! - [`event`]: `NewEvent` (what a writer hands in) and `StoredEvent` (what the log gives back,
//!   with its global `position`).
//! - [`log`]: `EventStore`, opened on SQLite (`DATA_DIR/jono.db`) or Postgres; atomic appends
//!   with expected versions and idempotency keys through one group-commit writer per process
//!   (invariant 5); stream reads, idempotency records, checkpoints. Append-only triggers on both
//!   backends (invariant 1).
//! - [`feed`]: the global feed in commit order (`read_after`, `head`, `subscribe`) — a reader
//!   never skips an event (invariant 3).
//! - [`follow`]: `Follower`, the one way its readers follow the feed (from a position, in
//!   batches, woken by commits, with back-off and shutdown), and `pause`, the sleep that
//!   shutdown cuts short.
//! - [`command`]: `Commands::execute`, load → decide → append, retrying on conflicts so the
//!   loser of a race decides again on the new state (invariant 2), and idempotent under a key
//!   (invariant 9).
//!   A process keeps the aggregates its commands last left (`recent`), and the log keeps
//!   snapshots of them ([`snapshot`]), so a command folds only the events after either
//!   (invariant 10). Its files: `mod.rs` one stream's command, `load.rs` the cache and the
//!   snapshots, `across.rs` the commands on two or three streams at once.
//! - [`snapshot`]: aggregates' states after event V of their streams, beside the log, tagged
//!   with their fold version.
//! - [`seal`]: crypto-shredding — a customer's personal fields sealed under a key of its
//!   conversation (`subject_keys`, beside the log), opened on every read but the export's.
//! - [`erasure`]: opening on read, and erasing a subject: its key destroyed, its events from
//!   before sealing rewritten (the one exception to invariant 1, confined to their personal
//!   fields), its snapshots dropped, the files compacted.
//! - [`lease`]: leases for duties that run once per deployment (a Postgres advisory lock held
//!   on a connection of its own), and the holder's checkpoint written through it.
//! - [`cluster`]: what the nodes of a Postgres deployment share outside the log: their open
//!   sockets under heartbeats, declared statuses, customers' signs of life, rate-limit buckets.
//! - [`backup`]: consistent copies while Jono serves (`VACUUM INTO`; the schema for `pg_dump`).
//! - [`repository`]: cqrs-es's `PersistedEventRepository` for `EventStore`.
//! - [`metrics`]: writer counters in the Prometheus text format.
//! - [`gathered`]: lookups by key that concurrent requests ask, read in one statement.
//! - `log_statements`: the log's statements, written once for both backends; `sqlite`,
//!   `postgres`: what each backend must say its own way (the readable head, lists as one value,
//!   column types), its writer (`writer.rs`) and its erasure (`erasure.rs`).
//!
//! Beside the log, in its database, the tables of what must never enter it and of operational
//! state that is not an event, each behind typed functions (the gateway writes no SQL);
//! [`beside_log`] creates them all, and `dialect` runs a statement written once on either
//! backend:
//! - [`tokens`]: agents' sessions (with their devices) and customers' tokens, by hash;
//!   [`invitation_tokens`]: invitations' tokens, by hash; [`email_links`]: the tokens of
//!   emailed links (address confirmation, password reset), by hash.
//! - [`credentials`]: accounts' password hashes and the claims of accounts being created;
//!   [`second_factor`]: TOTP secrets, recovery codes, login challenges; [`sso_secrets`]:
//!   organizations' client secrets and sign-ins under way.
//! - [`server_keys`]: the keys the server made for itself; [`identity_secrets`]: queues' keys
//!   for returning customers' identities; [`visitors`]: the keyed hash of the address each
//!   customer joined from.
//! - [`kept_answers`]: answers kept under idempotency keys, and which conversation each is
//!   about.
//! - [`blob_table`]: attachments' bytes with Postgres; [`mail_outbox`]: mail waiting to go
//!   out; [`webhook_deliveries`]: the webhook worker's endpoints and deliveries owed.
//!
//! Why our own repository rather than sqlite-es / postgres-es: they do not hold our invariants.
//! Their `stream_all_events` has no global order (nothing a projector could checkpoint on);
//! sqlite-es opens its pool with `synchronous=NORMAL`, so an acknowledged commit can be lost on
//! power failure; postgres-es maps every unique violation to a retryable optimistic-lock
//! conflict, so a reused idempotency key would be retried instead of answered; and neither has an
//! idempotency key column. We keep their table shape (aggregate_type, aggregate_id, sequence,
//! event_type, event_version, payload, metadata as `actor`) plus a `position`, and implement
//! cqrs-es's `PersistedEventRepository` on it.

pub mod backup;
pub mod beside_log;
pub mod blob_table;
pub mod cluster;
pub mod command;
pub mod credentials;
pub mod dialect;
pub mod email_links;
pub mod erasure;
pub mod error;
pub mod event;
pub mod feed;
pub mod follow;
pub mod gathered;
pub mod identity_secrets;
pub mod invitation_tokens;
pub mod kept_answers;
pub mod kept_fold;
pub mod lease;
pub mod log;
mod log_statements;
pub mod mail_outbox;
pub mod metrics;
mod postgres;
mod recent;
pub mod repository;
pub mod seal;
pub mod second_factor;
pub mod server_keys;
pub mod snapshot;
mod sqlite;
pub mod sso_secrets;
mod tail;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod visitors;
pub mod webhook_deliveries;

pub use sqlite::readers::{self as sqlite_readers, Readers};
pub use sqlite::wal::WAL_SIZE_LIMIT;
pub use sqlite::READ_MODELS_FILE;

pub use command::{CommandContext, CommandError, Commands, Executed};
pub use error::{AppendError, StoreError};
pub use event::{NewEvent, StoredEvent};
pub use log::{AppendRequest, Backend, EventStore, IdempotencyRecord};
pub use metrics::StoreMetrics;
