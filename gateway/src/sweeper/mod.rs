//! The gateway's clock-driven work, on one ticker: customers who stopped showing signs of life
//! leave their queue (API.md, Limits: `CustomerLeftQueue` with `reason: "timeout"`), queues
//! with opening hours are opened and closed on schedule, and customers' personal data is
//! erased once its organization's `retention_days` have passed since the conversation ended
//! (a bounded batch a tick, [`RETENTION_BATCH`], through `erasure::erase_conversation`).
//!
//! The sweeper knows who waits and which queues have a schedule by folding the durable feed
//! itself ([`Watch`]), not from the read models: it works with the projectors behind or absent.
//! The fold is kept beside the log every few seconds (`store::kept_fold`), and a start resumes
//! it from there rather than reading the whole log again. What the log cannot say — when a customer was last
//! heard from — is kept in memory ([`CustomerActivity`]), marked by every request authenticated
//! with a customer's token. After a restart nobody has been heard from, so every waiting
//! customer gets a fresh time-out from the sweeper's start rather than being swept at once.
//!
//! On Postgres, several `jono serve` nodes share one log: the sweeper runs in the one holding
//! the lease `jono-sweeper` (taken over within seconds when it dies), and it asks every node's
//! signs, not only its own: each node writes its customers' open sockets (under its heartbeat)
//! and last signs of life to the shared tables (`crate::nodes`, `store::cluster`). A customer
//! connected to node A is not timed out by node B; one whose socket closed (or whose node died)
//! times out from then.
//!
//! The schedule acts on *changes* of its own state, so a manual open or close in between is not
//! undone until the schedule's next opening or closing. A schedule that is set or changed takes
//! effect at once (the queue opens or closes to match it on the next tick); so does one whose
//! change happened while no sweeper ran (found by comparing the schedule at the queue's last
//! opening or closing with the schedule now).
//!
//! The rooms: `activity` (the signs of life, in memory), `watch` (the fold of the log),
//! `timeouts`, `schedules`, `retention` and `pruning` (one kind of work each, done once a tick
//! by [`run`]'s holder).

mod activity;
mod pruning;
mod retention;
mod schedules;
mod timeouts;
mod watch;

use std::time::Duration;

use chrono::Utc;
use cqrs_es::Aggregate;
use domain::queue::{Queue, QueueCommand};
use domain::Event;
use store::command::{CommandContext, CommandError};
use store::follow::{pause, Follower};
use store::kept_fold::KeptFold;
use uuid::Uuid;

use crate::process_manager;
use crate::state::AppState;

pub use activity::{activity, saw_customer, Changes, CustomerActivity, Signs};
pub use retention::{retention_cutoff, RETENTION_BATCH};
pub use watch::{ScheduledChange, Watch};

/// How long a waiting customer may go unheard before it leaves the queue (API.md: 5 minutes).
pub const DEFAULT_CUSTOMER_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the sweeper looks, at most.
pub const DEFAULT_TICK: Duration = Duration::from_secs(15);
/// Events read from the feed at a time.
const BATCH: usize = 1_000;

/// The sweeper's settings, from the environment: `JONO_CUSTOMER_TIMEOUT_SECONDS` (default 300)
/// and `JONO_SWEEP_SECONDS` (default 15, or a third of a shorter time-out, so tests with a
/// short time-out need not wait long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweeperConfig {
    pub customer_timeout: Duration,
    pub tick: Duration,
}

impl SweeperConfig {
    pub fn from_env() -> Self {
        let seconds = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|raw| raw.trim().parse::<u64>().ok())
                .filter(|seconds| *seconds > 0)
                .map(Duration::from_secs)
        };
        Self::with(
            seconds("JONO_CUSTOMER_TIMEOUT_SECONDS"),
            seconds("JONO_SWEEP_SECONDS"),
        )
    }

    fn with(timeout: Option<Duration>, tick: Option<Duration>) -> Self {
        let customer_timeout = timeout.unwrap_or(DEFAULT_CUSTOMER_TIMEOUT);
        let tick = tick
            .unwrap_or_else(|| (customer_timeout / 3).clamp(Duration::from_secs(1), DEFAULT_TICK));
        Self {
            customer_timeout,
            tick,
        }
    }
}

/// The lease of the one sweeping node of a Postgres deployment.
const LEASE: &str = "jono-sweeper";
/// How often a node without the lease tries to take it.
const LEASE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Sweeps until `shutdown` changes: with the embedded store at once, on Postgres while this node
/// holds the lease (trying to take it meanwhile).
pub async fn run(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let config = SweeperConfig::from_env();
    let holder = &state.metrics.sweeper_holder;
    if state.store.cluster().is_none() {
        holder.set(1);
        sweep(&state, &config, None, &mut shutdown).await;
        return;
    }
    loop {
        match state.store.try_lease(LEASE).await {
            Ok(Some(lease)) => {
                tracing::info!("this node runs the sweeper");
                holder.set(1);
                sweep(&state, &config, Some(lease), &mut shutdown).await;
                holder.set(0);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot try the sweeper's lease; retrying"),
        }
        // Signs too old to keep anyone waiting, forgotten here as well as by the holder.
        if let Ok(timeout) = chrono::Duration::from_std(config.customer_timeout) {
            activity().forget_before(Utc::now() - timeout);
        }
        if pause(&mut shutdown, LEASE_RETRY).await {
            return;
        }
    }
}

/// Ticks until `shutdown` changes or the lease is lost: catches up with the feed, applies the
/// schedules, times out the silent customers, erases what is past its retention, prunes.
async fn sweep(
    state: &AppState,
    config: &SweeperConfig,
    mut lease: Option<store::lease::Lease>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) {
    let started = Utc::now();
    // Resumed where this or another process last kept it: never the whole log again.
    let (mut kept, mut watch, position): (KeptFold, Watch, i64) =
        KeptFold::resume(&state.store, "sweeper", watch::FOLD_VERSION).await;
    let mut feed = Follower::new("sweeper", &state.store, position)
        .skip_payloads(&domain::conversation::TRAFFIC)
        .batch(BATCH);
    let mut pruned: Option<std::time::Instant> = None;
    let mut ticker = tokio::time::interval(config.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        if let Some(lease) = &mut lease {
            if !lease.held().await {
                tracing::warn!("the sweeper's lease was lost");
                // Another node holds it: what is kept is its to keep now.
                return;
            }
        }
        if let Err(error) = catch_up(&mut feed, &mut watch).await {
            tracing::warn!(%error, "sweeper cannot read the feed; trying again next tick");
            continue;
        }
        kept.keep(&state.store, &watch, feed.position()).await;
        let now = Utc::now();
        schedules::apply(state, &mut watch, now).await;
        timeouts::time_out(state, &mut watch, config, started, now).await;
        retention::erase_due(state, Utc::now()).await;
        if pruned.is_none_or(|at| at.elapsed() >= pruning::PRUNE_EVERY) {
            pruning::prune(state, config, &mut pruned).await;
        }
    }
    kept.keep_now(&state.store, &watch, feed.position()).await;
}

/// Folds what follows in `feed` into `watch`, up to the head.
async fn catch_up(feed: &mut Follower, watch: &mut Watch) -> Result<(), String> {
    loop {
        let batch = feed.read().await.map_err(|e| e.to_string())?;
        for stored in batch {
            if stored.aggregate_type != Queue::TYPE {
                continue;
            }
            match Event::decode(&stored.aggregate_type, stored.payload) {
                Ok(Event::Queue(event)) => watch.apply(stored.recorded_at, &event),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(position = stored.position, %error, "undecodable queue event")
                }
            }
        }
        if feed.caught_up() {
            return Ok(());
        }
    }
}

/// Runs a command of the sweeper's and its follow-ups (a time-out ends the conversation). A
/// refusal means the state moved on (the customer was picked meanwhile, the queue is already
/// open): settled. An error means the store is unavailable.
async fn execute(state: &AppState, queue_id: Uuid, command: QueueCommand) -> Result<(), String> {
    let ctx = CommandContext {
        actor: Some(serde_json::json!({ "kind": "sweeper" })),
        idempotency: None,
    };
    match state
        .commands
        .execute::<Queue>(&queue_id.to_string(), command, &(), &ctx)
        .await
    {
        Ok(executed) => process_manager::follow_through(&state.commands, &executed.events)
            .await
            .map(|_| ()),
        Err(CommandError::Rejected(refusal)) => {
            tracing::debug!(%queue_id, %refusal, "sweeper command settled");
            Ok(())
        }
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn the_tick_shortens_for_a_short_time_out() {
        assert_eq!(
            SweeperConfig::with(None, None),
            SweeperConfig {
                customer_timeout: FIVE_MINUTES,
                tick: DEFAULT_TICK
            }
        );
        let short = SweeperConfig::with(Some(Duration::from_secs(6)), None);
        assert_eq!(short.tick, Duration::from_secs(2));
        let tiny = SweeperConfig::with(Some(Duration::from_secs(1)), None);
        assert_eq!(tiny.tick, Duration::from_secs(1));
        let set = SweeperConfig::with(None, Some(Duration::from_secs(5)));
        assert_eq!(set.tick, Duration::from_secs(5));
    }
}
