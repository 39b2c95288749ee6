//! Jono's read side.
//!
//! - [`runtime`]: the `Projection` trait and the projector runtime — checkpoints written with
//!   the rows (invariant 4), catch-up, following commits, failure states, online rebuild.
//! - [`runs`]: a batch's runs of messages, which projections write as sets on Postgres.
//! - [`database`]: the read models' database — one SQL string for both backends (bound with
//!   `store::dialect`'s `Param`), the transaction projections write through, and the reads.
//! - Read models, one module each: [`directory`] (accounts, organizations, memberships,
//!   invitations), [`queues`] (queue state and the waiting line), [`conversations`] (status,
//!   agent, metadata, tags; inboxes), [`messages`] (messages, notes, attachments), [`activity`]
//!   (the activity feed, and its list of types the WebSocket's `activity` topic shares),
//!   [`canned`] (canned responses), [`audit`] (who changed what in an organization),
//!   [`search`]. Each keeps its tables and its `apply` in `mod.rs` and, where the HTTP layer
//!   asks it questions, their SELECTs in `read.rs`, beside the tables they read (plain
//!   serializable structs; [`QueryError`] when a question fails).
//! - [`stats`]: queue statistics folded from the log alone (API.md, Statistics), a queue as it
//!   stood at an instant, and the `stats` read model (one row per wait, handle and rating) the
//!   HTTP statistics are read from (`stats/rows.rs` keeps it, `stats/samples.rs` reads it back).

pub mod activity;
pub mod audit;
pub mod canned;
pub mod conversations;
pub mod database;
pub mod directory;
pub mod messages;
pub mod queues;
mod reading;
pub mod runs;
pub mod runtime;
pub mod search;
pub mod stats;

use std::sync::Arc;

pub use reading::{QueryError, MAX_PAGE};
pub use runtime::{Projection, ProjectorState, Projectors, Statuses};

/// Every read model the gateway serves from, in the order they are started.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(directory::Directory),
        Arc::new(queues::Queues),
        Arc::new(conversations::Conversations),
        Arc::new(messages::Messages),
        Arc::new(activity::Activity),
        Arc::new(canned::Canned),
        Arc::new(search::Search),
        Arc::new(stats::StatsRows),
        Arc::new(audit::Audit),
    ]
}
