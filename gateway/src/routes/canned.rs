//! Canned responses: an agent's own, and its organizations' (which operators manage). Each scope
//! is one stream (`ids::canned_scope_id`), so a key is unique within it, case-insensitively.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use domain::canned::{CannedCommand, CannedEvent, CannedResponses, Scope};
use domain::ids;
use domain::values::{CannedKey, CannedText, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::consistency;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body, PageQuery, Params};
use crate::idempotency::IdempotencyKey;
use crate::openapi::{Route, Routes};
use crate::state::AppState;
use crate::workflow::{self, context};

pub fn routes() -> Routes {
    Routes::new("canned")
        .route(
            Route::get("/v1/canned-responses", list)
                .id("cannedResponses")
                .summary("The caller's canned responses")
                .describe("The agent's own and those of its organizations.")
                .paged("the last response's id")
                .returns::<Vec<CannedResponse>>(200, "The responses."),
        )
        .route(
            Route::post("/v1/canned-responses", create)
                .id("createCanned")
                .summary("Create a canned response")
                .describe(
                    "Agents; operators for an organization's. 409 if the key is taken in that \
                     scope.",
                )
                .body::<Create>()
                .returns::<CannedCreated>(201, "Its id."),
        )
        .route(
            Route::put("/v1/canned-responses/{id}", change)
                .id("changeCanned")
                .summary("Change a canned response")
                .describe("Its owner; operators for an organization's.")
                .body::<Change>()
                .returns::<CannedResponse>(200, "The response."),
        )
        .route(
            Route::delete("/v1/canned-responses/{id}", remove)
                .id("deleteCanned")
                .summary("Delete a canned response")
                .describe("Its owner; operators for an organization's.")
                .no_content("Deleted."),
        )
}

#[derive(Serialize, JsonSchema)]
pub struct CannedResponse {
    pub id: Uuid,
    pub key: String,
    pub text: String,
    /// `null` for a personal response.
    pub organization_id: Option<Uuid>,
}

impl From<projections::canned::read::CannedResponse> for CannedResponse {
    fn from(row: projections::canned::read::CannedResponse) -> Self {
        Self {
            id: row.id,
            key: row.key,
            text: row.text,
            organization_id: row.organization_id,
        }
    }
}

/// A page of the caller's canned responses (its own and its organizations'), oldest first; the
/// cursor is the last response's id.
async fn list(
    State(state): State<AppState>,
    agent: AgentCaller,
    Params(page): Params<PageQuery>,
) -> Result<Json<Vec<CannedResponse>>, ApiError> {
    let page = page.parse::<Uuid>()?;
    let two_factor = crate::second_factor::enabled(state.backend(), agent.agent_id).await?;
    let responses =
        projections::canned::read::canned_for(state.backend(), agent.agent_id, two_factor).await?;
    Ok(Json(
        page.of(responses, |response| response.id)
            .into_iter()
            .map(CannedResponse::from)
            .collect(),
    ))
}

// `POST /v1/canned-responses`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "CreateCannedRequest")]
pub struct Create {
    #[schemars(length(min = 1, max = 32))]
    pub key: String,
    #[schemars(length(min = 1, max = 10_000))]
    pub text: String,
    /// An organization's response (operators); absent for a personal one.
    // Read as text: one that is not even an id is one the caller is not a member of (404).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Uuid>")]
    pub organization_id: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct CannedCreated {
    pub id: Uuid,
}

async fn create(
    State(state): State<AppState>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<Create>,
) -> Result<impl IntoResponse, ApiError> {
    let scope = match body.organization_id.as_deref() {
        None => Scope::Personal {
            agent_id: agent.agent_id,
        },
        Some(raw) => {
            // An organization that is not even an id is one the caller is not a member of.
            let organization_id = raw.parse::<Uuid>().map_err(|_| ApiError::NotFound)?;
            access::at_least(&state, &agent, organization_id, Role::Operator).await?;
            Scope::Organization { organization_id }
        }
    };
    let canned_key = CannedKey::parse(&body.key).map_err(invalid)?;
    let text = CannedText::parse(&body.text).map_err(invalid)?;
    let response_id = Uuid::new_v4();
    let create = CannedCommand::CreateCannedResponse {
        response_id,
        scope,
        key: canned_key,
        text,
        by: agent.agent_id,
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    let executed =
        workflow::run::<CannedResponses>(&state, ids::canned_scope_id(scope), create, &ctx).await?;
    // A replayed request answers the response it created the first time.
    let response_id = executed
        .typed
        .iter()
        .find_map(|event| match event {
            CannedEvent::CannedResponseCreated { response_id, .. } => Some(*response_id),
            _ => None,
        })
        .unwrap_or(response_id);
    Ok((StatusCode::CREATED, Json(CannedCreated { id: response_id })))
}

/// The response and its scope, if the caller may change it: its owner's personal ones, an
/// operator's organization's. Someone else's personal response and an organization the caller
/// is not in are 404; a mere agent of the organization, who sees its responses, gets 403.
async fn manageable(
    state: &AppState,
    agent: &AgentCaller,
    id: &str,
) -> Result<(projections::canned::read::CannedResponse, Scope), ApiError> {
    let response_id = path_id(id)?;
    let response = consistency::found(state, || async {
        Ok(projections::canned::read::canned(state.backend(), response_id).await?)
    })
    .await?
    .ok_or(ApiError::NotFound)?;
    let scope = match (response.organization_id, response.agent_id) {
        (Some(organization_id), _) => {
            access::at_least(state, agent, organization_id, Role::Operator).await?;
            Scope::Organization { organization_id }
        }
        (None, Some(owner)) if owner == agent.agent_id => Scope::Personal { agent_id: owner },
        _ => return Err(ApiError::NotFound),
    };
    Ok((response, scope))
}

// `PUT /v1/canned-responses/{id}`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "ChangeCannedRequest")]
pub struct Change {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10_000))]
    pub text: Option<String>,
}

async fn change(
    State(state): State<AppState>,
    Path(id): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<Change>,
) -> Result<Json<CannedResponse>, ApiError> {
    let (response, scope) = manageable(&state, &agent, &id).await?;
    let new_key = body
        .key
        .as_deref()
        .map(CannedKey::parse)
        .transpose()
        .map_err(invalid)?;
    let text = body
        .text
        .as_deref()
        .map(CannedText::parse)
        .transpose()
        .map_err(invalid)?;
    let change = CannedCommand::ChangeCannedResponse {
        response_id: response.id,
        key: new_key,
        text,
        by: agent.agent_id,
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    let executed =
        workflow::run::<CannedResponses>(&state, ids::canned_scope_id(scope), change, &ctx).await?;
    // The answer shows the change: it waits for the read model to have it.
    state
        .wait_for_read_models(workflow::last_position(&executed))
        .await;
    let changed = projections::canned::read::canned(state.backend(), response.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(changed.into()))
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    let (response, scope) = manageable(&state, &agent, &id).await?;
    let delete = CannedCommand::DeleteCannedResponse {
        response_id: response.id,
        by: agent.agent_id,
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    workflow::run::<CannedResponses>(&state, ids::canned_scope_id(scope), delete, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
