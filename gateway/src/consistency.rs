//! API.md's Consistency rule (invariant 11, "reads wait, writes don't"): a command is answered
//! once its events and follow-ups are durable, without waiting for the read models; a read
//! reflects every command answered before it began, so it is the read that waits — bounded,
//! and usually not at all — until the read models have reached the log's last position.
//!
//! - Every `GET` of the API notes that position when it begins and waits for it ([`reads_wait`]).
//! - A command's own lookups wait only when they must: a thing not found, or a caller not a
//!   member, may have been made a moment ago, so that answer is checked again at the log's
//!   position ([`found`]); a yes to an access question waits only for the last change that could
//!   have taken the access away ([`wait_for_stream`]: the organization's stream for members and
//!   roles), never for everybody's writes. Tokens are rows outside the log, ended at once.

use std::future::Future;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;

/// The position every read model has reached now (0 while one is not running): a read begun
/// after this shows everything up to it.
pub fn reached(state: &AppState) -> i64 {
    state.projections.reached()
}

/// Waits until the read models have reached the log's last committed position now.
pub async fn catch_up(state: &AppState) -> Result<(), ApiError> {
    let position = state.store.last_committed().await?;
    state.wait_for_read_models(position).await;
    Ok(())
}

/// Waits until the read models show the last event of one stream: every change that stream
/// decides (an organization's members and roles, a queue's handlers and settings) answered
/// before now.
pub async fn wait_for_stream(
    state: &AppState,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<(), ApiError> {
    let position = state
        .store
        .stream_last_position(aggregate_type, aggregate_id)
        .await?;
    state.wait_for_read_models(position).await;
    Ok(())
}

/// Reads something from the read models; if it is not there, it may have been made by a
/// command answered a moment ago: waits until the read models have reached the log's last
/// position and reads once more.
pub async fn found<T, F, Fut>(state: &AppState, read: F) -> Result<Option<T>, ApiError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<T>, ApiError>>,
{
    if let Some(found) = read().await? {
        return Ok(Some(found));
    }
    catch_up(state).await?;
    read().await
}

/// The layer that makes the API's reads wait: a `GET` (or `HEAD`) under `/v1/` waits, before
/// its handler reads anything (its caller's token included), until the read models have
/// reached the log's position at its start. The probes, the console's files and everything
/// else outside `/v1/` read no read model and do not wait.
pub async fn reads_wait(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD)
        && request.uri().path().starts_with("/v1/");
    if reads {
        if let Err(error) = catch_up(&state).await {
            // The read that follows meets the same store and answers for itself.
            tracing::warn!(%error, "a read cannot learn the log's position");
        }
    }
    next.run(request).await
}
