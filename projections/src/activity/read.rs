//! What the HTTP layer asks of the activity read model's tables (the activity feed): each function
//! answers one question of API.md from the `rm_` tables alone (never the log), as plain
//! serializable structs. Authorization is the caller's: these functions say what is, not who
//! may see it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::log::Backend;
use uuid::Uuid;

use crate::database::fetch_all;
use crate::params;
use crate::reading::{id, opt_id, page, time, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityItem {
    pub position: i64,
    pub at: DateTime<Utc>,
    pub organization_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
}

/// `GET /v1/activity`: a page of what happened in the agent's organizations after
/// `after_position`, oldest first; direct chats' messages only of the agent's own.
/// `two_factor`: whether the agent's account has a second factor; without one, what happens in
/// an organization that requires one is not shown (the organization refuses the agent there).
pub async fn activity_for(
    backend: &Backend,
    agent_id: Uuid,
    two_factor: bool,
    after_position: i64,
    limit: i64,
) -> Result<Vec<ActivityItem>> {
    type Row = (
        i64,
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = fetch_all(
        backend,
        "SELECT position, at, organization_id, type, queue_id, conversation_id, agent_id
         FROM rm_activity
         WHERE position > $1
         AND organization_id IN (SELECT organization_id FROM rm_memberships WHERE agent_id = $2)
         AND (participant_a IS NULL OR participant_a = $2 OR participant_b = $2)
         AND ($4 = 1 OR organization_id NOT IN
              (SELECT organization_id FROM rm_org_sign_in WHERE two_factor_required = 1))
         ORDER BY position LIMIT $3",
        params![after_position, agent_id, page(limit), i64::from(two_factor)],
    )
    .await?;
    rows.into_iter()
        .map(|(position, at, org, kind, queue, conversation, agent)| {
            Ok(ActivityItem {
                position,
                at: time(at)?,
                organization_id: id(&org)?,
                kind,
                queue_id: opt_id(queue.as_deref())?,
                conversation_id: opt_id(conversation.as_deref())?,
                agent_id: opt_id(agent.as_deref())?,
            })
        })
        .collect()
}
