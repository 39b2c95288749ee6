//! Auto routing (`routing: auto` in a queue's settings): one duty per deployment (on Postgres
//! the holder of the lease `jono-router`, taken over within seconds when it dies) that offers
//! each waiting customer of an auto queue to one online handler with room, and expires offers
//! not accepted within the queue's `offer_timeout_seconds`, so they pass to the next agent.
//!
//! It only proposes: every offer and expiry is a command the queue's stream decides (a
//! customer under an offer is not offered again, an agent who declined it is not offered it
//! again, an offer expires only once due), and an acceptance is the agent's own command,
//! decided by the queue and the agent's workload together. So a stale view here costs at most
//! a refused command, never a customer given twice or an agent past its capacity.
//!
//! Who gets an offer: a handler of the queue whose status is `online` (not away, not offline),
//! with fewer open conversations in the organization than the queue's `capacity_per_agent`
//! (its `Workload` stream), and no other open offer; among them the one with the fewest open
//! conversations, then the one idle longest (who took a conversation least recently, or
//! never). Agents not yet offered the customer come first; when all were, those whose offer
//! ran out may get it again (never one who declined it). The longest-waiting customer is
//! offered first.
//!
//! It wakes on every commit (through the store's notifications) and acts on those of the
//! queues it watches and of workloads at once, and on the rest at least every half second
//! (expiries, and presence, which is not in the log). What it folds from the log is kept
//! beside it every few seconds, and a start resumes from there.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::ids::workload_id;
use domain::queue::{Queue, QueueCommand, QueueEvent, Routing};
use domain::workload::Workload;
use domain::Event;
use serde::{Deserialize, Serialize};
use store::command::{CommandContext, CommandError};
use store::follow::{pause, Follower};
use store::kept_fold::KeptFold;
use tokio::sync::watch;
use uuid::Uuid;

use crate::presence;
use crate::state::AppState;

/// The lease of the one routing node of a Postgres deployment.
const LEASE: &str = "jono-router";
/// How often a node without the lease tries to take it.
const LEASE_RETRY: Duration = Duration::from_secs(1);
/// The longest the router sleeps without a commit: offers expire within this of their time.
const TICK: Duration = Duration::from_millis(500);
/// Events read from the feed at a time.
const BATCH: usize = 1_000;

/// Routes until `shutdown` changes: with the embedded store at once, on Postgres while this
/// node holds the lease (trying to take it meanwhile).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if state.store.cluster().is_none() {
        route(&state, None, &mut shutdown).await;
        return;
    }
    loop {
        match state.store.try_lease(LEASE).await {
            Ok(Some(lease)) => {
                tracing::info!("this node routes customers of auto queues");
                route(&state, Some(lease), &mut shutdown).await;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot try the router's lease; retrying"),
        }
        if pause(&mut shutdown, LEASE_RETRY).await {
            return;
        }
    }
}

/// The version of what [`Watch`] keeps and how it folds: a kept fold of another version is
/// not resumed (`store::kept_fold`). Raise it with any change to either.
const FOLD_VERSION: u32 = 1;

/// The conversation's events the router folds (open handoffs); it reads no payload of the
/// conversation's [`domain::conversation::TRAFFIC`].
const HANDOFF_TYPES: [&str; 6] = domain::event_types![
    "HandoffOffered",
    "HandoffAccepted",
    "HandoffDeclined",
    "HandoffExpired",
    "ConversationEnded",
    "ConversationRequeued",
];

/// The queues the router looks after: those that are (or ever were) auto-routed, so that
/// offers made before a switch to manual still expire. A fold of the log, kept beside it so
/// that a start resumes it (`store::kept_fold`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Watch {
    queues: BTreeSet<Uuid>,
    /// Open handoffs to a teammate: conversation → (handoff, when it expires). The router
    /// expires them too (`ExpireHandoff`, decided by the conversation's stream).
    handoffs: BTreeMap<Uuid, (Uuid, DateTime<Utc>)>,
}

impl Watch {
    /// Folds one stored event; true when routing might have something new to do.
    fn apply(&mut self, event: &store::event::StoredEvent) -> bool {
        match event.aggregate_type.as_str() {
            "queue" => {
                if event.event_type == "QueueSettingsChanged" {
                    if let Ok(Event::Queue(QueueEvent::QueueSettingsChanged {
                        queue_id,
                        settings,
                        ..
                    })) = Event::decode_ref(&event.aggregate_type, &event.payload)
                    {
                        if settings.routing == Routing::Auto {
                            self.queues.insert(queue_id);
                        }
                    }
                }
                event
                    .aggregate_id
                    .parse::<Uuid>()
                    .is_ok_and(|id| self.queues.contains(&id))
            }
            // Room freed or taken.
            "workload" => true,
            "conversation" => {
                self.follow_handoff(event);
                false
            }
            _ => false,
        }
    }
}

async fn route(
    state: &AppState,
    mut lease: Option<store::lease::Lease>,
    shutdown: &mut watch::Receiver<bool>,
) {
    // Resumed where this or another process last kept it: never the whole log again.
    let (mut kept, mut watch, position): (KeptFold, Watch, i64) =
        KeptFold::resume(&state.store, "router", FOLD_VERSION).await;
    let mut feed = Follower::new("router", &state.store, position)
        .skip_payloads(&domain::conversation::TRAFFIC)
        .batch(BATCH)
        .idle(TICK);
    let mut last_tick: Option<std::time::Instant> = None;
    loop {
        if let Some(lease) = &mut lease {
            if !lease.held().await {
                tracing::warn!("the router's lease was lost");
                return;
            }
        }
        let mut relevant = false;
        loop {
            match feed.read().await {
                Ok(batch) => {
                    for event in &batch {
                        relevant |= watch.apply(event);
                    }
                    if feed.caught_up() {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "router cannot read the feed; trying again");
                    break;
                }
            }
        }
        kept.keep(&state.store, &watch, feed.position()).await;
        // A commit elsewhere (a message, say) changes nothing here; time and presence do.
        if relevant || last_tick.is_none_or(|at| at.elapsed() >= TICK) {
            last_tick = Some(std::time::Instant::now());
            if let Err(error) = tick(state, &watch).await {
                tracing::warn!(%error, "routing failed; trying again");
            }
        }
        if feed.wait(shutdown).await {
            kept.keep_now(&state.store, &watch, feed.position()).await;
            return;
        }
    }
}

fn context() -> CommandContext {
    CommandContext {
        actor: Some(serde_json::json!({"kind": "router"})),
        idempotency: None,
    }
}

/// Whether the queue took the routing command: a refusal is the queue saying the view was stale
/// (false); anything else is the store.
fn accepted<T, E: std::fmt::Display>(result: Result<T, CommandError<E>>) -> Result<bool, String> {
    match result {
        Ok(_) => Ok(true),
        Err(CommandError::Rejected(refusal)) => {
            tracing::debug!(%refusal, "routing command refused");
            Ok(false)
        }
        Err(error) => Err(error.to_string()),
    }
}

impl Watch {
    /// Keeps `handoffs` in step with a conversation's event.
    fn follow_handoff(&mut self, event: &store::event::StoredEvent) {
        use domain::conversation::ConversationEvent as C;
        if !HANDOFF_TYPES.contains(&event.event_type.as_str()) {
            return;
        }
        match Event::decode_ref(&event.aggregate_type, &event.payload) {
            Ok(Event::Conversation(C::HandoffOffered {
                conversation_id,
                handoff_id,
                expires_at,
                ..
            })) => {
                self.handoffs
                    .insert(conversation_id, (handoff_id, expires_at));
            }
            Ok(Event::Conversation(
                C::HandoffAccepted {
                    conversation_id, ..
                }
                | C::HandoffDeclined {
                    conversation_id, ..
                }
                | C::HandoffExpired {
                    conversation_id, ..
                }
                | C::ConversationEnded {
                    conversation_id, ..
                }
                | C::ConversationRequeued {
                    conversation_id, ..
                },
            )) => {
                self.handoffs.remove(&conversation_id);
            }
            _ => {}
        }
    }
}

/// Expires the handoffs past their time (a refusal: answered meanwhile, settled).
async fn expire_handoffs(
    state: &AppState,
    watch: &Watch,
    now: DateTime<Utc>,
) -> Result<(), String> {
    use domain::conversation::{Conversation, ConversationCommand};
    for (conversation_id, (handoff_id, expires_at)) in &watch.handoffs {
        if *expires_at >= now {
            continue;
        }
        let expire = ConversationCommand::ExpireHandoff {
            handoff_id: *handoff_id,
            now,
        };
        accepted(
            state
                .commands
                .execute::<Conversation>(&conversation_id.to_string(), expire, &(), &context())
                .await,
        )?;
    }
    Ok(())
}

/// One round: expire what is due, then offer whom nobody is offered.
async fn tick(state: &AppState, watch: &Watch) -> Result<(), String> {
    let now = Utc::now();
    expire_handoffs(state, watch, now).await?;
    let mut queues = Vec::with_capacity(watch.queues.len());
    for queue_id in &watch.queues {
        queues.push((*queue_id, expire_offers(state, *queue_id, now).await?));
    }
    // An agent has one open offer at a time, whichever queue it is of.
    let mut offered: BTreeSet<Uuid> = queues
        .iter()
        .flat_map(|(_, queue)| queue.offers.values().map(|offer| offer.agent_id))
        .collect();
    let mut workloads: HashMap<(Uuid, Uuid), Workload> = HashMap::new();
    for (queue_id, queue) in &queues {
        if queue.routing() != Routing::Auto {
            continue;
        }
        offer_waiting(state, *queue_id, queue, &mut offered, &mut workloads).await?;
    }
    Ok(())
}

/// Expires the queue's offers past their time; the queue as it is after.
async fn expire_offers(
    state: &AppState,
    queue_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Queue, String> {
    let (mut queue, _) = state
        .commands
        .load::<Queue>(&queue_id.to_string())
        .await
        .map_err(|e| e.to_string())?;
    let due: Vec<(Uuid, Uuid)> = queue
        .offers
        .iter()
        .filter(|(_, offer)| offer.expires_at <= now)
        .map(|(conversation_id, offer)| (*conversation_id, offer.offer_id))
        .collect();
    for (conversation_id, offer_id) in &due {
        let expire = QueueCommand::ExpireOffer {
            conversation_id: *conversation_id,
            offer_id: *offer_id,
            now,
        };
        accepted(
            state
                .commands
                .execute::<Queue>(&queue_id.to_string(), expire, &(), &context())
                .await,
        )?;
    }
    if !due.is_empty() {
        queue = state
            .commands
            .load::<Queue>(&queue_id.to_string())
            .await
            .map_err(|e| e.to_string())?
            .0;
    }
    Ok(queue)
}

/// Offers each waiting customer of an auto queue that nobody is offered to the handler
/// [`pick`] chooses, if any; `offered` gains each agent who got an offer, `workloads` keeps
/// the online handlers' workloads for the rest of the round.
async fn offer_waiting(
    state: &AppState,
    queue_id: Uuid,
    queue: &Queue,
    offered: &mut BTreeSet<Uuid>,
    workloads: &mut HashMap<(Uuid, Uuid), Workload>,
) -> Result<(), String> {
    let unoffered: Vec<Uuid> = queue
        .waiting
        .iter()
        .filter(|conversation_id| !queue.offers.contains_key(conversation_id))
        .copied()
        .collect();
    if unoffered.is_empty() {
        return Ok(());
    }
    let handlers: Vec<Uuid> = queue.handlers.iter().copied().collect();
    let statuses = presence::statuses(state, &handlers)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let online: Vec<Uuid> = handlers
        .into_iter()
        .filter(|agent| statuses.get(agent).is_some_and(|(_, s)| *s == "online"))
        .collect();
    for agent in &online {
        if let std::collections::hash_map::Entry::Vacant(entry) =
            workloads.entry((queue.organization_id, *agent))
        {
            let id = workload_id(queue.organization_id, *agent).to_string();
            let (workload, _) = state
                .commands
                .load::<Workload>(&id)
                .await
                .map_err(|e| e.to_string())?;
            entry.insert(workload);
        }
    }
    for conversation_id in unoffered {
        let Some(agent_id) = pick(queue, conversation_id, &online, offered, workloads) else {
            continue;
        };
        let offer = QueueCommand::OfferCustomer {
            offer_id: Uuid::new_v4(),
            conversation_id,
            agent_id,
            now: Utc::now(),
        };
        if accepted(
            state
                .commands
                .execute::<Queue>(&queue_id.to_string(), offer, &(), &context())
                .await,
        )? {
            offered.insert(agent_id);
        }
    }
    Ok(())
}

/// Whom to offer a waiting customer: an online handler with room under the queue's
/// `capacity_per_agent`, no open offer, who did not decline it — preferring those not yet
/// offered it — with the fewest open conversations, then idle longest.
fn pick(
    queue: &Queue,
    conversation_id: Uuid,
    online: &[Uuid],
    offered: &BTreeSet<Uuid>,
    workloads: &HashMap<(Uuid, Uuid), Workload>,
) -> Option<Uuid> {
    let capacity = queue
        .settings
        .as_ref()
        .and_then(|settings| settings.capacity_per_agent);
    let free: Vec<(usize, Option<DateTime<Utc>>, Uuid)> = online
        .iter()
        .filter(|agent| !offered.contains(agent))
        .filter(|agent| !queue.declined(conversation_id, **agent))
        .filter_map(|agent| {
            let workload = workloads.get(&(queue.organization_id, *agent))?;
            let open = workload.open.len();
            let room = capacity.is_none_or(|max| (open as u64) < u64::from(max.get()));
            room.then_some((open, workload.last_taken_at, *agent))
        })
        .collect();
    let tried = queue.offered_to(conversation_id);
    let untried: Vec<_> = free
        .iter()
        .filter(|(_, _, agent)| !tried.is_some_and(|tried| tried.contains(agent)))
        .copied()
        .collect();
    let pool = if untried.is_empty() { free } else { untried };
    // Fewest open, then idle longest (never took one: longest of all), then by id.
    let &(_, _, agent_id) = pool.iter().min()?;
    Some(agent_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a kept fold holds, pinned beside its version: a change to `Watch`'s shape must
    /// raise `FOLD_VERSION` (a kept fold of the old shape would otherwise be resumed as the new
    /// one), then update this pin.
    #[test]
    fn the_kept_shape_is_pinned_to_its_fold_version() {
        let mut watch = Watch::default();
        watch.queues.insert(Uuid::from_u128(1));
        let expires = DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        watch
            .handoffs
            .insert(Uuid::from_u128(2), (Uuid::from_u128(3), expires));
        let kept = serde_json::to_string(&watch).expect("serializes");
        const PINNED: &str = r#"{"queues":["00000000-0000-0000-0000-000000000001"],"handoffs":{"00000000-0000-0000-0000-000000000002":["00000000-0000-0000-0000-000000000003","2027-01-15T08:00:00Z"]}}"#;
        assert_eq!(
            (FOLD_VERSION, kept.as_str()),
            (1, PINNED),
            "the kept shape changed: raise FOLD_VERSION, then this pin"
        );
    }

    /// The router's feed comes without the traffic's payloads: none of them may be one it folds.
    #[test]
    fn the_router_folds_no_event_of_the_traffic_it_reads_without_payloads() {
        for traffic in domain::conversation::TRAFFIC {
            assert!(!HANDOFF_TYPES.contains(&traffic), "{traffic}");
        }
    }
}
