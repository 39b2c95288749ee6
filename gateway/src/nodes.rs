//! This process as one node among the `jono serve` nodes of a Postgres deployment.
//!
//! - [`run`]: the node's heartbeat, and its share of what all nodes see together, written to
//!   the shared tables (`store::cluster`) every [`SYNC_EVERY`]: its agents' and waiting
//!   customers' open sockets (presence, the time-out) and customers' signs of life. A node that
//!   dies stops beating, and its sockets expire with it; one that stops cleanly takes them away.
//! - [`join`]: which nodes may run together. Ephemeral frames and close orders cross nodes only
//!   over NATS (`crate::peers`), so a node without NATS runs alone on its database: a second
//!   node, with NATS or without, refuses to start, saying so (a shared lease that nodes with
//!   NATS hold together and one without holds whole). [`keep`] holds the place while the
//!   process runs, and takes it again after its connection was lost (Postgres restarted).

use std::time::Duration;

use store::cluster::{Cluster, SocketKind};
use store::lease::Lease;
use store::log::EventStore;
use tokio::sync::watch;

use crate::state::AppState;

/// How often the node beats and writes what changed.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
/// The lease that says which nodes run together.
const NODES: &str = "jono-serve-nodes";
/// How long a node tries to join before refusing: a node killed a moment ago may still hold
/// its share until Postgres notices its connection is gone.
const JOIN_PATIENCE: Duration = Duration::from_secs(3);

/// Takes this node's place among the deployment's nodes (Postgres only; the embedded store
/// serves one process): a share of the nodes' lease with NATS, the whole of it without. The
/// lease is held for as long as the node serves; a refusal says why in one line.
pub async fn join(store: &EventStore, nats: bool) -> Result<Option<Lease>, String> {
    if store.cluster().is_none() {
        return Ok(None);
    }
    let deadline = tokio::time::Instant::now() + JOIN_PATIENCE;
    loop {
        let taken = if nats {
            store.try_lease_shared(NODES).await
        } else {
            store.try_lease(NODES).await
        }
        .map_err(|error| error.to_string())?;
        if let Some(lease) = taken {
            return Ok(Some(lease));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(if nats {
                "a jono serve without NATS already runs on this database, and it runs alone: \
                 give every node --nats-url (JONO_NATS_URL)"
            } else {
                "another jono serve already runs on this database; several nodes need NATS for \
                 typing, calls and logouts to cross between them: give every node --nats-url \
                 (JONO_NATS_URL)"
            }
            .to_owned());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How often a node checks that it still holds its place.
const KEEP_EVERY: Duration = Duration::from_secs(5);

/// Holds the node's place for as long as the process runs: a place lost with its connection
/// (Postgres restarted) is taken again, and should another node have come in meanwhile, that is
/// said loudly (this deployment then does not act as one until one of them stops).
pub async fn keep(store: EventStore, mut place: Lease, nats: bool) {
    loop {
        tokio::time::sleep(KEEP_EVERY).await;
        if place.held().await {
            continue;
        }
        tracing::warn!(
            "this node lost its place among the nodes (its connection); taking it again"
        );
        place = loop {
            let taken = if nats {
                store.try_lease_shared(NODES).await
            } else {
                store.try_lease(NODES).await
            };
            match taken {
                Ok(Some(place)) => break place,
                Ok(None) => tracing::error!(
                    "another jono serve came in while this node's place was lost, and one of them \
                     runs without NATS: typing, calls and logouts do not cross between them; give \
                     every node --nats-url (JONO_NATS_URL)"
                ),
                Err(error) => tracing::debug!(%error, "cannot take this node's place yet"),
            }
            tokio::time::sleep(KEEP_EVERY).await;
        };
        tracing::info!("this node holds its place among the nodes again");
    }
}

/// Beats and writes this node's changes until `shutdown`; then writes the last of them and
/// leaves (Postgres only).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let Some(cluster) = state.store.cluster() else {
        return;
    };
    let node_id = state.live.node_id;
    let mut ticker = tokio::time::interval(SYNC_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        match sync(&state, &cluster).await {
            Ok(()) if failing => {
                tracing::info!("this node's sockets are shared again");
                failing = false;
            }
            Ok(()) => {}
            Err(error) if !failing => {
                tracing::warn!(%error, "cannot share this node's sockets; retrying");
                failing = true;
            }
            Err(_) => {}
        }
    }
    // The sockets were closed before the background work stops: their signs of life go out,
    // and the node's rows with it.
    if let Err(error) = sync(&state, &cluster).await {
        tracing::warn!(%error, "cannot share this node's last signs of life");
    }
    if let Err(error) = cluster.leave(node_id).await {
        tracing::warn!(%error, "cannot take this node's sockets away; they expire instead");
    }
}

/// One beat and what changed since the last.
async fn sync(state: &AppState, cluster: &Cluster) -> Result<(), store::StoreError> {
    let node_id = state.live.node_id;
    cluster.beat(node_id).await?;
    let agents = state.presence.drain_changes();
    if !agents.is_empty() {
        if let Err(error) = cluster
            .set_sockets(node_id, SocketKind::Agent, &agents)
            .await
        {
            state
                .presence
                .unwritten(agents.iter().map(|(agent_id, _)| *agent_id));
            return Err(error);
        }
    }
    let activity = crate::sweeper::activity();
    let changes = activity.drain_changes();
    let written = async {
        if !changes.sockets.is_empty() {
            cluster
                .set_sockets(node_id, SocketKind::Customer, &changes.sockets)
                .await?;
        }
        cluster.saw_customers(&changes.seen).await
    };
    if let Err(error) = written.await {
        activity.unwritten(&changes);
        return Err(error);
    }
    Ok(())
}
