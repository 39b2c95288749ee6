//! Running a command for a route: the caller and its idempotency key go into the log with the
//! events, the process manager's follow-ups run at once (join → conversation, pick → its
//! agent, …), and the answer waits until the read models show it all, so the caller's next read
//! sees its own write.

use cqrs_es::Aggregate;
use domain::Refusal;
use serde_json::json;
use store::command::{CommandContext, Executed};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::IdempotencyKey;
use crate::process_manager;
use crate::state::AppState;

/// Who acts, as stored with each event (never a secret).
pub fn actor_of(caller: Option<&Caller>) -> serde_json::Value {
    match caller {
        Some(Caller::Agent(agent)) => json!({ "kind": "agent", "id": agent.agent_id }),
        Some(Caller::Customer(customer)) => {
            json!({ "kind": "customer", "id": customer.conversation_id })
        }
        None => json!({ "kind": "anonymous" }),
    }
}

pub fn context(caller: Option<&Caller>, key: Option<&IdempotencyKey>) -> CommandContext {
    CommandContext {
        actor: Some(actor_of(caller)),
        idempotency: key.map(|key| key.0.clone()),
    }
}

/// Runs `command` on the stream `id`, then its follow-ups, then waits for the read models.
pub async fn run<A>(
    state: &AppState,
    id: Uuid,
    command: A::Command,
    ctx: &CommandContext,
) -> Result<Executed<A>, ApiError>
where
    A: Aggregate<Services = ()>,
    A::Command: Clone,
    A::Error: Refusal,
{
    let executed = state
        .commands
        .execute::<A>(&id.to_string(), command, &(), ctx)
        .await?;
    let last = process_manager::follow_through(&state.commands, &executed.events)
        .await
        .map_err(ApiError::Unavailable)?;
    // A follow-up found already done was done by the background process manager, at a
    // position this command never saw; the head now is past it, so wait for that.
    let head = state.store.head().await.unwrap_or(last);
    state.settle(last.max(head)).await;
    Ok(executed)
}
