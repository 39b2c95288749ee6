//! Returning customers' identities: a queue's identity secret, which its operators read, rotate
//! and remove (kept outside the log), and the check of the identity a join brings against it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use domain::metadata::VerifiedCustomer;
use uuid::Uuid;

use super::find_as_operator;
use super::wire::{self, IdentitySecret};
use crate::auth::AgentCaller;
use crate::error::ApiError;
use crate::identity;
use crate::openapi::Route;
use crate::secrets;
use crate::state::AppState;

/// The identity secret.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/v1/queues/{queue}/identity-secret", identity_secret)
            .id("identitySecret")
            .summary("A queue's identity secret")
            .describe(
                "Operators. What the queue's site signs its users' identities with (README, \
                 Returning customers); kept outside the log.",
            )
            .returns::<wire::IdentitySecret>(200, "The secret, or `null` while there is none."),
        Route::post("/v1/queues/{queue}/identity-secret", rotate_identity_secret)
            .id("rotateIdentitySecret")
            .summary("Make a new identity secret")
            .describe(
                "Operators. Replaces the one before: identities signed with it are no longer \
                 verified.",
            )
            .returns::<wire::IdentitySecret>(201, "The new secret."),
        Route::delete("/v1/queues/{queue}/identity-secret", remove_identity_secret)
            .id("removeIdentitySecret")
            .summary("Remove the identity secret")
            .describe(
                "Operators. Identities are ignored (`not_enabled`) until a new secret is made.",
            )
            .no_content("Removed (or there was none)."),
    ]
}

/// The queue's identity secret, for its operators (`null` while it has none).
async fn identity_secret(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
) -> Result<impl IntoResponse, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let secret = identity::secret(state.backend(), queue.id).await?;
    Ok(Json(IdentitySecret::from(secret)))
}

/// A new identity secret for the queue, replacing the one before (signatures made with it are
/// no longer verified).
async fn rotate_identity_secret(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
) -> Result<impl IntoResponse, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let secret = identity::rotate(state.backend(), queue.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(IdentitySecret::from(Some(secret))),
    ))
}

/// No identity secret: identities are ignored (`not_enabled`) until a new one is made.
async fn remove_identity_secret(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
) -> Result<impl IntoResponse, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    identity::remove(state.backend(), queue.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The identity of a join: the verified customer, and what the answer says of it (`None`
/// when the join brought none).
pub(super) async fn check_identity(
    state: &AppState,
    queue_id: Uuid,
    claim: Option<&identity::Claim>,
) -> Result<(Option<VerifiedCustomer>, Option<identity::Check>), ApiError> {
    let Some(claim) = claim else {
        return Ok((None, None));
    };
    let secret = identity::secret(state.backend(), queue_id).await?;
    let checked = identity::verify(
        secret.as_ref().map(|secret| secret.secret.as_str()),
        claim,
        Utc::now().timestamp(),
    );
    match checked {
        Ok((user_id, name)) => {
            let key = secrets::customer_ref_secret(state.backend()).await?;
            let customer = VerifiedCustomer {
                customer_ref: domain::ids::customer_ref(key, queue_id, &user_id),
                user_id,
                name,
            };
            Ok((Some(customer), Some(identity::Check::Verified)))
        }
        Err(check) => Ok((None, Some(check))),
    }
}
