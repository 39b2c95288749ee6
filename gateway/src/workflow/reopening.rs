//! Reopening an ended conversation: by an agent (`reopen`), or by its customer writing again
//! (`send_message`, the reopening and then the message). The conversation decides both; the
//! agent it goes back to has its workload take it in the same append.

use domain::conversation::{Conversation, ConversationCommand, ConversationError};
use domain::queue::Queue;
use domain::values::Author;
use domain::workload::{Workload, WorkloadCommand};
use store::command::{CommandContext, CommandError, Either, Executed};
use uuid::Uuid;

use super::{follow, run};
use crate::error::ApiError;
use crate::state::AppState;

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

/// [`reopen`], with the conversation's refusal given back as it is, as
/// [`super::refusable`] gives a refusal back.
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
