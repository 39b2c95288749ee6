//! Webhooks (issue 17): the organization's events, delivered to the endpoints its operators
//! registered (`OrganizationEvent::WebhookEndpointAdded`), signed with the deployment's Ed25519
//! key (README, "Webhooks": the wire format, and how to verify it).
//!
//! One worker per deployment (on Postgres, the holder of the lease `jono-webhooks`; with the
//! embedded store, the one process) follows the log from its checkpoint, as the outbox relay
//! does. For each event it first notes what it must know in log order — endpoints added and
//! removed, conversations that are not customer conversations (whose messages are never
//! delivered) — then owes the event to each endpoint of its organization that asked for its
//! type (`store::webhook_deliveries::owe`, once per endpoint and position, so a repeat after a crash adds
//! nothing), and only then moves the checkpoint: nothing is lost across a restart, and a
//! delivery is at least once. Commands never wait on any of it: they only append to the log.
//!
//! Per endpoint, deliveries go in position order: only the first one owed is tried; a failed
//! one (any answer but 2xx, a time-out, a refused connection) is tried again after an
//! exponential back-off with jitter (from 1 s, at most [`MAX_DELAY`]), and once the next try
//! would fall past the horizon (`JONO_WEBHOOK_RETRY_HOURS`, 24 by default) counted from its
//! first attempt, it is parked. A parked or retrying delivery holds the later ones of its
//! endpoint until it is delivered (an operator's redelivery) or the endpoint is removed.
//! Endpoints are reached through `outbound` (public addresses only unless
//! `JONO_WEBHOOK_PRIVATE_NETWORKS`, the address connected to is the one checked, no redirects).
//!
//! The rooms: `owing` (what each event owes, in log order), `delivery` (one try, and what it
//! came to: delivered, retried, parked), `signing` (the deployment's key); here, the worker
//! that follows the log and keeps the tries in flight.

mod delivery;
mod owing;
mod signing;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt as _;
use store::follow::{pause, Follower};
use store::lease::Lease;
use store::webhook_deliveries as table;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::outbound;
use crate::state::AppState;
use delivery::{attempt, record, Attempt};
use owing::{owe_next, Owed};

pub use delivery::{backoff, body, FIRST_DELAY, MAX_DELAY, RESPONSE_CAP};
pub use signing::Signer;

/// The lease of the one delivering process of a Postgres deployment.
const LEASE: &str = "jono-webhooks";
/// The worker's place in the log: every event up to it is owed to its endpoints.
pub const CHECKPOINT: &str = "webhooks";
/// How long events that owed nothing may go without the worker saving its place.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Events read from the log at a time.
const BATCH: usize = 500;
/// How often a process without the lease tries to take it, and how often the holder looks
/// for deliveries that came due (or were redelivered by another node).
const TICK: Duration = Duration::from_secs(1);
/// At most this many deliveries in flight at once (to as many endpoints).
const IN_FLIGHT: usize = 32;
/// The setting that lets endpoints be on loopback and private networks.
pub const PRIVATE_NETWORKS: &str = "JONO_WEBHOOK_PRIVATE_NETWORKS";

/// The worker's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `JONO_WEBHOOK_RETRY_HOURS` (default 24; fractions allowed): how long a delivery is
    /// retried, from its first attempt, before it is parked.
    pub horizon: Duration,
    /// `JONO_WEBHOOK_TIMEOUT_SECONDS` (default 10): an endpoint slower than this failed.
    pub timeout: Duration,
    /// `JONO_WEBHOOK_PRIVATE_NETWORKS`.
    pub private_networks: bool,
}

/// The default request time-out.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default horizon, in hours.
pub const DEFAULT_HORIZON_HOURS: f64 = 24.0;

impl Config {
    pub fn from_env(private_networks: bool) -> Self {
        let number = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|raw| raw.trim().parse::<f64>().ok())
                .filter(|value| value.is_finite() && *value > 0.0)
        };
        let hours = number("JONO_WEBHOOK_RETRY_HOURS").unwrap_or(DEFAULT_HORIZON_HOURS);
        let timeout = number("JONO_WEBHOOK_TIMEOUT_SECONDS")
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_TIMEOUT);
        Self {
            horizon: Duration::from_secs_f64(hours * 3600.0),
            timeout,
            private_networks,
        }
    }
}

/// Delivers until `shutdown` changes: with the embedded store at once, on Postgres while this
/// process holds the lease (trying to take it meanwhile).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let config = Config::from_env(state.settings.webhook_private_networks);
    let holder = &state.metrics.webhooks_holder;
    if state.store.cluster().is_none() {
        holder.set(1);
        work(&state, &config, None, &mut shutdown).await;
        return;
    }
    loop {
        match state.store.try_lease(LEASE).await {
            Ok(Some(lease)) => {
                tracing::info!("this process delivers the webhooks");
                holder.set(1);
                work(&state, &config, Some(lease), &mut shutdown).await;
                holder.set(0);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot try the webhooks' lease; retrying"),
        }
        if pause(&mut shutdown, TICK).await {
            return;
        }
    }
}

/// Follows the log and delivers, until shutdown or the lease is lost.
async fn work(
    state: &AppState,
    config: &Config,
    lease: Option<Lease>,
    shutdown: &mut watch::Receiver<bool>,
) {
    let http = outbound::client(config.private_networks, config.timeout, PRIVATE_NETWORKS);
    let http = Arc::new(http);
    let Some(position) = checkpoint(state, shutdown).await else {
        return;
    };
    let mut worker = Worker {
        state,
        config,
        http,
        lease,
        feed: Follower::new("webhooks", &state.store, position)
            .batch(BATCH)
            .idle(TICK),
        flying: JoinSet::new(),
        busy: HashSet::new(),
        checked: Instant::now(),
        saved_at: Instant::now(),
        unsaved: false,
        owing: true,
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        if !worker.lease_held().await {
            return;
        }
        worker.record_finished().await;
        let Some(caught_up) = worker.owe().await else {
            return;
        };
        worker.try_due().await;
        if !caught_up {
            continue;
        }
        if worker.wait(shutdown).await {
            return;
        }
    }
}

/// The worker's place in the log, read again until it can be (`None`: shut down meanwhile).
async fn checkpoint(state: &AppState, shutdown: &mut watch::Receiver<bool>) -> Option<i64> {
    loop {
        match state.store.get_checkpoint(CHECKPOINT).await {
            Ok(position) => return Some(position.unwrap_or(0)),
            Err(error) => {
                tracing::warn!(%error, "the webhooks cannot read their checkpoint; retrying");
                if pause(shutdown, TICK).await {
                    return None;
                }
            }
        }
    }
}

/// What the worker keeps between turns of its loop.
struct Worker<'a> {
    state: &'a AppState,
    config: &'a Config,
    http: Arc<outbound::Http>,
    lease: Option<Lease>,
    feed: Follower,
    /// The tries in flight, and the endpoints they are of (one at a time per endpoint).
    flying: JoinSet<Attempt>,
    busy: HashSet<String>,
    /// When the lease was last checked.
    checked: Instant,
    /// When the place in the log was last saved, and whether events were read since.
    saved_at: Instant,
    unsaved: bool,
    /// Whether a delivery may be owed: false once the table was read empty with nothing in
    /// flight, until the worker owes one again (it alone adds them; a redelivery only unparks
    /// one that is there), so that a turn without webhooks reads nothing more.
    owing: bool,
}

impl Worker<'_> {
    /// Whether the lease is still held, asked at most once a tick: the loop turns at every
    /// commit.
    async fn lease_held(&mut self) -> bool {
        if let Some(lease) = &mut self.lease {
            if self.checked.elapsed() >= TICK {
                if !lease.held().await {
                    tracing::warn!("the webhooks' lease was lost");
                    return false;
                }
                self.checked = Instant::now();
            }
        }
        true
    }

    /// Records the tries that finished meanwhile.
    async fn record_finished(&mut self) {
        while let Some(finished) = self.flying.join_next().now_or_never().flatten() {
            if let Ok(done) = finished {
                self.busy.remove(&done.endpoint_id);
                record(self.state, self.config, done).await;
            }
        }
        if self.flying.is_empty() {
            // An attempt that panicked left its endpoint marked busy.
            self.busy.clear();
        }
    }

    /// Owes what the log added. The place is saved with what that wrote; after events that
    /// owed nothing, at most every `SAVE_EVERY` and when the log goes quiet (a commit to the
    /// log's file per batch, each waiting for its flush, competed with the log's appends;
    /// such events are only read again after a crash). Whether the worker caught up with the
    /// log; `None` when the lease is lost.
    async fn owe(&mut self) -> Option<bool> {
        let from = self.feed.position();
        let owed = owe_next(self.state, &mut self.feed).await;
        let save = match owed {
            Ok(Owed::Written) => {
                self.owing = true;
                true
            }
            Ok(Owed::Read) => {
                self.unsaved = true;
                self.saved_at.elapsed() >= SAVE_EVERY
            }
            Ok(Owed::Nothing) => self.unsaved,
            Err(_) => false,
        };
        if !save && matches!(owed, Ok(Owed::Read)) {
            self.state
                .metrics
                .webhooks_position
                .set(self.feed.position());
        }
        match owed {
            Ok(_) if save => self.save(from).await,
            Ok(Owed::Read) => Some(false),
            Ok(Owed::Nothing | Owed::Written) => Some(true),
            Err(error) => {
                tracing::warn!(%error, "the webhooks cannot follow the log; retrying");
                self.feed.seek(from);
                Some(true)
            }
        }
    }

    /// Saves the place reached (read from `from`); like [`Worker::owe`], whether caught up.
    async fn save(&mut self, from: i64) -> Option<bool> {
        self.saved_at = Instant::now();
        self.unsaved = false;
        let reached = self.feed.position();
        let saved = match &mut self.lease {
            Some(lease) => lease.set_checkpoint(CHECKPOINT, reached).await,
            None => self.state.store.set_checkpoint(CHECKPOINT, reached).await,
        };
        match saved {
            Ok(()) => {
                self.state.metrics.webhooks_position.set(reached);
                Some(false)
            }
            // Through the lease's connection: the lease is lost with it.
            Err(error) if self.lease.is_some() => {
                tracing::warn!(%error, "the webhooks lost their lease (cannot save their checkpoint)");
                None
            }
            // The embedded store is away (a full disk): what was owed is owed again,
            // once, at the next turn.
            Err(error) => {
                tracing::warn!(%error, "the webhooks cannot save their checkpoint; retrying");
                self.feed.seek(from);
                Some(true)
            }
        }
    }

    /// Tries what came due: the first delivery owed to each endpoint, unless parked, not yet
    /// due or already in flight; at most `IN_FLIGHT` at once.
    async fn try_due(&mut self) {
        if !self.owing && self.flying.is_empty() {
            return;
        }
        match table::heads(self.state.backend()).await {
            Ok(heads) => {
                self.owing = !heads.is_empty();
                let now = Utc::now().timestamp_millis();
                for head in heads {
                    if self.flying.len() >= IN_FLIGHT {
                        break;
                    }
                    if head.parked_at.is_some()
                        || head.next_attempt_at > now
                        || self.busy.contains(&head.endpoint_id)
                    {
                        continue;
                    }
                    self.busy.insert(head.endpoint_id.clone());
                    let (state, http) = (self.state.clone(), self.http.clone());
                    self.flying.spawn(async move {
                        let outcome = attempt(&state, &http, &head).await;
                        Attempt {
                            endpoint_id: head.endpoint_id,
                            position: head.position,
                            outcome,
                        }
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "the webhooks cannot read their deliveries"),
        }
    }

    /// Caught up: waits for a try to finish or for the log to move. True on shutdown.
    async fn wait(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            done = self.flying.join_next(), if !self.flying.is_empty() => {
                if let Some(Ok(done)) = done {
                    self.busy.remove(&done.endpoint_id);
                    record(self.state, self.config, done).await;
                }
                false
            }
            stop = self.feed.wait(shutdown) => stop,
        }
    }
}

/// What the webhooks' tests start from: an embedded store, and an organization with an endpoint.
#[cfg(test)]
pub(super) mod testing {
    use domain::organization::{Organization, OrganizationCommand};
    use store::command::CommandContext;
    use uuid::Uuid;

    use crate::state::AppState;

    /// A state on a fresh SQLite store (kept while the folder lives).
    pub(in crate::webhooks) async fn embedded_state() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        crate::secrets::migrate(store.backend()).await.unwrap();
        (dir, AppState::new(store))
    }

    /// A new organization with one endpoint that asked for `event_type`; its id.
    pub(in crate::webhooks) async fn org_with_endpoint(state: &AppState, event_type: &str) -> Uuid {
        let org = Uuid::new_v4();
        let ctx = CommandContext {
            actor: None,
            idempotency: None,
        };
        let commands = [
            OrganizationCommand::CreateOrganization {
                organization_id: org,
                name: domain::values::Name::parse("Acme").unwrap(),
                owner_id: None,
            },
            OrganizationCommand::AddWebhookEndpoint {
                endpoint_id: Uuid::new_v4(),
                url: "https://hooks.example.com/x".into(),
                event_types: vec![event_type.into()],
                by: None,
            },
        ];
        for command in commands {
            state
                .commands
                .execute::<Organization>(&org.to_string(), command, &(), &ctx)
                .await
                .unwrap();
        }
        org
    }
}

#[cfg(test)]
mod worker_tests {
    use super::testing::{embedded_state, org_with_endpoint};
    use super::*;

    async fn sql(state: &AppState, statement: &str) {
        store::testing::execute(state.backend(), statement)
            .await
            .unwrap();
    }

    /// With the embedded store there is no lease to lose: a checkpoint that cannot be saved
    /// for a while (a full disk) is retried, and the worker goes on once it can. (It used to
    /// stop for good until a restart.)
    #[tokio::test]
    async fn the_embedded_worker_outlives_a_checkpoint_it_could_not_save() {
        let (_dir, state) = embedded_state().await;
        let (stop, stopped) = watch::channel(false);
        let worker = tokio::spawn(run(state.clone(), stopped));
        // The checkpoints' table is away while the organization and its endpoint are written.
        sql(&state, "ALTER TABLE checkpoints RENAME TO checkpoints_away").await;
        org_with_endpoint(&state, "MessageSent").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sql(&state, "ALTER TABLE checkpoints_away RENAME TO checkpoints").await;
        let head = state.store.head().await.unwrap();
        let mut reached = None;
        for _ in 0..100 {
            reached = state.store.get_checkpoint(CHECKPOINT).await.unwrap();
            if reached == Some(head) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(reached, Some(head), "the worker went on");
        stop.send(true).unwrap();
        worker.await.unwrap();
    }
}
