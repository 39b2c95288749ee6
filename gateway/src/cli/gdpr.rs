//! `jono gdpr erase --customer CONVERSATION-ID|CUSTOMER-REF --org ORG-ID`: the operators'
//! erasure (`POST /v1/orgs/{org}/erasures`) from the command line, by the system. An id that
//! is a conversation of the organization erases its customer; otherwise it is taken as a
//! verified customer's `customer_ref`, and every conversation the read models link to it is
//! erased. Prints one line per conversation erased.

use std::fmt::Write as _;

use domain::conversation::{Conversation, ErasureReason};
use domain::values::Author;
use store::command::CommandContext;
use store::log::EventStore;
use uuid::Uuid;

use super::Failure;
use crate::blobs::Blobs;
use crate::config::StoreConfig;
use crate::erasure;
use crate::state::AppState;

pub async fn erase(
    store: EventStore,
    config: &StoreConfig,
    customer: &str,
    org: &str,
) -> Result<String, Failure> {
    let organization_id: Uuid = org
        .trim()
        .parse()
        .map_err(|_| Failure(format!("--org {org:?} is not an id")))?;
    let id: Uuid = customer
        .trim()
        .parse()
        .map_err(|_| Failure(format!("--customer {customer:?} is not an id")))?;
    let mut state = AppState::new(store);
    // The attachments' bytes are where `jono serve` keeps them.
    if let StoreConfig::Embedded(dir) = config {
        state.blobs = Blobs::in_data_dir(dir)
            .await
            .map_err(|error| Failure(format!("cannot open the attachments folder: {error}")))?;
    }
    let (found, _) = state
        .commands
        .load::<Conversation>(&id.to_string())
        .await
        .map_err(|error| Failure(error.to_string()))?;
    let conversations = if found.id.is_some() {
        if found.organization_id != organization_id {
            return Err(Failure(format!(
                "conversation {id} is not of organization {organization_id}"
            )));
        }
        vec![id]
    } else {
        let linked = projections::conversations::read::conversations_of_customer(
            state.backend(),
            organization_id,
            id,
        )
        .await
        .map_err(|error| Failure(error.to_string()))?;
        if linked.is_empty() {
            return Err(Failure(format!(
                "{id} is neither a conversation of organization {organization_id} nor a customer_ref with conversations there (read models as `jono serve` last left them)"
            )));
        }
        linked
    };
    let ctx = CommandContext {
        actor: Some(serde_json::json!({"kind": "admin"})),
        idempotency: None,
    };
    let mut out = String::new();
    for conversation_id in conversations {
        let done = erasure::erase_conversation(
            &state,
            organization_id,
            conversation_id,
            Author::system(),
            ErasureReason::Request,
            &ctx,
        )
        .await
        .map_err(|error| Failure(format!("conversation {conversation_id}: {error}")))?;
        let what = if done.erased_now {
            "erased"
        } else {
            "erased already"
        };
        let _ = writeln!(
            out,
            "{what}: conversation {conversation_id} at {}",
            done.at.to_rfc3339()
        );
    }
    Ok(out)
}
