//! Running a command for a route: the caller and its idempotency key go into the log with the
//! events, and the process manager's follow-ups run at once (join → conversation, pick → its
//! agent, …), so the answer comes when all of it is durable. It does not wait for the read
//! models: the reads that follow wait for them (`consistency`, API.md's Consistency rule).
//!
//! Work that spans streams is orchestrated here, not in the routes, and no route retries: a
//! join and the start of its conversation, a pick and the agent's workload (`give`), a left
//! message; a reopening, by an agent (`reopen`) or by a customer's message to its ended
//! conversation (`send_message`), in `reopening.rs`; a transfer (`transfer`: the source line,
//! the target line and the conversation in one append) and an end (`end`: a waiting customer
//! leaves its line first), in `moves.rs`. The aggregates decide every rule, and this code
//! decides on their typed refusals; a route parses, authorizes, calls one of these, and maps
//! the answer.

use cqrs_es::Aggregate;
use domain::conversation::Conversation;
use domain::metadata::{CustomerMetadata, VerifiedCustomer};
use domain::queue::{Queue, QueueCommand, QueueEvent};
use domain::workload::{Workload, WorkloadCommand};
use domain::Refusal;
use serde_json::json;
use store::command::{CommandContext, CommandError, Either, Executed};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::IdempotencyKey;
use crate::process_manager;
use crate::state::AppState;

mod moves;
mod reopening;

pub use moves::{end, transfer};
pub use reopening::{reopen, send_message};

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

/// Runs `command` on the stream `id`, then its follow-ups.
pub async fn run<A>(
    state: &AppState,
    id: Uuid,
    command: A::Command,
    ctx: &CommandContext,
) -> Result<Executed<A>, ApiError>
where
    A: domain::Snapshot + Aggregate<Services = ()>,
    A::Command: Clone,
    A::Error: Refusal,
{
    let executed = state
        .commands
        .execute::<A>(&id.to_string(), command, &(), ctx)
        .await?;
    follow(state, &executed.events).await?;
    Ok(executed)
}

/// Runs the follow-ups of what a command appended (they are part of its durable effect).
async fn follow(state: &AppState, events: &[store::event::StoredEvent]) -> Result<(), ApiError> {
    process_manager::follow_through(&state.commands, events)
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(())
}

/// The last position a command appended at (0 for none, as a replayed key's answer may be):
/// what a route that reads its own write back waits for.
pub fn last_position<A: Aggregate>(executed: &Executed<A>) -> i64 {
    executed
        .events
        .iter()
        .map(|event| event.position)
        .max()
        .unwrap_or(0)
}

/// Runs `first` on aggregate `A` and `second` on aggregate `B` in one append (both land or
/// neither: [`store::command::Commands::execute_pair`]), then the follow-ups of both, as [`run`]
/// does.
pub async fn run_pair<A, B>(
    state: &AppState,
    first: (Uuid, A::Command),
    second: (Uuid, B::Command),
    ctx: &CommandContext,
) -> Result<(Executed<A>, Executed<B>), ApiError>
where
    A: domain::Snapshot + Aggregate<Services = ()>,
    A::Command: Clone,
    A::Error: Refusal,
    B: domain::Snapshot + Aggregate<Services = ()>,
    B::Command: Clone,
    B::Error: Refusal,
{
    let (second_id, second) = second;
    run_pair_with::<A, B>(
        state,
        first,
        (second_id, move |_: &[A::Event]| Some(second.clone())),
        ctx,
    )
    .await
}

/// A customer joins queue `queue_id`: the join and the start of its conversation are one
/// append, so the conversation's stream refuses a repeated join (the queue remembers only who
/// waits now).
pub async fn join(
    state: &AppState,
    queue_id: Uuid,
    conversation_id: Uuid,
    metadata: CustomerMetadata,
    customer: Option<VerifiedCustomer>,
    ctx: &CommandContext,
) -> Result<Executed<Queue>, ApiError> {
    let join = QueueCommand::JoinQueue {
        conversation_id,
        metadata,
        customer,
    };
    let (joined, _) = run_pair_with::<Queue, Conversation>(
        state,
        (queue_id, join),
        (conversation_id, domain::process::start_of_join),
        ctx,
    )
    .await?;
    Ok(joined)
}

/// A command that gives a waiting customer to `agent_id` (a pick, or an accepted offer) on
/// queue `queue_id`: the queue's `CustomerPicked` and the agent's workload taking the
/// conversation are one append, each stream at the version it decided on, so the workload's
/// stream decides `capacity_per_agent` (two picks at once cannot both take its last place) and
/// the queue's decides who gets the customer (invariant 2). Then the follow-ups, as [`run`].
pub async fn give(
    state: &AppState,
    queue_id: Uuid,
    organization_id: Uuid,
    agent_id: Uuid,
    command: QueueCommand,
    ctx: &CommandContext,
) -> Result<Executed<Queue>, ApiError> {
    let workload_id = domain::ids::workload_id(organization_id, agent_id);
    let take = move |queue: &Queue, decided: &[QueueEvent]| {
        decided.iter().find_map(|event| match event {
            QueueEvent::CustomerPicked {
                queue_id,
                organization_id,
                conversation_id,
                agent_id,
                ..
            } => Some(WorkloadCommand::Take {
                organization_id: *organization_id,
                agent_id: *agent_id,
                conversation_id: *conversation_id,
                queue_id: *queue_id,
                capacity: queue
                    .settings
                    .as_ref()
                    .and_then(|settings| settings.capacity_per_agent),
                at: chrono::Utc::now(),
            }),
            _ => None,
        })
    };
    let (executed, _) =
        run_pair_from::<Queue, Workload>(state, (queue_id, command), (workload_id, take), ctx)
            .await?;
    Ok(executed)
}

/// Runs `first` and the command `second` makes from its stream's state and decision as one
/// append ([`store::command::Commands::execute_pair_from`]), then the follow-ups of both.
async fn run_pair_from<A, B>(
    state: &AppState,
    (first_id, first): (Uuid, A::Command),
    (second_id, second): (Uuid, impl Fn(&A, &[A::Event]) -> Option<B::Command>),
    ctx: &CommandContext,
) -> Result<(Executed<A>, Executed<B>), ApiError>
where
    A: domain::Snapshot + Aggregate<Services = ()>,
    A::Command: Clone,
    A::Error: Refusal,
    B: domain::Snapshot + Aggregate<Services = ()>,
    B::Error: Refusal,
{
    let executed = state
        .commands
        .execute_pair_from::<A, B>(
            (&first_id.to_string(), first),
            (&second_id.to_string(), second),
            (&(), &()),
            ctx,
        )
        .await
        .map_err(|error| {
            ApiError::from_command(error, |refusal| match refusal {
                Either::First(refusal) => ApiError::refused(&refusal),
                Either::Second(refusal) => ApiError::refused(&refusal),
            })
        })?;
    let mut events = executed.0.events.clone();
    events.extend(executed.1.events.iter().cloned());
    events.sort_by_key(|event| event.position);
    follow(state, &events).await?;
    Ok(executed)
}

/// A left message: the queue records it (`TakeMessage`) and the conversation that holds its
/// words starts, in one append (both or neither).
pub async fn leave_message(
    state: &AppState,
    queue_id: Uuid,
    conversation_id: Uuid,
    metadata: CustomerMetadata,
    text: domain::values::MessageText,
    ctx: &CommandContext,
) -> Result<(), ApiError> {
    let take = QueueCommand::TakeMessage { conversation_id };
    let start = |decided: &[domain::queue::QueueEvent]| {
        decided.iter().find_map(|event| match event {
            domain::queue::QueueEvent::MessageLeft {
                queue_id,
                organization_id,
                conversation_id,
            } => Some(domain::conversation::ConversationCommand::LeaveMessage {
                conversation_id: *conversation_id,
                organization_id: *organization_id,
                queue_id: *queue_id,
                metadata: metadata.clone(),
                message_id: Uuid::new_v5(conversation_id, b"left message"),
                text: text.clone(),
            }),
            _ => None,
        })
    };
    run_pair_with::<Queue, Conversation>(state, (queue_id, take), (conversation_id, start), ctx)
        .await?;
    Ok(())
}

/// [`run_pair`] with the second command made from what the first decided: [`run_pair_from`]
/// without the first stream's state.
pub async fn run_pair_with<A, B>(
    state: &AppState,
    first: (Uuid, A::Command),
    (second_id, second): (Uuid, impl Fn(&[A::Event]) -> Option<B::Command>),
    ctx: &CommandContext,
) -> Result<(Executed<A>, Executed<B>), ApiError>
where
    A: domain::Snapshot + Aggregate<Services = ()>,
    A::Command: Clone,
    A::Error: Refusal,
    B: domain::Snapshot + Aggregate<Services = ()>,
    B::Error: Refusal,
{
    run_pair_from::<A, B>(
        state,
        first,
        (second_id, move |_: &A, decided: &[A::Event]| {
            second(decided)
        }),
        ctx,
    )
    .await
}

/// [`run`], with the domain's refusal given back as it is, for a caller that decides on it.
pub async fn refusable<A>(
    state: &AppState,
    id: Uuid,
    command: A::Command,
    ctx: &CommandContext,
) -> Result<Result<Executed<A>, A::Error>, ApiError>
where
    A: domain::Snapshot + Aggregate<Services = ()>,
    A::Command: Clone,
    A::Error: Refusal,
{
    match state
        .commands
        .execute::<A>(&id.to_string(), command, &(), ctx)
        .await
    {
        Ok(executed) => {
            follow(state, &executed.events).await?;
            Ok(Ok(executed))
        }
        Err(CommandError::Rejected(refusal)) => Ok(Err(refusal)),
        Err(error) => Err(ApiError::from_command(error, |refusal| {
            ApiError::refused(&refusal)
        })),
    }
}
