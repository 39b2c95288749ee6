//! Erasing a customer's personal data (GDPR; issue 17). One door for the operators' route
//! (`POST /v1/orgs/{org}/erasures`), `jono gdpr erase` and the retention duty (`sweeper`):
//! [`erase_conversation`] has the conversation decide (`EraseCustomer`: a customer conversation
//! only, ended first when it was not, once), then [`after_erased`] deletes what the gateway
//! keeps of it outside the log — the attachments' bytes, the kept idempotent answers about it,
//! the webhook deliveries of its events still owed, its customer's tokens (its sockets closed)
//! and the hash of the address it joined from — and has the store forget its personal data.
//!
//! The read models blank their rows when they meet `CustomerErased`, each in its own
//! transaction (`projections`). The process manager runs [`after_erased`] again when it meets
//! `CustomerErased` in the log, so a crash between the event and the clean-up (or a clean-up
//! that failed) is finished later: every step is idempotent.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::conversation::{
    Conversation, ConversationCommand, ConversationError, ConversationEvent, ConversationKind,
    ErasureReason, Status,
};
use domain::values::Author;
use store::command::CommandContext;
use uuid::Uuid;

use crate::consistency;
use crate::error::ApiError;
use crate::live::CloseOrder;
use crate::secrets;
use crate::state::AppState;
use crate::workflow;
use store::webhook_deliveries as webhook_table;

/// How often a customer still in a line is taken out of it and the erasure tried again (a
/// transfer may move it between lines meanwhile; `workflow::end` waits between its own tries).
const ATTEMPTS: usize = 5;
/// Events read back at a time when looking for the webhook deliveries of a conversation.
const DELIVERY_BATCH: usize = 500;

/// What one erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub conversation_id: Uuid,
    /// When the conversation was erased: now, or when it was erased before.
    pub at: DateTime<Utc>,
    /// Whether this call erased it (false: it was erased already).
    pub erased_now: bool,
}

/// Erases the customer of `conversation_id` in `organization_id` on behalf of `by` (an
/// operator, or `Author::system()` for the command line and the retention duty): 404 for a
/// conversation that is not the organization's, 409 for a channel or a direct chat. A
/// conversation erased already is answered as erased (nothing appended), and its clean-up is
/// run again.
pub async fn erase_conversation(
    state: &AppState,
    organization_id: Uuid,
    conversation_id: Uuid,
    by: Author,
    reason: ErasureReason,
    ctx: &CommandContext,
) -> Result<Erasure, ApiError> {
    let stream = conversation_id.to_string();
    let mut outcome = None;
    for _ in 0..ATTEMPTS {
        let (now, _) = state.commands.load::<Conversation>(&stream).await?;
        if now.id.is_none() || now.organization_id != organization_id {
            return Err(ApiError::NotFound);
        }
        // A customer in a line is ended first, as an agent's end does it (the queue decides
        // that it leaves its line; `workflow::end`); a picked one the erasure itself ends.
        if let (Some(ConversationKind::Customer), Some(Status::Waiting)) = (now.kind, now.status) {
            workflow::end(state, conversation_id, &by, ctx).await?;
        }
        let erase = ConversationCommand::EraseCustomer {
            by: by.clone(),
            reason,
            at: Utc::now(),
        };
        match workflow::refusable::<Conversation>(state, conversation_id, erase, ctx).await? {
            Ok(executed) => {
                let erased_at = executed.typed.iter().find_map(|event| match event {
                    ConversationEvent::CustomerErased { at, .. } => Some(*at),
                    _ => None,
                });
                outcome = Some(match erased_at {
                    Some(at) => Erasure {
                        conversation_id,
                        at,
                        erased_now: true,
                    },
                    None => Erasure {
                        conversation_id,
                        at: erased_before(state, conversation_id)
                            .await?
                            .unwrap_or_else(Utc::now),
                        erased_now: false,
                    },
                });
                state
                    .wait_for_read_models(workflow::last_position(&executed))
                    .await;
                break;
            }
            // In a line again (a transfer landed meanwhile): ended from there, then erased.
            Err(ConversationError::StillWaiting) => {}
            Err(refusal) => return Err(ApiError::refused(&refusal)),
        }
    }
    let erasure = outcome.ok_or_else(|| {
        ApiError::Conflict(
            "the conversation kept moving between queues while it was erased; try again".into(),
        )
    })?;
    after_erased(state, conversation_id).await?;
    Ok(erasure)
}

/// When `conversation_id` was erased, as its read model says (an erasure answered again).
async fn erased_before(
    state: &AppState,
    conversation_id: Uuid,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    Ok(
        projections::conversations::read::conversation(state.backend(), conversation_id)
            .await?
            .and_then(|conversation| conversation.erased_at),
    )
}

/// Deletes what the gateway keeps of the erased `conversation_id` outside the log, and has the
/// store forget its personal data. Idempotent: run after each erasure and again by the process
/// manager for each `CustomerErased` it meets. A conversation that is not erased is left
/// alone (nothing is deleted for a repeat that comes too early).
pub async fn after_erased(state: &AppState, conversation_id: Uuid) -> Result<(), ApiError> {
    let (conversation, _) = state
        .commands
        .load::<Conversation>(&conversation_id.to_string())
        .await?;
    if !conversation.erased {
        return Ok(());
    }
    let organization_id = conversation.organization_id;
    // The customer's access ends, and its sockets close.
    for token_hash in secrets::revoke_customer_tokens(state.backend(), conversation_id).await? {
        state.live.close(CloseOrder::Token(token_hash));
    }
    secrets::forget_visitor(state.backend(), conversation_id).await?;
    // The files' bytes (their names are blanked by the read models and the aggregate).
    for attachment_id in conversation.attachments.keys() {
        state
            .blobs
            .delete(*attachment_id)
            .await
            .map_err(|error| ApiError::Unavailable(error.to_string()))?;
    }
    // Kept answers about it (its customer's requests, and agents' under its path).
    secrets::forget_responses_of(state.backend(), conversation_id).await?;
    forget_webhook_deliveries(state, organization_id, conversation_id).await?;
    // The log's side (`store::seal`): the subject's key destroyed, so its sealed fields read as
    // erased everywhere from now on; its events from before sealing rewritten; its snapshots
    // dropped. Then, once the read models show the erasure, no old page of the files is left.
    let subject = conversation_id.to_string();
    let erased = state.store.erase_subject(&subject).await?;
    consistency::wait_for_stream(state, Conversation::TYPE, &subject).await?;
    state.store.compact_after_erasure(erased).await?;
    Ok(())
}

/// Forgets the webhook deliveries still owed (or parked) of the conversation's events: the
/// deliveries hold positions, so the events at them are read back to find the conversation's.
async fn forget_webhook_deliveries(
    state: &AppState,
    organization_id: Uuid,
    conversation_id: Uuid,
) -> Result<(), ApiError> {
    let owed = webhook_table::owed_positions(state.backend(), organization_id).await?;
    let wanted = conversation_id.to_string();
    for positions in owed.chunks(DELIVERY_BATCH) {
        for event in state.store.read_positions(positions).await? {
            let of_it = event.aggregate_id == wanted
                || event
                    .payload
                    .get("conversation_id")
                    .and_then(serde_json::Value::as_str)
                    == Some(wanted.as_str());
            if of_it {
                webhook_table::forget_position(state.backend(), organization_id, event.position)
                    .await?;
            }
        }
    }
    Ok(())
}
