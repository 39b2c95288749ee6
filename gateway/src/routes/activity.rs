//! The activity feed: what happened in the agent's organizations, oldest first, by the global
//! log's position. Which events, and which direct chats, an agent may see is the read model's
//! question (`activity_for`); this only pages it.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::AgentCaller;
use crate::error::ApiError;
use crate::extract::{PageQuery, Params};
use crate::openapi::{Route, Routes};
use crate::routes::wire;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new("activity").route(
        Route::get("/v1/activity", activity)
            .id("activity")
            .summary("What happened in the caller's organizations")
            .describe("From the start of the log unless `after` says otherwise, oldest first.")
            .paged("the last item's `position`")
            .returns::<Vec<ActivityItem>>(200, "A page of activity."),
    )
}

/// The types the activity feed carries.
// The `activity` projector's, the conversations' start aside, which it keeps only to know who
// may see a channel or direct chat: a row of another type is a corrupt row (500), not a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ActivityType {
    CustomerJoinedQueue,
    CustomerLeftQueue,
    CustomerPicked,
    QueueOpened,
    QueueClosed,
    ConversationTransferred,
    ConversationEnded,
    MessageSent,
    MessageLeft,
    ConversationReopened,
    HandoffOffered,
    HandoffAccepted,
    HandoffDeclined,
    HandoffExpired,
}

#[derive(Serialize, JsonSchema)]
pub struct ActivityItem {
    /// The event's place in the global log: the cursor of this list.
    pub position: u64,
    pub at: DateTime<Utc>,
    pub organization_id: Uuid,
    #[serde(rename = "type")]
    pub kind: ActivityType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
}

impl TryFrom<projections::activity::read::ActivityItem> for ActivityItem {
    type Error = ApiError;

    fn try_from(row: projections::activity::read::ActivityItem) -> Result<Self, ApiError> {
        Ok(Self {
            position: u64::try_from(row.position).unwrap_or_default(),
            at: row.at,
            organization_id: row.organization_id,
            kind: wire::parse(&row.kind)?,
            queue_id: row.queue_id,
            conversation_id: row.conversation_id,
            agent_id: row.agent_id,
        })
    }
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
    let limit = i64::try_from(page.limit).unwrap_or(projections::MAX_PAGE);
    let two_factor = crate::second_factor::enabled(state.backend(), agent.agent_id).await?;
    let items = projections::activity::read::activity_for(
        state.backend(),
        agent.agent_id,
        two_factor,
        after,
        limit,
    )
    .await?;
    let items = items
        .into_iter()
        .map(ActivityItem::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(items))
}
