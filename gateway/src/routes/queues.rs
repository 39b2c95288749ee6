//! Queues: creating and listing them, their settings and handlers, opening and closing, the
//! pick, statistics, and the two doors customers use — the public face and the join.
//!
//! Choices API.md leaves open, made here:
//! - A queue object is `{id, organization_id, name, open, waiting, oldest_wait_seconds,
//!   handlers}` plus its settings as flat fields (`max_waiting`, `welcome_message`,
//!   `capacity_per_agent`, `opening_hours`, `allowed_origins`) and again as one `settings`
//!   object (and the service-level targets `target_wait_seconds` and
//!   `target_first_response_seconds`); the list and the single queue show the same object. `oldest_wait_seconds` is
//!   `null` when nobody waits.
//! - A handler must be a member of the queue's organization: adding anyone else is 422 (the
//!   value is well-formed but not acceptable here; 404 is kept for the queue itself).
//! - In a settings change `null` clears `max_waiting`, `welcome_message`, `capacity_per_agent`,
//!   `opening_hours` and the targets, and empties `allowed_origins`; `name` cannot be cleared (422).
//! - `from` and `to` of the statistics are RFC 3339 times or bare dates (midnight UTC), as
//!   `jono stats` takes them; anything else is 400, and `from` not before `to` is 422.
//! - A join from a page whose `Origin` is not among the queue's `allowed_origins` (when it has
//!   any) is 403; a request without `Origin` (not from a browser) is let through.
//!
//! A file per concept, each with its routes and their handlers: `managing.rs` (creating,
//! listing, one queue), `settings.rs`, `handlers.rs`, `stats.rs`, `identity.rs` (returning
//! customers' identity secret), `serving.rs` (opening, closing, picking), `customers.rs` (the
//! public face and the join); `wire.rs` their bodies and answers.

use axum::Json;
use cqrs_es::Aggregate;
use domain::queue::Queue;
use domain::values::Role;
use uuid::Uuid;

use crate::access;
use crate::auth::AgentCaller;
use crate::consistency;
use crate::error::ApiError;
use crate::extract::path_id;
use crate::openapi::Routes;
use crate::state::AppState;

mod customers;
mod handlers;
mod identity;
mod managing;
mod serving;
mod settings;
mod stats;
pub mod wire;

pub(crate) use customers::customer_door;
pub(crate) use serving::picked;
pub use wire::{
    AddHandler, CreateQueue, IdentitySecret, Join, Joined, OfferView, PublicQueue, QueueCreated,
    QueueView, SettingsBody,
};

/// Every route of queues, in the contract's order.
pub fn routes() -> Routes {
    Routes::new("queues")
        .extend(managing::routes())
        .extend(settings::routes())
        .extend(handlers::routes())
        .extend(stats::routes())
        .extend(identity::routes())
        .extend(serving::routes())
        .extend(customers::routes())
}

/// The queue behind a path segment, from the read model (looked for again at the log's
/// position if it is not there: created a moment ago); 404 if there is none.
async fn find(state: &AppState, raw: &str) -> Result<projections::queues::read::Queue, ApiError> {
    let queue_id = path_id(raw)?;
    consistency::found(state, || async {
        Ok(projections::queues::read::queue(state.backend(), queue_id).await?)
    })
    .await?
    .ok_or(ApiError::NotFound)
}

/// The queue again, once the read models show every change of its stream answered before now
/// (its handlers, its settings): for a decision that a stale row could get wrong either way.
async fn current(
    state: &AppState,
    queue: projections::queues::read::Queue,
) -> Result<projections::queues::read::Queue, ApiError> {
    consistency::wait_for_stream(state, Queue::TYPE, &queue.id.to_string()).await?;
    Ok(projections::queues::read::queue(state.backend(), queue.id)
        .await?
        .unwrap_or(queue))
}

/// The queue, for a member of its organization (404 for anyone else), with the caller's role.
async fn find_as_member(
    state: &AppState,
    agent: &AgentCaller,
    raw: &str,
) -> Result<(projections::queues::read::Queue, Role), ApiError> {
    let queue = find(state, raw).await?;
    let role = access::member(state, agent, queue.organization_id).await?;
    Ok((queue, role))
}

/// The queue, for an operator of its organization: 404 for non-members, 403 for agents.
async fn find_as_operator(
    state: &AppState,
    agent: &AgentCaller,
    raw: &str,
) -> Result<projections::queues::read::Queue, ApiError> {
    let queue = find(state, raw).await?;
    access::at_least(state, agent, queue.organization_id, Role::Operator).await?;
    Ok(queue)
}

async fn rendered(state: &AppState, queue_id: Uuid) -> Result<Json<QueueView>, ApiError> {
    let queue = projections::queues::read::queue(state.backend(), queue_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(QueueView::from(&queue)))
}

/// A queue of the read model that allows these sites to embed it, for the files' tests.
#[cfg(test)]
fn queue_with_origins(origins: serde_json::Value) -> projections::queues::read::Queue {
    projections::queues::read::Queue {
        id: Uuid::new_v4(),
        organization_id: Uuid::new_v4(),
        name: "Support".into(),
        open: true,
        waiting: 0,
        oldest_wait_seconds: None,
        handlers: vec![],
        settings: serde_json::json!({ "name": "Support", "allowed_origins": origins }),
    }
}
