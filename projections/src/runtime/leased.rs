//! On Postgres, the projectors of a deployment run in one process: whichever holds the lease
//! `jono-projectors` (ARCHITECTURE.md's scale path). Every `jono serve` and `jono project` on
//! the database used to run the whole group over the same tables; each event was still
//! applied once (invariant 4: the checkpoint is locked and read again inside the batch), but
//! every node read every batch and the groups took turns at the checkpoints' row locks, each
//! waiting out the other's transaction. Under sixteen writers on two nodes the second node's
//! read models fell more than the reads' bounded wait behind (a read on it missed a message
//! answered on the first).
//!
//! The process with the lease runs the group ([`super::live`]) and, on each batch's commit,
//! says so on the channel `jono_projected`. The others report the stored checkpoints (and
//! failures) as their projectors' states, read again at each such notification, so that a
//! read on any node waits for the shared read models exactly as on the one that fills them.
//! They try the lease every [`TRY_EVERY`]: when its holder dies or loses its connection,
//! Postgres releases the lock and one of them takes the work over.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use store::lease::Lease;
use store::log::{Backend, EventStore};
use tokio::sync::watch;

use super::{live, Options, Projection, Statuses};

/// The lease of the one process that runs the projectors.
const LEASE: &str = "jono-projectors";
/// The channel on which the lease holder says that read models moved on.
pub(super) const CHANNEL: &str = "jono_projected";
/// How often a process without the lease tries to take it.
const TRY_EVERY: Duration = Duration::from_secs(2);
/// How often the holder makes sure its lease's connection still answers.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a process without the lease goes without reading the checkpoints again, should a
/// notification be lost.
const REREAD_EVERY: Duration = Duration::from_millis(500);

/// Runs the group of `projections` under the lease, or reports its holder's progress, until
/// `shutdown` becomes true or the group stops on its own (a crash point, in tests).
pub(super) async fn run(
    store: EventStore,
    projections: Vec<Arc<dyn Projection>>,
    options: Options,
    statuses: Statuses,
    mut shutdown: watch::Receiver<bool>,
) {
    let group = Group {
        store: &store,
        projections: &projections,
        options: &options,
        statuses: &statuses,
    };
    let mut watcher = Watcher::default();
    loop {
        if *shutdown.borrow() {
            watcher.stop_own().await;
            return;
        }
        match store.try_lease(LEASE).await {
            Ok(Some(lease)) => {
                tracing::info!("this process runs the projectors (lease {LEASE})");
                watcher.stop_own().await;
                watcher = Watcher::default();
                if !group.lead(lease, &mut shutdown).await {
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot try the projectors' lease; retrying"),
        }
        if watcher.follow(&group, &mut shutdown, TRY_EVERY).await {
            watcher.stop_own().await;
            return;
        }
    }
}

/// What the lease holder runs (and what this process would run).
struct Group<'a> {
    store: &'a EventStore,
    projections: &'a [Arc<dyn Projection>],
    options: &'a Options,
    statuses: &'a Statuses,
}

impl Group<'_> {
    /// Runs the group while the lease is held. True when the lease was lost (the caller tries
    /// again), false when the group is done: shutdown, or it stopped on its own.
    async fn lead(&self, mut lease: Lease, shutdown: &mut watch::Receiver<bool>) -> bool {
        let (stop, stopped) = watch::channel(false);
        let mut group = live::spawn(
            self.store.clone(),
            self.projections.to_vec(),
            self.options.clone(),
            self.statuses.clone(),
            stopped,
        );
        let lost = loop {
            tokio::select! {
                _ = &mut group => return false,
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break false;
                    }
                }
                () = tokio::time::sleep(CHECK_EVERY) => {
                    if !lease.held().await {
                        tracing::warn!("the projectors' lease was lost; stopping them here");
                        break true;
                    }
                }
            }
        };
        let _ = stop.send(true);
        let _ = group.await;
        lost
    }
}

/// A process without the lease: the stored checkpoints, read again when the holder commits.
/// A projection of this process that the holder does not run (a newer release's, during a
/// rolling upgrade) gets no checkpoint from it: this process runs that one itself, beside the
/// holder, once the holder has shown it is at work (a batch's notification comes only after it
/// has prepared every projection it runs). Were both to run it later, invariant 4 still applies
/// each event once.
#[derive(Default)]
struct Watcher {
    listener: Option<PgListener>,
    /// A notification of the holder's came.
    heard: bool,
    /// The schema the log is in, which the holder's notifications name.
    schema: Option<String>,
    /// The projections this process runs itself, and how to stop them.
    own: Option<Own>,
}

struct Own {
    names: Vec<&'static str>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Reports the stored checkpoints as `names`' states for `period`, reading them again at
    /// each notification of the holder (and every [`REREAD_EVERY`]). True at shutdown.
    async fn follow(
        &mut self,
        group: &Group<'_>,
        shutdown: &mut watch::Receiver<bool>,
        period: Duration,
    ) -> bool {
        let Backend::Postgres(pool) = group.store.read_model_backend() else {
            return store::follow::pause(shutdown, period).await;
        };
        if self.listener.is_none() {
            self.listener = listen(pool).await;
        }
        if self.schema.is_none() {
            self.schema = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(pool)
                .await
                .ok();
        }
        let deadline = tokio::time::Instant::now() + period;
        loop {
            let own = self
                .own
                .as_ref()
                .map_or(&[][..], |own| own.names.as_slice());
            let stored = report_stored(group, own).await;
            if let Some(stored) = stored.filter(|_| self.heard && self.own.is_none()) {
                self.run_missing(group, &stored);
            }
            let wait =
                REREAD_EVERY.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            if wait.is_zero() {
                return false;
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return true;
                    }
                }
                () = tokio::time::sleep(wait) => {}
                notified = async {
                    match self.listener.as_mut() {
                        Some(listener) => listener
                            .recv()
                            .await
                            .map(|notification| notification.payload().to_owned()),
                        None => std::future::pending().await,
                    }
                } => {
                    match notified {
                        // The channel is the database's: a deployment in another schema
                        // notifies on it too, and says which.
                        Ok(schema) => self.heard |= self.schema.as_deref() == Some(schema.as_str()),
                        Err(error) => {
                            // PgListener reconnects on the next recv; the timer reads meanwhile.
                            tracing::debug!(%error, "the projectors' listener lost its connection");
                            self.listener = None;
                        }
                    }
                    // Notifications that came meanwhile say nothing more than this one.
                    if let Some(listener) = self.listener.as_mut() {
                        while listener.next_buffered().is_some() {}
                    }
                }
            }
        }
    }
}

impl Watcher {
    /// Runs, in a group of this process's own, the projections that have no checkpoint in
    /// `stored` (the names the database holds).
    fn run_missing(&mut self, group: &Group<'_>, stored: &[String]) {
        let missing: Vec<Arc<dyn Projection>> = group
            .projections
            .iter()
            .filter(|p| !stored.iter().any(|name| name == p.name()))
            .cloned()
            .collect();
        if missing.is_empty() {
            return;
        }
        let names: Vec<&'static str> = missing.iter().map(|p| p.name()).collect();
        tracing::info!(
            projections = %names.join(", "),
            "the projectors' lease holder does not run these (an older release?): this process runs them"
        );
        let (stop, stopped) = watch::channel(false);
        let task = live::spawn(
            group.store.clone(),
            missing,
            group.options.clone(),
            group.statuses.clone(),
            stopped,
        );
        self.own = Some(Own { names, stop, task });
    }

    /// Stops the projections this process runs itself, if any.
    async fn stop_own(&mut self) {
        if let Some(own) = self.own.take() {
            let _ = own.stop.send(true);
            let _ = own.task.await;
        }
    }
}

async fn listen(pool: &sqlx::PgPool) -> Option<PgListener> {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "cannot LISTEN for the projectors' progress; polling instead");
            return None;
        }
    };
    match listener.listen(CHANNEL).await {
        Ok(()) => Some(listener),
        Err(error) => {
            tracing::warn!(%error, "cannot LISTEN for the projectors' progress; polling instead");
            None
        }
    }
}

/// Sets the group's states from the stored checkpoints and failures, but those of `own` (which
/// this process runs and reports itself); the names the database holds, `None` when it cannot
/// be read. Before the holder has prepared a projection (no checkpoint yet), its state stays as
/// it was.
async fn report_stored(group: &Group<'_>, own: &[&'static str]) -> Option<Vec<String>> {
    let stored = match super::checkpoints::stored_states(group.store.read_model_backend()).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::debug!(%error, "cannot read the projectors' checkpoints");
            return None;
        }
    };
    let mut names = Vec::with_capacity(stored.len());
    for (name, state) in stored {
        let ours = group.projections.iter().find(|p| p.name() == name);
        if let Some(projection) = ours.filter(|p| !own.contains(&p.name())) {
            group.statuses.set(projection.name(), state);
        }
        names.push(name);
    }
    Some(names)
}
