//! What the HTTP layer asks of the canned read model's tables (canned responses): each function
//! answers one question of API.md from the `rm_` tables alone (never the log), as plain
//! serializable structs. Authorization is the caller's: these functions say what is, not who
//! may see it.

use serde::Serialize;
use store::log::Backend;
use uuid::Uuid;

use crate::database::{fetch_all, fetch_optional};
use crate::params;
use crate::reading::{id, opt_id, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CannedResponse {
    pub id: Uuid,
    pub key: String,
    pub text: String,
    /// `None` for a personal response.
    pub organization_id: Option<Uuid>,
    /// The owner of a personal response; `None` for an organization's.
    #[serde(skip_serializing)]
    pub agent_id: Option<Uuid>,
}

type CannedRow = (String, String, String, Option<String>, Option<String>);

fn canned_from((response, key, text, org, agent): CannedRow) -> Result<CannedResponse> {
    Ok(CannedResponse {
        id: id(&response)?,
        key,
        text,
        organization_id: opt_id(org.as_deref())?,
        agent_id: opt_id(agent.as_deref())?,
    })
}

/// `GET /v1/canned-responses`: the agent's own and those of its organizations, oldest first.
/// `two_factor`: whether the agent's account has a second factor; without one, the responses of
/// an organization that requires one are left out (the organization refuses the agent there).
pub async fn canned_for(
    backend: &Backend,
    agent_id: Uuid,
    two_factor: bool,
) -> Result<Vec<CannedResponse>> {
    let rows: Vec<CannedRow> = fetch_all(
        backend,
        "SELECT response_id, key, text, organization_id, agent_id FROM rm_canned
         WHERE (scope = 'agent' AND agent_id = $1)
         OR (scope = 'organization' AND organization_id IN
             (SELECT organization_id FROM rm_memberships WHERE agent_id = $1)
             AND ($2 = 1 OR organization_id NOT IN
                  (SELECT organization_id FROM rm_org_sign_in WHERE two_factor_required = 1)))
         ORDER BY created_position",
        params![agent_id, i64::from(two_factor)],
    )
    .await?;
    rows.into_iter().map(canned_from).collect()
}

/// One canned response, for `PUT` and `DELETE` (whose scope says who may change it).
pub async fn canned(backend: &Backend, response_id: Uuid) -> Result<Option<CannedResponse>> {
    let row: Option<CannedRow> = fetch_optional(
        backend,
        "SELECT response_id, key, text, organization_id, agent_id FROM rm_canned
         WHERE response_id = $1",
        params![response_id],
    )
    .await?;
    row.map(canned_from).transpose()
}
