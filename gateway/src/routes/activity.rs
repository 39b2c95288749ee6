//! The activity feed: what happened in the agent's organizations, oldest first, by the global
//! log's position. Which events, and which direct chats, an agent may see is the read model's
//! question (`activity_for`); this only pages it.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use projections::queries::{self, ActivityItem};

use crate::auth::AgentCaller;
use crate::error::ApiError;
use crate::extract::{PageQuery, Params};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/activity", get(activity))
}

async fn activity(
    State(state): State<AppState>,
    agent: AgentCaller,
    Params(query): Params<PageQuery>,
) -> Result<Json<Vec<ActivityItem>>, ApiError> {
    // A position is never negative: such a cursor is malformed (400), as any other.
    let page = query.parse::<u64>()?;
    let after = i64::try_from(page.after.unwrap_or(0))
        .map_err(|_| ApiError::BadRequest("the cursor is past any position".into()))?;
    let limit = i64::try_from(page.limit).unwrap_or(queries::MAX_PAGE);
    let two_factor = crate::second_factor::enabled(state.backend(), agent.agent_id).await?;
    let items =
        queries::activity_for(state.backend(), agent.agent_id, two_factor, after, limit).await?;
    Ok(Json(items))
}
