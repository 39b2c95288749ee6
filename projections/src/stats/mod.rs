//! Queue statistics for analysts, from the log alone (API.md, Statistics), and a queue as it
//! stood at an instant. `jono stats` folds the log ([`stats_from_log`]); `GET
//! /v1/queues/{queue}/stats` reads the same samples from the `stats` read model
//! ([`stats_from_rows`]); both make the figures with the same [`compute`], so they agree.
//!
//! - [`fold`]: `StatsFold`, decoded events in, samples out (waits, handles, ratings, each queue's
//!   openings and closings). Pure.
//! - [`figures`]: `compute` and `compute_buckets`, samples and a window in, API.md's figures out;
//!   the choices API.md leaves open are written down there. Pure.
//! - [`log`]: `stats_from_log` and `queue_at`, which read the store, and `stats_from_rows`.
//! - [`rows`]: the `stats` projection — one row per wait, handle and rating, the fold's samples
//!   kept as a read model.
//! - [`samples`]: `samples_from_rows`, those rows read back as the fold's samples.

pub mod figures;
pub mod fold;
pub mod log;
pub mod rows;
pub mod samples;

#[cfg(test)]
mod tests;

use uuid::Uuid;

pub use figures::{
    compute, compute_buckets, nearest_rank, AgentFigures, Bucket, By, Figures, Percentiles,
    QueueStats, RatingFigures, TargetFigures,
};
pub use fold::{
    Handle, HandleOutcome, Rating, Response, ResponseEnd, Samples, StatsFold, Targets, Wait,
    WaitOutcome,
};
pub use log::{
    queue_at, stats_from_log, stats_from_rows, QueueSnapshot, Report, StatsError, WaitingCustomer,
};
pub use rows::StatsRows;
pub use samples::samples_from_rows;

/// Whose figures: one queue's, or every queue's of one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Queue(Uuid),
    Organization(Uuid),
}
