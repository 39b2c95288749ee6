//! Blocking an abusive visitor (issue 12): an agent of a customer conversation blocks its
//! customer for a chosen time. The block is an event of the organization, which refuses the
//! visitor's joins to any of its queues while the block runs (`OrganizationCommand::AdmitVisitor`
//! in `queues::join`); the conversation ends and the customer's token with it, its sockets
//! closed. The visitor is known by a keyed hash of the address it joined from
//! (`client::VisitorKeys`), never by the address. Operators list the running blocks and lift one.
//!
//! The wire types here are what the handlers return and what the OpenAPI document describes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, TimeDelta, Utc};
use domain::conversation::ConversationKind;
use domain::organization::{
    Organization, OrganizationCommand, OrganizationError, OrganizationEvent,
};
use domain::values::{BlockReason, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body, PageQuery, Params};
use crate::idempotency::IdempotencyKey;
use crate::live::CloseOrder;
use crate::openapi::{Route, Routes};
use crate::routes::conversations::end_conversation;
use crate::secrets;
use crate::state::AppState;
use crate::workflow::{self, context};

/// A block's length when the agent names none: a day.
pub const DEFAULT_BLOCK_MINUTES: i64 = 24 * 60;

pub fn routes() -> Routes {
    Routes::new("blocks")
        .route(
            Route::post("/v1/conversations/{c}/block", block)
                .id("blockCustomer")
                .summary("Block the customer of a conversation")
                .describe(
                    "Agent participants of a customer conversation (409 for a channel or a direct \
                     chat). The customer's token ends, its sockets close, the conversation ends \
                     if it has not, and joins from the address it joined from (an IPv6 client by \
                     its /64) to any queue of the organization are refused with 403 until the \
                     block runs out or an operator lifts it. 422 for a length outside 1 minute to \
                     365 days or a reason over 500 characters.",
                )
                .optional_body::<BlockRequest>()
                .returns::<Blocked>(201, "Blocked."),
        )
        .route(
            Route::get("/v1/orgs/{org}/blocks", list)
                .id("blocks")
                .summary("The running blocks")
                .describe(
                    "Operators. Blocks that have neither run out nor been lifted, oldest first.",
                )
                .paged("the last block's id")
                .returns::<Vec<BlockView>>(200, "A page of blocks."),
        )
        .route(
            Route::delete("/v1/orgs/{org}/blocks/{block}", lift)
                .id("liftBlock")
                .summary("Lift a block")
                .describe(
                    "Operators (403 for an agent). 404 for an unknown or lifted block, 409 for \
                     one that ran out.",
                )
                .no_content("Lifted; the visitor may join again."),
        )
}

/// `POST /v1/conversations/{c}/block`.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct BlockRequest {
    /// How long the block runs, in minutes: 1 to 525,600 (365 days); a day when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 525_600))]
    pub minutes: Option<i64>,
    /// Why, for the operators who review blocks: at most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
}

/// The answer to a block.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Blocked {
    pub block_id: Uuid,
    /// When the block runs out.
    pub until: DateTime<Utc>,
}

/// A running block, as `GET /v1/orgs/{org}/blocks` lists it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BlockView {
    pub id: Uuid,
    /// The conversation whose customer was blocked.
    pub conversation_id: Uuid,
    pub until: DateTime<Utc>,
    pub reason: Option<String>,
    /// The agent who blocked.
    pub blocked_by: Uuid,
    pub blocked_at: DateTime<Utc>,
    /// Whether the block holds the address the customer joined from, not only its token.
    pub by_address: bool,
}

impl From<projections::directory::read::Block> for BlockView {
    fn from(block: projections::directory::read::Block) -> Self {
        Self {
            id: block.id,
            conversation_id: block.conversation_id,
            until: block.until,
            reason: block.reason,
            blocked_by: block.blocked_by,
            blocked_at: block.blocked_at,
            by_address: block.by_address,
        }
    }
}

/// Agents of a customer conversation. 409 for a channel or a direct chat.
async fn block(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<BlockRequest>,
) -> Result<(StatusCode, Json<Blocked>), ApiError> {
    let (agent, conversation) = access::agent_conversation(&state, &caller, path_id(&c)?).await?;
    if conversation.kind != ConversationKind::Customer {
        return Err(ApiError::Conflict(
            "only the customer of a customer conversation can be blocked".into(),
        ));
    }
    let at = Utc::now();
    let until = TimeDelta::try_minutes(body.minutes.unwrap_or(DEFAULT_BLOCK_MINUTES))
        .and_then(|length| at.checked_add_signed(length))
        .ok_or_else(|| ApiError::refused(&OrganizationError::BlockLength))?;
    let reason = match body.reason.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(reason) => Some(BlockReason::parse(reason).map_err(invalid)?),
    };
    let visitor = secrets::visitor_of(state.backend(), conversation.id).await?;
    let command = OrganizationCommand::BlockCustomer {
        block_id: Uuid::new_v4(),
        conversation_id: conversation.id,
        visitor,
        until,
        reason,
        by: agent.agent_id,
        at,
    };
    let ctx = context(Some(&caller), key.as_deref());
    let executed =
        workflow::run::<Organization>(&state, conversation.organization_id, command, &ctx).await?;
    let (block_id, until) = executed
        .typed
        .iter()
        .find_map(|event| match event {
            OrganizationEvent::CustomerBlocked {
                block_id, until, ..
            } => Some((*block_id, *until)),
            _ => None,
        })
        .ok_or_else(|| ApiError::Internal("a block that blocked nobody".into()))?;
    // The conversation ends unless it has; the key named the block, not the end.
    match end_conversation(
        &state,
        &caller,
        &conversation,
        &context(Some(&caller), None),
    )
    .await
    {
        Ok(()) | Err(ApiError::Conflict(_)) => {}
        Err(error) => return Err(error),
    }
    for token_hash in secrets::revoke_customer_tokens(state.backend(), conversation.id).await? {
        state.live.close(CloseOrder::Token(token_hash));
    }
    Ok((StatusCode::CREATED, Json(Blocked { block_id, until })))
}

/// Operators: the blocks still running, oldest first.
async fn list(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    Params(page): Params<PageQuery>,
) -> Result<Json<Vec<BlockView>>, ApiError> {
    let organization_id = path_id(&org)?;
    let page = page.parse::<Uuid>()?;
    // Waits for the organization's last change, which the blocks are part of.
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let blocks =
        projections::directory::read::blocks(state.backend(), organization_id, Utc::now()).await?;
    Ok(Json(
        page.of(blocks, |block| block.id)
            .into_iter()
            .map(BlockView::from)
            .collect(),
    ))
}

/// Operators (the organization decides): the visitor may join again at once.
async fn lift(
    State(state): State<AppState>,
    Path((org, block)): Path<(String, String)>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    let organization_id = path_id(&org)?;
    let block_id = path_id(&block)?;
    access::member(&state, &agent, organization_id).await?;
    let lift = OrganizationCommand::LiftBlock {
        block_id,
        by: Some(agent.agent_id),
        at: Utc::now(),
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    workflow::run::<Organization>(&state, organization_id, lift, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
