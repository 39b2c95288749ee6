//! Sessions: an agent sees its own (device, address, when opened and last used) and ends any
//! of them; an owner ends every session of a member (the organization decides, and the log
//! keeps that it was done). An ended session's sockets close at once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use domain::organization::{Organization, OrganizationCommand};
use schemars::JsonSchema;
use serde::Serialize;

use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::error::ApiError;
use crate::extract::path_id;
use crate::idempotency::IdempotencyKey;
use crate::live::CloseOrder;
use crate::openapi::{Route, Routes};
use crate::secrets;
use crate::state::AppState;
use crate::workflow::{self, context};

pub fn routes() -> Routes {
    Routes::new("accounts")
        .route(
            Route::get("/v1/me/sessions", my_sessions)
                .id("sessions")
                .summary("The caller's sessions")
                .describe(
                    "Live sessions, the latest used first: the User-Agent and address each was \
                     opened from.",
                )
                .returns::<Vec<SessionView>>(200, "The sessions."),
        )
        .route(
            Route::delete("/v1/me/sessions/{session}", end_my_session)
                .id("endSession")
                .summary("End one of the caller's sessions")
                .describe(
                    "Its token stops working at once, on open WebSockets too. 404 for a session \
                     not the caller's.",
                )
                .no_content("Ended."),
        )
        .route(
            Route::delete(
                "/v1/orgs/{org}/members/{agent}/sessions",
                end_member_sessions,
            )
            .id("endMemberSessions")
            .summary("End a member's sessions")
            .tag("organizations")
            .describe(
                "Owners (403 otherwise). Every token of the member's account ends at once, \
                     its WebSockets included (`MemberSessionsEnded`).",
            )
            .no_content("Ended."),
        )
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionView {
    pub session_id: String,
    /// The User-Agent it was opened with; `null` when none was sent (or it predates this).
    pub user_agent: Option<String>,
    /// The client address it was opened from.
    pub address: Option<String>,
    pub created_at: DateTime<Utc>,
    /// To the minute: a session's use is written at most once a minute.
    pub last_used_at: DateTime<Utc>,
    /// When it ends however it is used (a session opened through single sign-on); `null`:
    /// 30 days after its last use.
    pub ends_at: Option<DateTime<Utc>>,
    /// The session of this request.
    pub current: bool,
}

async fn my_sessions(
    State(state): State<AppState>,
    agent: AgentCaller,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let sessions = secrets::sessions_of(state.backend(), agent.agent_id).await?;
    let at = |seconds| DateTime::from_timestamp(seconds, 0).unwrap_or_default();
    Ok(Json(
        sessions
            .into_iter()
            .map(|session| SessionView {
                current: session.token_hash == agent.token_hash,
                session_id: session.session_id,
                user_agent: session.device.user_agent,
                address: session.device.address,
                created_at: at(session.created_at),
                last_used_at: at(session.last_used_at),
                ends_at: session.ends_at.map(at),
            })
            .collect(),
    ))
}

/// Ends one of the caller's sessions (its own included: that is a logout).
async fn end_my_session(
    State(state): State<AppState>,
    Path(session): Path<String>,
    agent: AgentCaller,
) -> Result<StatusCode, ApiError> {
    let found = secrets::sessions_of(state.backend(), agent.agent_id)
        .await?
        .into_iter()
        .find(|candidate| candidate.session_id == session)
        .ok_or(ApiError::NotFound)?;
    secrets::revoke_token_hash(state.backend(), &found.token_hash).await?;
    state.live.closer.close(CloseOrder::Token(found.token_hash));
    Ok(StatusCode::NO_CONTENT)
}

/// Owners: every session of the member ends, in every organization it belongs to (a session
/// is the account's).
async fn end_member_sessions(
    State(state): State<AppState>,
    Path((org, target)): Path<(String, String)>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    let organization_id = path_id(&org)?;
    let target = path_id(&target)?;
    access::member(&state, &agent, organization_id).await?;
    let end = OrganizationCommand::EndMemberSessions {
        agent_id: target,
        by: agent.agent_id,
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    workflow::run::<Organization>(&state, organization_id, end, &ctx).await?;
    secrets::revoke_agent_tokens(state.backend(), target, None).await?;
    state.live.closer.close(CloseOrder::Agent {
        agent_id: target,
        keep: None,
    });
    Ok(StatusCode::NO_CONTENT)
}
