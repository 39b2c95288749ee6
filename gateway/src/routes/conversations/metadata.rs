//! What is known of a conversation's customer: its metadata (set by agents or the customer) and
//! its live metadata (the customer's page, last value wins).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use domain::conversation::{Conversation as ConversationStream, ConversationCommand};
use domain::metadata::{CustomerMetadata, LiveMetadata};
use serde_json::{Map, Value};

use super::{author_of, Key};
use crate::access;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{path_id, Body};
use crate::limits;
use crate::openapi::Route;
use crate::state::AppState;
use crate::workflow::{self, context};

/// The customer's metadata.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::put("/v1/conversations/{c}/metadata", set_metadata)
            .id("setMetadata")
            .summary("Set customer metadata")
            .describe(
                "Agent participants, or its customer. The body is the whole metadata object \
                 (at most 16 KiB).",
            )
            .object_body()
            .no_content("Set."),
        Route::post("/v1/conversations/{c}/live", update_live)
            .id("updateLive")
            .summary("Update live metadata")
            .describe(
                "Its customer. Last value wins. A string value that begins with a URI scheme \
                 must use http or https (422).",
            )
            .object_body()
            .no_content("Updated."),
    ]
}

/// Agents of the conversation or its customer; the body is the whole metadata object.
async fn set_metadata(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<Map<String, Value>>,
) -> Result<StatusCode, ApiError> {
    limits::customer_command(&state, &caller).await?;
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    let metadata = CustomerMetadata::parse(Value::Object(body))?;
    let by = author_of(&state, &caller, &conversation).await?;
    let set = ConversationCommand::SetCustomerMetadata { metadata, by };
    workflow::run::<ConversationStream>(
        &state,
        conversation.id,
        set,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Its customer only: what page it is on, and so on.
async fn update_live(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Key,
    Body(body): Body<Map<String, Value>>,
) -> Result<StatusCode, ApiError> {
    limits::customer_command(&state, &caller).await?;
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    if !matches!(caller, Caller::Customer(_)) {
        return Err(ApiError::Forbidden("only the customer may do this".into()));
    }
    let live = LiveMetadata::parse(Value::Object(body))?;
    let by = author_of(&state, &caller, &conversation).await?;
    let update = ConversationCommand::UpdateLiveMetadata { live, by };
    workflow::run::<ConversationStream>(
        &state,
        conversation.id,
        update,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
