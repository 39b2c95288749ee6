//! `GET /v1/orgs/{org}/search?q=`: full-text search over the organization's messages, private
//! notes and customer metadata, for its members (agents only: notes never reach a customer; a
//! member finds only its own direct chats). Newest first; `after` is the last hit's `position`.
//! The index and its query are the `search` read model's (`projections::search`).
//!
//! The wire type here is what the handler returns and what the OpenAPI document describes.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::access;
use crate::auth::AgentCaller;
use crate::error::ApiError;
use crate::extract::{path_id, PageQuery, Params};
use crate::openapi::{Route, Routes};
use crate::state::AppState;

/// The longest query, in characters: a longer one is 400 (it could not be a phrase anyone
/// wrote, and the index need not read it).
pub const MAX_QUERY_CHARS: usize = 500;

pub fn routes() -> Routes {
    Routes::new("conversations").route(
        Route::get("/v1/orgs/{org}/search", search)
            .id("search")
            .summary("Search the organization's conversations")
            .describe(
                "Full text over messages (and their files' names), private notes and customer \
                     metadata; the words of `q` are one phrase, never query syntax, so any text \
                     is a valid query. Newest first. Direct chats only the caller's own.",
            )
            .query(
                "q",
                json!({"type": "string", "maxLength": 500}),
                "What to find.",
            )
            .paged("the last hit's `position`")
            .returns::<Vec<SearchHit>>(200, "A page of hits."),
    )
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
    limit: Option<String>,
}

/// Where a query was found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchHit {
    pub conversation_id: Uuid,
    /// `message`, `note` (agents' private notes) or `metadata` (the customer's details).
    pub source: String,
    /// For a message its `seq` (open the conversation there), for a note its id, else empty.
    pub reference: String,
    /// The text around the words found.
    pub snippet: String,
    pub at: DateTime<Utc>,
    /// The cursor: `after=POSITION` gives the hits older than this one.
    pub position: i64,
}

impl From<projections::search::Hit> for SearchHit {
    fn from(hit: projections::search::Hit) -> Self {
        SearchHit {
            conversation_id: hit.conversation_id,
            source: hit.source,
            reference: hit.reference,
            snippet: hit.snippet,
            at: hit.at,
            position: hit.position,
        }
    }
}

async fn search(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    Params(query): Params<SearchQuery>,
) -> Result<Json<Vec<SearchHit>>, ApiError> {
    let organization_id = path_id(&org)?;
    access::member(&state, &agent, organization_id).await?;
    if query.q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::BadRequest(format!(
            "q is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let page = PageQuery {
        after: query.after,
        limit: query.limit,
    }
    .parse::<i64>()?;
    let hits = projections::search::search(
        state.backend(),
        organization_id,
        agent.agent_id,
        &query.q,
        page.after,
        i64::try_from(page.limit).unwrap_or(i64::MAX),
    )
    .await?;
    Ok(Json(hits.into_iter().map(SearchHit::from).collect()))
}
