//! The gateway's clock-driven work, on one ticker: customers who stopped showing signs of life
//! leave their queue (API.md, Limits: `CustomerLeftQueue` with `reason: "timeout"`), queues
//! with opening hours are opened and closed on schedule, and customers' personal data is
//! erased once its organization's `retention_days` have passed since the conversation ended
//! (a bounded batch a tick, [`RETENTION_BATCH`], through `erasure::erase_conversation`).
//!
//! The sweeper knows who waits and which queues have a schedule by folding the durable feed
//! itself ([`Watch`]), not from the read models: it works with the projectors behind or absent,
//! and a restart rebuilds it from the log. What the log cannot say — when a customer was last
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

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::queue::{LeaveReason, Queue, QueueCommand, QueueEvent};
use domain::schedule::OpeningHours;
use domain::Event;
use store::command::{CommandContext, CommandError};
use store::follow::{pause, Follower};
use tokio::sync::watch;
use uuid::Uuid;

use crate::process_manager;
use crate::state::AppState;

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

/// When each customer was last heard from: any request made with its token; and which
/// customers have a WebSocket open (API.md's own sign of life: a customer with an open socket
/// never times out).
#[derive(Debug, Default)]
pub struct CustomerActivity {
    seen: Mutex<HashMap<Uuid, DateTime<Utc>>>,
    sockets: Mutex<HashMap<Uuid, usize>>,
    /// What changed since the shared tables were last written (`crate::nodes`).
    changed: Mutex<Changed>,
}

#[derive(Debug, Default)]
struct Changed {
    seen: HashSet<Uuid>,
    sockets: HashSet<Uuid>,
}

/// What changed of a process's customer activity, to be written to the shared tables.
#[derive(Debug, Default)]
pub struct Changes {
    /// Customers' open sockets on this process now.
    pub sockets: Vec<(Uuid, i32)>,
    /// Customers' last signs of life.
    pub seen: Vec<(Uuid, DateTime<Utc>)>,
}

/// The signs of life the time-out looks at: who has a socket open, and when each was last
/// heard from. This process's ([`CustomerActivity::signs`]), merged on Postgres with every
/// node's.
#[derive(Debug, Clone, Default)]
pub struct Signs {
    pub connected: HashSet<Uuid>,
    pub seen: HashMap<Uuid, DateTime<Utc>>,
}

impl Signs {
    /// Both sets of signs: connected in either, the later sign of the two.
    pub fn merge(mut self, other: store::cluster::CustomerSigns) -> Self {
        self.connected.extend(other.connected);
        for (id, at) in other.seen {
            let last = self.seen.entry(id).or_insert(at);
            *last = (*last).max(at);
        }
        self
    }
}

impl CustomerActivity {
    /// The customer of `conversation_id` showed a sign of life now.
    pub fn saw(&self, conversation_id: Uuid) {
        self.saw_at(conversation_id, Utc::now());
    }

    pub fn saw_at(&self, conversation_id: Uuid, at: DateTime<Utc>) {
        if let Ok(mut seen) = self.seen.lock() {
            let last = seen.entry(conversation_id).or_insert(at);
            *last = (*last).max(at);
        }
        if let Ok(mut changed) = self.changed.lock() {
            changed.seen.insert(conversation_id);
        }
    }

    pub fn last_seen(&self, conversation_id: Uuid) -> Option<DateTime<Utc>> {
        self.seen
            .lock()
            .ok()
            .and_then(|seen| seen.get(&conversation_id).copied())
    }

    /// The customer of `conversation_id` opened a WebSocket.
    pub fn socket_opened(&self, conversation_id: Uuid) {
        if let Ok(mut sockets) = self.sockets.lock() {
            *sockets.entry(conversation_id).or_default() += 1;
        }
        if let Ok(mut changed) = self.changed.lock() {
            changed.sockets.insert(conversation_id);
        }
        self.saw(conversation_id);
    }

    /// One of its WebSockets closed: the time-out counts from now.
    pub fn socket_closed(&self, conversation_id: Uuid) {
        if let Ok(mut sockets) = self.sockets.lock() {
            if let Some(open) = sockets.get_mut(&conversation_id) {
                *open = open.saturating_sub(1);
                if *open == 0 {
                    sockets.remove(&conversation_id);
                }
            }
        }
        if let Ok(mut changed) = self.changed.lock() {
            changed.sockets.insert(conversation_id);
        }
        self.saw(conversation_id);
    }

    /// This process's signs, as the time-out reads them.
    pub fn signs(&self) -> Signs {
        Signs {
            connected: self
                .sockets
                .lock()
                .map(|sockets| sockets.keys().copied().collect())
                .unwrap_or_default(),
            seen: self
                .seen
                .lock()
                .map(|seen| seen.clone())
                .unwrap_or_default(),
        }
    }

    /// The customers whose open sockets changed since the last call, with their count now; and
    /// those heard from since, with when (for the shared tables).
    pub fn drain_changes(&self) -> Changes {
        // Taken and let go before the other locks (`forget_before` takes them the other way).
        let changed = match self.changed.lock() {
            Ok(mut changed) => std::mem::take(&mut *changed),
            Err(_) => return Changes::default(),
        };
        let sockets = self
            .sockets
            .lock()
            .map(|sockets| {
                changed
                    .sockets
                    .iter()
                    .map(|id| {
                        let open = sockets.get(id).copied().unwrap_or(0);
                        (*id, i32::try_from(open).unwrap_or(i32::MAX))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let seen = self
            .seen
            .lock()
            .map(|seen| {
                changed
                    .seen
                    .iter()
                    .filter_map(|id| seen.get(id).map(|at| (*id, *at)))
                    .collect()
            })
            .unwrap_or_default();
        Changes { sockets, seen }
    }

    /// These changes were not written: they are to be written again.
    pub fn unwritten(&self, changes: &Changes) {
        if let Ok(mut changed) = self.changed.lock() {
            changed
                .sockets
                .extend(changes.sockets.iter().map(|(id, _)| *id));
            changed.seen.extend(changes.seen.iter().map(|(id, _)| *id));
        }
    }

    /// Forgets signs older than `cutoff`: they can no longer keep anyone waiting.
    /// So are changes nobody will write (with the embedded store nobody does): a change
    /// outlives the sign it came with, which is written long before it is forgotten.
    fn forget_before(&self, cutoff: DateTime<Utc>) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        seen.retain(|_, at| *at >= cutoff);
        let open: HashSet<Uuid> = self
            .sockets
            .lock()
            .map(|sockets| sockets.keys().copied().collect())
            .unwrap_or_default();
        if let Ok(mut changed) = self.changed.lock() {
            changed.seen.retain(|id| seen.contains_key(id));
            changed
                .sockets
                .retain(|id| seen.contains_key(id) || open.contains(id));
        }
    }
}

/// This process's customer activity. A process-wide value rather than a field of `AppState`
/// because it is marked from authentication, which every route shares; the keys are
/// conversation ids, unique across stores, so servers in one test process cannot mix them up.
static ACTIVITY: LazyLock<CustomerActivity> = LazyLock::new(CustomerActivity::default);

pub fn activity() -> &'static CustomerActivity {
    &ACTIVITY
}

/// Marks a sign of life of the customer of `conversation_id` (called from authentication).
pub fn saw_customer(conversation_id: Uuid) {
    ACTIVITY.saw(conversation_id);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waiter {
    queue_id: Uuid,
    /// When this wait began: the join, or the transfer into the queue.
    since: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
struct Schedule {
    hours: OpeningHours,
    /// What the schedule said when the sweeper last acted on it (or when the queue was last
    /// opened or closed); `None` when the schedule is new and should take effect at once.
    said: Option<bool>,
}

/// What the sweeper knows from the log: who waits where since when, and each queue's schedule.
/// A pure fold, so its rules are tested without a store or a clock.
#[derive(Debug, Default)]
pub struct Watch {
    waiting: HashMap<Uuid, Waiter>,
    schedules: HashMap<Uuid, Schedule>,
}

/// What the schedule asks of one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledChange {
    pub queue_id: Uuid,
    pub open: bool,
}

impl Watch {
    /// Applies one event of a queue's stream, recorded at `at`.
    pub fn apply(&mut self, at: DateTime<Utc>, event: &QueueEvent) {
        match event {
            QueueEvent::CustomerJoinedQueue {
                queue_id,
                conversation_id,
                ..
            }
            | QueueEvent::ConversationTransferred {
                queue_id,
                conversation_id,
                ..
            } => {
                self.waiting.insert(
                    *conversation_id,
                    Waiter {
                        queue_id: *queue_id,
                        since: at,
                    },
                );
            }
            QueueEvent::CustomerLeftQueue {
                queue_id,
                conversation_id,
                ..
            }
            | QueueEvent::CustomerPicked {
                queue_id,
                conversation_id,
                ..
            } => {
                if self
                    .waiting
                    .get(conversation_id)
                    .is_some_and(|w| w.queue_id == *queue_id)
                {
                    self.waiting.remove(conversation_id);
                }
            }
            QueueEvent::QueueSettingsChanged {
                queue_id, settings, ..
            } => match &settings.opening_hours {
                None => {
                    self.schedules.remove(queue_id);
                }
                Some(hours) => {
                    let unchanged = self
                        .schedules
                        .get(queue_id)
                        .is_some_and(|s| s.hours == *hours);
                    if !unchanged {
                        self.schedules.insert(
                            *queue_id,
                            Schedule {
                                hours: hours.clone(),
                                said: None,
                            },
                        );
                    }
                }
            },
            QueueEvent::QueueOpened { queue_id, .. } | QueueEvent::QueueClosed { queue_id, .. } => {
                if let Some(schedule) = self.schedules.get_mut(queue_id) {
                    schedule.said = Some(schedule.hours.is_open_at(at));
                }
            }
            QueueEvent::QueueCreated { .. }
            | QueueEvent::QueueHandlerAdded { .. }
            | QueueEvent::QueueHandlerRemoved { .. }
            | QueueEvent::CustomerOffered { .. }
            | QueueEvent::OfferAccepted { .. }
            | QueueEvent::OfferDeclined { .. }
            | QueueEvent::OfferExpired { .. }
            | QueueEvent::MessageLeft { .. } => {}
        }
    }

    /// The queues whose schedule changed its mind since it was last acted on, with what it says
    /// now. Each is taken as done; [`Watch::retry`] puts one back if its command failed.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<ScheduledChange> {
        let mut due = Vec::new();
        for (queue_id, schedule) in &mut self.schedules {
            let open = schedule.hours.is_open_at(now);
            if schedule.said != Some(open) {
                schedule.said = Some(open);
                due.push(ScheduledChange {
                    queue_id: *queue_id,
                    open,
                });
            }
        }
        due.sort_by_key(|change| change.queue_id);
        due
    }

    /// The schedule of `queue_id` is to be acted on again on the next tick.
    pub fn retry(&mut self, queue_id: Uuid) {
        if let Some(schedule) = self.schedules.get_mut(&queue_id) {
            schedule.said = None;
        }
    }

    /// Who waits now.
    pub fn waiting(&self) -> Vec<Uuid> {
        self.waiting.keys().copied().collect()
    }

    /// The waiting customers `(queue_id, conversation_id)` last heard from `timeout` or more
    /// before `now`. The last sign of life is the latest of: the wait's start, `floor` (when
    /// this process began watching) and the customer's own signs; one with a socket open is
    /// never timed out.
    pub fn timed_out(
        &self,
        now: DateTime<Utc>,
        timeout: Duration,
        floor: DateTime<Utc>,
        signs: &Signs,
    ) -> Vec<(Uuid, Uuid)> {
        let Ok(timeout) = chrono::Duration::from_std(timeout) else {
            return Vec::new();
        };
        let mut out: Vec<(Uuid, Uuid)> = self
            .waiting
            .iter()
            .filter(|(conversation_id, waiter)| {
                if signs.connected.contains(*conversation_id) {
                    return false;
                }
                let mut last = waiter.since.max(floor);
                if let Some(seen) = signs.seen.get(*conversation_id) {
                    last = last.max(*seen);
                }
                now - last >= timeout
            })
            .map(|(conversation_id, waiter)| (waiter.queue_id, *conversation_id))
            .collect();
        out.sort();
        out
    }

    /// The customer no longer waits as far as the sweeper is concerned (until the log says
    /// otherwise).
    fn forget(&mut self, conversation_id: Uuid) {
        self.waiting.remove(&conversation_id);
    }
}

/// The lease of the one sweeping node of a Postgres deployment.
const LEASE: &str = "jono-sweeper";
/// How often a node without the lease tries to take it.
const LEASE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Sweeps until `shutdown` changes: with the embedded store at once, on Postgres while this node
/// holds the lease (trying to take it meanwhile).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
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
/// schedules, times out the silent customers.
async fn sweep(
    state: &AppState,
    config: &SweeperConfig,
    mut lease: Option<store::lease::Lease>,
    shutdown: &mut watch::Receiver<bool>,
) {
    let started = Utc::now();
    let mut watch = Watch::default();
    let mut feed = Follower::new("sweeper", &state.store, 0).batch(BATCH);
    let mut pruned: Option<std::time::Instant> = None;
    let mut ticker = tokio::time::interval(config.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        if let Some(lease) = &mut lease {
            if !lease.held().await {
                tracing::warn!("the sweeper's lease was lost");
                return;
            }
        }
        if let Err(error) = catch_up(&mut feed, &mut watch).await {
            tracing::warn!(%error, "sweeper cannot read the feed; trying again next tick");
            continue;
        }
        tick(state, &mut watch, config, started).await;
        retention(state, Utc::now()).await;
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            let pruning = async {
                crate::secrets::prune_responses(state.backend(), Utc::now().timestamp())
                    .await
                    .map_err(|error| error.to_string())?;
                if let Some(cluster) = state.store.cluster() {
                    cluster
                        .forget_stale(config.customer_timeout.max(PRUNE_EVERY))
                        .await
                        .map_err(|error| error.to_string())?;
                }
                Ok::<(), String>(())
            };
            match pruning.await {
                Ok(()) => pruned = Some(std::time::Instant::now()),
                Err(error) => tracing::warn!(%error, "cannot prune the kept answers; trying again"),
            }
        }
    }
}

/// Kept answers past their 24 hours are forgotten this often (they answer no key meanwhile).
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

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

async fn tick(state: &AppState, watch: &mut Watch, config: &SweeperConfig, started: DateTime<Utc>) {
    let now = Utc::now();
    for change in watch.due(now) {
        let command = if change.open {
            QueueCommand::OpenQueue { by: None }
        } else {
            QueueCommand::CloseQueue { by: None }
        };
        if let Err(error) = execute(state, change.queue_id, command).await {
            tracing::warn!(queue_id = %change.queue_id, %error, "scheduled opening or closing failed; retrying");
            watch.retry(change.queue_id);
        }
    }
    let activity = activity();
    if let Ok(timeout) = chrono::Duration::from_std(config.customer_timeout) {
        activity.forget_before(now - timeout);
    }
    let mut signs = activity.signs();
    if let Some(cluster) = state.store.cluster() {
        // Every node's signs, or no time-out this tick: a customer is not dropped for what
        // this node cannot see.
        match cluster.customer_signs(&watch.waiting()).await {
            Ok(shared) => signs = signs.merge(shared),
            Err(error) => {
                tracing::warn!(%error, "cannot read the nodes' signs of life; no time-outs this tick");
                return;
            }
        }
    }
    for (queue_id, conversation_id) in
        watch.timed_out(now, config.customer_timeout, started, &signs)
    {
        let leave = QueueCommand::LeaveQueue {
            conversation_id,
            reason: LeaveReason::Timeout,
            by: None,
        };
        match execute(state, queue_id, leave).await {
            Ok(()) => {
                tracing::info!(%queue_id, %conversation_id, "a silent customer timed out of the queue");
                watch.forget(conversation_id);
            }
            Err(error) => {
                tracing::warn!(%queue_id, %conversation_id, %error, "timing a customer out failed; retrying");
            }
        }
    }
}

/// At most this many conversations are erased for retention in one tick (the rest wait for
/// the next ones), so a long-kept history set to a short retention never stalls the sweeper.
pub const RETENTION_BATCH: i64 = 50;

/// When a conversation that ended before this, in an organization keeping personal data
/// `days` days, is due for erasure.
pub fn retention_cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(days))
}

/// Erases, for each organization with a retention, the customer conversations that ended
/// more than its `retention_days` before `now` and are not erased yet — at most
/// [`RETENTION_BATCH`] in all. They are found in the read models (a lagging one only delays an
/// erasure to a later tick); each erasure is decided by its conversation.
async fn retention(state: &AppState, now: DateTime<Utc>) {
    let organizations = match projections::directory::read::retentions(state.backend()).await {
        Ok(organizations) => organizations,
        Err(error) => {
            tracing::warn!(%error, "cannot read the organizations' retention; trying again next tick");
            return;
        }
    };
    let ctx = CommandContext {
        actor: Some(serde_json::json!({ "kind": "sweeper" })),
        idempotency: None,
    };
    let mut left = RETENTION_BATCH;
    for (organization_id, days) in organizations {
        if left <= 0 {
            return;
        }
        let cutoff = retention_cutoff(now, days);
        let due = match projections::conversations::read::past_retention(
            state.backend(),
            organization_id,
            cutoff,
            left,
        )
        .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%organization_id, %error, "cannot find what the retention erases; trying again next tick");
                continue;
            }
        };
        for conversation_id in due {
            left -= 1;
            match crate::erasure::erase_conversation(
                state,
                organization_id,
                conversation_id,
                domain::values::Author::system(),
                domain::conversation::ErasureReason::Retention,
                &ctx,
            )
            .await
            {
                Ok(_) => {
                    tracing::info!(%organization_id, %conversation_id, "erased past the organization's retention");
                }
                Err(error) => {
                    tracing::warn!(%organization_id, %conversation_id, %error, "erasing past the retention failed; trying again next tick");
                }
            }
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
    use chrono::TimeZone;
    use domain::queue::QueueSettings;
    use domain::schedule::{RawOpeningHours, RawPeriod};
    use domain::values::Name;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        // Wednesday 2026-11-25.
        Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap()
    }

    fn nine_to_five_utc() -> OpeningHours {
        let weekly = ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|day| RawPeriod {
                day: (*day).into(),
                open: "09:00".into(),
                close: "17:00".into(),
            })
            .collect();
        OpeningHours::parse(RawOpeningHours {
            timezone: "UTC".into(),
            weekly,
        })
        .unwrap()
    }

    fn joined(queue_id: Uuid, conversation_id: Uuid) -> QueueEvent {
        QueueEvent::CustomerJoinedQueue {
            queue_id,
            organization_id: Uuid::nil(),
            conversation_id,
            queue_position: 1,
            welcome_message: None,
            metadata: Default::default(),
            customer: None,
        }
    }

    fn with_hours(queue_id: Uuid, hours: Option<OpeningHours>) -> QueueEvent {
        let mut settings = QueueSettings::named(Name::parse("Support").unwrap());
        settings.opening_hours = hours;
        QueueEvent::QueueSettingsChanged {
            queue_id,
            organization_id: Uuid::nil(),
            settings,
            by: None,
        }
    }

    fn opened(queue_id: Uuid) -> QueueEvent {
        QueueEvent::QueueOpened {
            queue_id,
            organization_id: Uuid::nil(),
            by: None,
        }
    }

    fn closed(queue_id: Uuid) -> QueueEvent {
        QueueEvent::QueueClosed {
            queue_id,
            organization_id: Uuid::nil(),
            by: None,
        }
    }

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn a_silent_customer_times_out_five_minutes_after_joining() {
        let (queue, customer) = (Uuid::new_v4(), Uuid::new_v4());
        let mut watch = Watch::default();
        watch.apply(at(10, 0), &joined(queue, customer));
        let activity = CustomerActivity::default();
        let floor = at(0, 0);
        assert!(watch
            .timed_out(at(10, 4), FIVE_MINUTES, floor, &activity.signs())
            .is_empty());
        assert_eq!(
            watch.timed_out(at(10, 5), FIVE_MINUTES, floor, &activity.signs()),
            vec![(queue, customer)]
        );
    }

    #[test]
    fn a_sign_of_life_keeps_a_customer_waiting() {
        let (queue, customer) = (Uuid::new_v4(), Uuid::new_v4());
        let mut watch = Watch::default();
        watch.apply(at(10, 0), &joined(queue, customer));
        let activity = CustomerActivity::default();
        activity.saw_at(customer, at(10, 4));
        let floor = at(0, 0);
        assert!(watch
            .timed_out(at(10, 8), FIVE_MINUTES, floor, &activity.signs())
            .is_empty());
        assert_eq!(
            watch.timed_out(at(10, 9), FIVE_MINUTES, floor, &activity.signs()),
            vec![(queue, customer)]
        );
        // An older sign does not move the last one back.
        activity.saw_at(customer, at(10, 1));
        assert_eq!(activity.last_seen(customer), Some(at(10, 4)));
    }

    #[test]
    fn an_open_socket_keeps_a_customer_waiting() {
        let (queue, customer) = (Uuid::new_v4(), Uuid::new_v4());
        let mut watch = Watch::default();
        // The socket's signs are marked with the real clock: closing it counts as one.
        let joined_at = Utc::now();
        watch.apply(joined_at, &joined(queue, customer));
        let activity = CustomerActivity::default();
        activity.socket_opened(customer);
        let much_later = joined_at + chrono::Duration::hours(1);
        assert!(watch
            .timed_out(much_later, FIVE_MINUTES, joined_at, &activity.signs())
            .is_empty());
        activity.socket_closed(customer);
        let closed_at = activity.last_seen(customer).unwrap();
        let after = closed_at + chrono::Duration::minutes(5);
        assert!(watch
            .timed_out(
                after - chrono::Duration::seconds(1),
                FIVE_MINUTES,
                joined_at,
                &activity.signs()
            )
            .is_empty());
        assert_eq!(
            watch
                .timed_out(after, FIVE_MINUTES, joined_at, &activity.signs())
                .len(),
            1
        );
    }

    #[test]
    fn after_a_restart_everyone_gets_a_fresh_time_out() {
        let (queue, customer) = (Uuid::new_v4(), Uuid::new_v4());
        let mut watch = Watch::default();
        watch.apply(at(9, 0), &joined(queue, customer));
        let restarted = at(10, 0);
        let activity = CustomerActivity::default();
        assert!(watch
            .timed_out(at(10, 4), FIVE_MINUTES, restarted, &activity.signs())
            .is_empty());
        assert_eq!(
            watch
                .timed_out(at(10, 5), FIVE_MINUTES, restarted, &activity.signs())
                .len(),
            1
        );
    }

    #[test]
    fn picked_left_and_transferred_customers_are_not_timed_out_here() {
        let (queue, other_queue) = (Uuid::new_v4(), Uuid::new_v4());
        let (picked, left, moved) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut watch = Watch::default();
        for customer in [picked, left, moved] {
            watch.apply(at(10, 0), &joined(queue, customer));
        }
        let org = Uuid::nil();
        watch.apply(
            at(10, 1),
            &QueueEvent::CustomerPicked {
                queue_id: queue,
                organization_id: org,
                conversation_id: picked,
                agent_id: Uuid::new_v4(),
                agent_name: "Ann".into(),
            },
        );
        watch.apply(
            at(10, 1),
            &QueueEvent::CustomerLeftQueue {
                queue_id: queue,
                organization_id: org,
                conversation_id: left,
                reason: LeaveReason::Abandoned,
                to_queue_id: None,
                by: None,
                transfer_id: None,
            },
        );
        watch.apply(
            at(10, 2),
            &QueueEvent::CustomerLeftQueue {
                queue_id: queue,
                organization_id: org,
                conversation_id: moved,
                reason: LeaveReason::Transferred,
                to_queue_id: Some(other_queue),
                by: None,
                transfer_id: None,
            },
        );
        watch.apply(
            at(10, 2),
            &QueueEvent::ConversationTransferred {
                transfer_id: Uuid::new_v4(),
                queue_id: other_queue,
                organization_id: org,
                conversation_id: moved,
                from_queue_id: queue,
                from_agent_id: None,
                queue_position: 1,
                by: None,
            },
        );
        let activity = CustomerActivity::default();
        // The transferred customer waits again, from the transfer.
        assert!(watch
            .timed_out(at(10, 6), FIVE_MINUTES, at(0, 0), &activity.signs())
            .is_empty());
        assert_eq!(
            watch.timed_out(at(10, 7), FIVE_MINUTES, at(0, 0), &activity.signs()),
            vec![(other_queue, moved)]
        );
    }

    #[test]
    fn a_new_schedule_takes_effect_at_once() {
        let queue = Uuid::new_v4();
        let mut watch = Watch::default();
        watch.apply(at(10, 0), &with_hours(queue, Some(nine_to_five_utc())));
        assert_eq!(
            watch.due(at(10, 0)),
            vec![ScheduledChange {
                queue_id: queue,
                open: true
            }]
        );
        assert!(watch.due(at(10, 1)).is_empty(), "acted on once");
    }

    #[test]
    fn the_schedule_acts_on_its_changes_and_not_against_a_manual_close() {
        let queue = Uuid::new_v4();
        let mut watch = Watch::default();
        watch.apply(at(8, 0), &with_hours(queue, Some(nine_to_five_utc())));
        assert_eq!(
            watch.due(at(8, 0)),
            vec![ScheduledChange {
                queue_id: queue,
                open: false
            }]
        );
        assert!(watch.due(at(8, 59)).is_empty());
        assert_eq!(
            watch.due(at(9, 0)),
            vec![ScheduledChange {
                queue_id: queue,
                open: true
            }]
        );
        watch.apply(at(9, 0), &opened(queue));
        // An operator closes during opening hours: the schedule leaves it closed…
        watch.apply(at(12, 0), &closed(queue));
        assert!(watch.due(at(12, 1)).is_empty());
        assert!(watch.due(at(16, 59)).is_empty());
        // …and closes it (already closed, a no-op) at five.
        assert_eq!(
            watch.due(at(17, 0)),
            vec![ScheduledChange {
                queue_id: queue,
                open: false
            }]
        );
        // An operator opens after hours: left open until the next change.
        watch.apply(at(18, 0), &opened(queue));
        assert!(watch.due(at(23, 0)).is_empty());
    }

    #[test]
    fn a_change_missed_while_no_sweeper_ran_is_made_up() {
        // Opened by the schedule at nine; the sweeper was down across five o'clock.
        let queue = Uuid::new_v4();
        let mut watch = Watch::default();
        watch.apply(at(8, 0), &with_hours(queue, Some(nine_to_five_utc())));
        watch.apply(at(9, 0), &opened(queue));
        assert_eq!(
            watch.due(at(18, 0)),
            vec![ScheduledChange {
                queue_id: queue,
                open: false
            }]
        );
    }

    #[test]
    fn a_cleared_schedule_stops_acting_and_a_failed_change_is_retried() {
        let queue = Uuid::new_v4();
        let mut watch = Watch::default();
        watch.apply(at(10, 0), &with_hours(queue, Some(nine_to_five_utc())));
        assert_eq!(watch.due(at(10, 0)).len(), 1);
        watch.retry(queue);
        assert_eq!(watch.due(at(10, 0)).len(), 1);
        // Another setting changes; the schedule does not start over.
        watch.apply(at(10, 1), &with_hours(queue, Some(nine_to_five_utc())));
        assert!(watch.due(at(10, 2)).is_empty());
        watch.apply(at(10, 3), &with_hours(queue, None));
        assert!(watch.due(at(18, 0)).is_empty());
    }

    #[test]
    fn the_retention_erases_what_ended_its_days_before_now() {
        let now = at(12, 0);
        assert_eq!(
            retention_cutoff(now, 30),
            Utc.with_ymd_and_hms(2026, 10, 26, 12, 0, 0).unwrap()
        );
        assert_eq!(
            retention_cutoff(now, 1),
            Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
        );
    }

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
