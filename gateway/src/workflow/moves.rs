//! Moving a conversation between lines and out of them: a transfer (the source line, the target
//! line and the conversation in one append) and an end (a waiting customer leaves its line
//! first). Each reads where the conversation is, lets the streams involved decide, and looks
//! again when one of them says it moved meanwhile.

use std::time::Duration;

use domain::conversation::{
    Conversation, ConversationCommand, ConversationError, EndFrom, EndReason, TransferFrom,
};
use domain::queue::{LeaveReason, Queue, QueueCommand, QueueError};
use domain::values::Author;
use store::command::{CommandContext, CommandError, Either};
use uuid::Uuid;

use super::{follow, refusable};
use crate::error::ApiError;
use crate::state::AppState;

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
