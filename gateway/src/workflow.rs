//! Running a command for a route: the caller and its idempotency key go into the log with the
//! events, and the process manager's follow-ups run at once (join → conversation, pick → its
//! agent, …), so the answer comes when all of it is durable. It does not wait for the read
//! models: the reads that follow wait for them (`consistency`, API.md's Consistency rule).
//!
//! Work that spans streams is orchestrated here, not in the routes: a join and the start of
//! its conversation, a pick and the agent's workload (`give`), a reopening (`reopen`, and a
//! customer's message to its ended conversation, `send_message`), a left message, a
//! transfer (`transfer`: the source line, the target line and the conversation in one append)
//! and an end (`end`: a waiting customer leaves its line first). The aggregates decide every
//! rule; a route parses, authorizes, calls one of these, and maps the answer.

use std::time::Duration;

use cqrs_es::Aggregate;
use domain::conversation::{
    Conversation, ConversationCommand, ConversationError, EndFrom, EndReason, TransferFrom,
};
use domain::metadata::{CustomerMetadata, VerifiedCustomer};
use domain::queue::{LeaveReason, Queue, QueueCommand, QueueError, QueueEvent};
use domain::values::Author;
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

/// A reopening (`ConversationCommand::Reopen`) whose conversation goes to `agent_id`: the
/// conversation's `ConversationReopened` and that agent's workload taking it are one append,
/// so a reopened conversation counts toward the agent's open conversations as a pick does. Its
/// capacity does not refuse it: an agent who reopens, or whose customer writes again, keeps
/// the conversation whatever its load. Should the conversation decide for another agent than
/// `agent_id` (it moved meanwhile), only the reopening is appended.
pub async fn reopen(
    state: &AppState,
    conversation_id: Uuid,
    organization_id: Uuid,
    agent_id: Uuid,
    command: ConversationCommand,
    ctx: &CommandContext,
) -> Result<(), ApiError> {
    reopen_refusable(
        state,
        conversation_id,
        organization_id,
        agent_id,
        command,
        ctx,
    )
    .await?
    .map_err(|refusal| ApiError::refused(&refusal))
}

/// [`reopen`], with the conversation's refusal given back as it is (as [`refusable`] does).
async fn reopen_refusable(
    state: &AppState,
    conversation_id: Uuid,
    organization_id: Uuid,
    agent_id: Uuid,
    command: ConversationCommand,
    ctx: &CommandContext,
) -> Result<Result<(), ConversationError>, ApiError> {
    use domain::conversation::ConversationEvent;
    let workload_id = domain::ids::workload_id(organization_id, agent_id);
    let take = move |_: &Conversation, decided: &[ConversationEvent]| {
        decided.iter().find_map(|event| match event {
            ConversationEvent::ConversationReopened {
                conversation_id,
                organization_id,
                queue_id: Some(queue_id),
                agent_id: taker,
                ..
            } if *taker == agent_id => Some(WorkloadCommand::Take {
                organization_id: *organization_id,
                agent_id,
                conversation_id: *conversation_id,
                queue_id: *queue_id,
                capacity: None,
                at: chrono::Utc::now(),
            }),
            _ => None,
        })
    };
    let reopened = state
        .commands
        .execute_pair_from::<Conversation, Workload>(
            (&conversation_id.to_string(), command),
            (&workload_id.to_string(), take),
            (&(), &()),
            ctx,
        )
        .await;
    match reopened {
        Ok((reopened, taken)) => {
            let mut events = [reopened.events, taken.events].concat();
            events.sort_by_key(|event| event.position);
            follow(state, &events).await?;
            Ok(Ok(()))
        }
        Err(CommandError::Rejected(Either::First(refusal))) => Ok(Err(refusal)),
        Err(error) => Err(ApiError::from_command(error, |refusal| match refusal {
            Either::First(refusal) => ApiError::refused(&refusal),
            Either::Second(refusal) => ApiError::refused(&refusal),
        })),
    }
}

/// A message by `author` to `conversation_id`, which the read model shows as `seen_ended` or
/// not. A customer who writes again after the end continues the conversation first: it is
/// reopened ([`reopen`]) with the agent it had, whose workload takes it again, if its queue's
/// `reopen_window_seconds` allows (the conversation decides: `ReopenWindowPassed` is 409, and
/// the widget starts a new conversation). When another of its messages reopened it meanwhile,
/// the conversation refuses this reopening as `NotEnded` and the message is sent. Only what
/// the read model shows ended is tried, so a message to an open conversation costs no load; one
/// that ended since the read is refused by the send as ended. The request's Idempotency-Key
/// (`ctx`) is the message's: the reopening takes none, and a repeat of the request finds the
/// conversation open.
pub async fn send_message(
    state: &AppState,
    conversation_id: Uuid,
    seen_ended: bool,
    author: &Author,
    text: Option<domain::values::MessageText>,
    attachments: Vec<Uuid>,
    ctx: &CommandContext,
) -> Result<Executed<Conversation>, ApiError> {
    if seen_ended && author.is_customer() {
        let (conversation, _) = state
            .commands
            .load::<Conversation>(&conversation_id.to_string())
            .await?;
        let within_seconds = match conversation.queue_id {
            Some(queue_id) => {
                let (queue, _) = state.commands.load::<Queue>(&queue_id.to_string()).await?;
                queue
                    .settings
                    .and_then(|settings| settings.reopen_window_seconds)
                    .map(domain::values::Limit::get)
            }
            None => None,
        };
        let reopen = ConversationCommand::Reopen {
            by: author.clone(),
            at: chrono::Utc::now(),
            within_seconds,
        };
        let unkeyed = CommandContext {
            actor: ctx.actor.clone(),
            idempotency: None,
        };
        let reopened = reopen_refusable(
            state,
            conversation_id,
            conversation.organization_id,
            conversation.agent_id.unwrap_or_default(),
            reopen,
            &unkeyed,
        )
        .await?;
        match reopened {
            Ok(()) | Err(ConversationError::NotEnded) => {}
            Err(refusal) => return Err(ApiError::refused(&refusal)),
        }
    }
    let send = ConversationCommand::SendMessage {
        message_id: Uuid::new_v4(),
        author: author.clone(),
        text,
        attachments,
    };
    run::<Conversation>(state, conversation_id, send, ctx).await
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

/// How many times a transfer or an end looks again at where its conversation is, when a stream
/// it decided on says the conversation moved meanwhile (picked while it was transferred out of
/// its line, transferred while it ended), and how long it waits between two looks: a pick's
/// follow-up may still be on its way to the conversation's stream.
const MOVE_ATTEMPTS: usize = 20;
const MOVE_RETRY: Duration = Duration::from_millis(50);

/// Transfers `conversation_id` to queue `to_queue_id`, first in its line, for `by`. The
/// conversation says where the move starts (`Conversation::transfer_from`); then the streams
/// involved decide together, in one append: a customer who waits leaves its line
/// (`TransferAcross`), arrives in the target's (`TransferIn`, which a closed queue refuses) and
/// its conversation waits there (`Requeue`); a picked conversation arrives in the target's line
/// and waits there, still with the agent it was seen with. A transfer can therefore never put a
/// customer into a line that closed before it, nor into two lines, nor leave it in none. When
/// the source said the customer no longer waits there (picked meanwhile) or the conversation
/// that it is no longer with that agent, it looks again and transfers what it is now.
pub async fn transfer(
    state: &AppState,
    conversation_id: Uuid,
    to_queue_id: Uuid,
    by: &Author,
    ctx: &CommandContext,
) -> Result<(), ApiError> {
    let stream = conversation_id.to_string();
    let target = to_queue_id.to_string();
    for attempt in 0..MOVE_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(MOVE_RETRY).await;
        }
        let (conversation, _) = state.commands.load::<Conversation>(&stream).await?;
        let from = conversation
            .transfer_from(to_queue_id)
            .map_err(|refusal| ApiError::refused(&refusal))?;
        let transfer_id = Uuid::new_v4();
        let (from_queue_id, from_agent_id) = match from {
            TransferFrom::Line { queue_id } => (queue_id, None),
            TransferFrom::Agent { queue_id, agent_id } => (queue_id, agent_id),
        };
        let arrive = QueueCommand::TransferIn {
            transfer_id,
            conversation_id,
            organization_id: conversation.organization_id,
            from_queue_id,
            from_agent_id,
            by: Some(by.clone()),
        };
        let requeue = ConversationCommand::Requeue {
            queue_id: to_queue_id,
            transfer_id,
            from_agent_id,
        };
        let events = match from {
            TransferFrom::Line { queue_id } => {
                let leave = QueueCommand::TransferAcross {
                    conversation_id,
                    to_queue_id,
                    transfer_id,
                    by: Some(by.clone()),
                };
                let moved = state
                    .commands
                    .execute_three::<Queue, Queue, Conversation>(
                        (&queue_id.to_string(), leave),
                        (&target, arrive),
                        (&stream, requeue),
                        (&(), &(), &()),
                        ctx,
                    )
                    .await;
                match moved {
                    Ok((left, arrived, requeued)) => {
                        [left.events, arrived.events, requeued.events].concat()
                    }
                    // Picked (or gone) since the conversation was read: look again.
                    Err(CommandError::Rejected(Either::First(QueueError::NotWaiting))) => continue,
                    Err(error) => {
                        return Err(ApiError::from_command(error, |refusal| match refusal {
                            Either::First(refusal) => ApiError::refused(&refusal),
                            Either::Second(Either::First(refusal)) => ApiError::refused(&refusal),
                            Either::Second(Either::Second(refusal)) => ApiError::refused(&refusal),
                        }))
                    }
                }
            }
            TransferFrom::Agent { .. } => {
                let moved = state
                    .commands
                    .execute_pair::<Queue, Conversation>(
                        (&target, arrive),
                        (&stream, requeue),
                        (&(), &()),
                        ctx,
                    )
                    .await;
                match moved {
                    Ok((arrived, requeued)) => [arrived.events, requeued.events].concat(),
                    // Transferred by someone else, or given to another agent, meanwhile.
                    Err(CommandError::Rejected(Either::Second(
                        ConversationError::NoLongerWithAgent,
                    ))) => continue,
                    Err(error) => {
                        return Err(ApiError::from_command(error, |refusal| match refusal {
                            Either::First(refusal) => ApiError::refused(&refusal),
                            Either::Second(refusal) => ApiError::refused(&refusal),
                        }))
                    }
                }
            }
        };
        follow(state, &events).await?;
        return Ok(());
    }
    Err(ApiError::Conflict(
        "the conversation kept changing while it was transferred; try again".into(),
    ))
}

/// Ends `conversation_id` for `by`. A customer who waits is in its queue's line, and the queue
/// is the only authority on who waits (invariant 2): it leaves the line first (`abandoned` when
/// it is the customer who ends, `removed` when an agent does), and the conversation ends as the
/// leave's follow-up. If that queue says it no longer waits there (picked meanwhile), the
/// conversation is ended naming that queue, which the conversation refuses (`StillWaiting`)
/// when a transfer has put it in another line meanwhile: then it leaves that line.
pub async fn end(
    state: &AppState,
    conversation_id: Uuid,
    by: &Author,
    ctx: &CommandContext,
) -> Result<(), ApiError> {
    let stream = conversation_id.to_string();
    for attempt in 0..MOVE_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(MOVE_RETRY).await;
        }
        let (conversation, _) = state.commands.load::<Conversation>(&stream).await?;
        let from = conversation
            .end_from()
            .map_err(|refusal| ApiError::refused(&refusal))?;
        let mut left_queue = None;
        if let EndFrom::Line { queue_id } = from {
            let reason = if by.is_customer() {
                LeaveReason::Abandoned
            } else {
                LeaveReason::Removed
            };
            let leave = QueueCommand::LeaveQueue {
                conversation_id,
                reason,
                by: Some(by.clone()),
            };
            match refusable::<Queue>(state, queue_id, leave, ctx).await? {
                // The end is the leave's follow-up, run by this request or (found done) by
                // the background process manager before it: durable either way.
                Ok(_) => return Ok(()),
                Err(QueueError::NotWaiting) => left_queue = Some(queue_id),
                Err(refusal) => return Err(ApiError::refused(&refusal)),
            }
        }
        let end = ConversationCommand::EndConversation {
            by: by.clone(),
            reason: EndReason::Ended,
            left_queue,
            at: Some(chrono::Utc::now()),
        };
        match refusable::<Conversation>(state, conversation_id, end, ctx).await? {
            Ok(_) => return Ok(()),
            // Waiting in a line after all (a transfer landed meanwhile): leave that line.
            Err(ConversationError::StillWaiting) => {}
            Err(refusal) => return Err(ApiError::refused(&refusal)),
        }
    }
    Err(ApiError::Conflict(
        "the conversation kept moving between queues while it was ended; try again".into(),
    ))
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
