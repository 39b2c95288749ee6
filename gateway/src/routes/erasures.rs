//! Erasure (GDPR; issue 17): operators erase a customer's personal data, by its conversation
//! or by the verified returning customer's reference (every conversation of that customer in
//! the organization), and set how long the organization keeps it (`retention_days`, which the
//! retention duty of the `sweeper` acts on). The work is `crate::erasure`'s.
//!
//! The wire types here are what the handlers return and what the OpenAPI document describes.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use domain::conversation::ErasureReason;
use domain::organization::{Organization, OrganizationCommand};
use domain::values::{Author, RetentionDays, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::erasure;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body};
use crate::idempotency::IdempotencyKey;
use crate::openapi::{Route, Routes};
use crate::state::AppState;
use crate::workflow::{self, context};

pub fn routes() -> Routes {
    Routes::new("organizations")
        .route(
            Route::post("/v1/orgs/{org}/erasures", erase)
                .id("eraseCustomer")
                .summary("Erase a customer's personal data")
                .describe(
                    "Operators and owners (403 for an agent). Exactly one of `conversation_id` (a \
                     customer conversation or left message of the organization; 404 for any other \
                     id, 409 for a channel or a direct chat) and `customer_ref` (a verified \
                     returning customer: every conversation of that customer in the organization; \
                     none is an empty `erased`); 422 otherwise. A conversation not ended ends \
                     first (`ConversationEnded` by the operator; a waiting customer leaves its \
                     line, `removed`), then `CustomerErased`: its messages' and notes' texts, the \
                     customer's name, its files' names read `[erased]` everywhere (conversation, \
                     messages, transcript, search, notes), its metadata and live metadata are \
                     empty, its files' bytes, its kept idempotent answers and its webhook \
                     deliveries still owed are deleted, the customer's token ends. Statistics do \
                     not change (beyond the end of a conversation that had not ended). Nothing \
                     personal is added to it afterwards (409 `conversation erased`). Erasing \
                     again answers the same (nothing appended). Audited (`CustomerErased`, \
                     subject the conversation).",
                )
                .body::<ErasureRequest>()
                .returns::<Erased>(200, "The conversations erased."),
        )
        .route(
            Route::get("/v1/orgs/{org}/retention", retention)
                .id("orgRetention")
                .summary("The organization's retention of customers' personal data")
                .describe("Members.")
                .returns::<Retention>(
                    200,
                    "Days after a conversation's end before its customer's personal data is \
                     erased; `null`: kept until erased by hand.",
                ),
        )
        .route(
            Route::put("/v1/orgs/{org}/retention", set_retention)
                .id("setOrgRetention")
                .summary("Set the organization's retention of customers' personal data")
                .describe(
                    "Operators and owners (403 for an agent). `retention_days` from 1 to 3,650 \
                     (422 otherwise), or `null` to keep personal data until erased by hand \
                     (`RetentionSet`, audited). Customer conversations that ended more than that \
                     many days ago are erased by the server's sweeper (reason `retention`), a \
                     bounded batch every few seconds.",
                )
                .body::<Retention>()
                .returns::<Retention>(200, "The retention."),
        )
}

/// `POST /v1/orgs/{org}/erasures`: exactly one of the two.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
pub struct ErasureRequest {
    /// A customer conversation (a chat or a left message) of the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "uuid"))]
    pub conversation_id: Option<String>,
    /// A verified returning customer (`customer.verified.customer_ref` of its conversations):
    /// every conversation of that customer in the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "uuid"))]
    pub customer_ref: Option<String>,
}

/// What an erasure erased.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Erased {
    /// The conversations whose customer's personal data is erased (also those erased before:
    /// erasing again changes nothing and answers the same).
    pub erased: Vec<Uuid>,
    /// When.
    pub at: DateTime<Utc>,
}

/// An organization's retention of customers' personal data.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Retention {
    /// Days after a conversation's end after which its customer's personal data is erased
    /// (1 to 3,650); `null`: kept until erased by hand.
    #[schemars(range(min = 1, max = 3650))]
    pub retention_days: Option<i64>,
}

fn parse_id(raw: &str, field: &str) -> Result<Uuid, ApiError> {
    raw.trim()
        .parse()
        .map_err(|_| ApiError::Invalid(format!("{field} is not a valid id")))
}

/// Operators and owners (403 for an agent).
async fn erase(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    Body(body): Body<ErasureRequest>,
) -> Result<Json<Erased>, ApiError> {
    let organization_id = path_id(&org)?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let conversations = match (body.conversation_id, body.customer_ref) {
        (Some(conversation), None) => vec![parse_id(&conversation, "conversation_id")?],
        (None, Some(customer_ref)) => {
            let customer_ref = parse_id(&customer_ref, "customer_ref")?;
            projections::conversations::read::conversations_of_customer(
                state.backend(),
                organization_id,
                customer_ref,
            )
            .await?
        }
        _ => {
            return Err(ApiError::Invalid(
                "give exactly one of conversation_id and customer_ref".into(),
            ))
        }
    };
    let name = projections::directory::read::account(state.backend(), agent.agent_id)
        .await?
        .map_or_else(|| "Operator".to_owned(), |account| account.name);
    let by = Author::agent(agent.agent_id, name);
    let caller = Caller::Agent(agent);
    // No key goes with the commands: an erasure may take a customer out of its line and then
    // erase, two commands a key could not name apart, and each is idempotent by itself. A
    // repeated keyed request is answered from its kept answer (`idempotency`).
    let ctx = context(Some(&caller), None);
    let mut erased = Vec::with_capacity(conversations.len());
    let mut at = Utc::now();
    for conversation_id in conversations {
        let done = erasure::erase_conversation(
            &state,
            organization_id,
            conversation_id,
            by.clone(),
            ErasureReason::Request,
            &ctx,
        )
        .await?;
        at = done.at;
        erased.push(done.conversation_id);
    }
    Ok(Json(Erased { erased, at }))
}

/// Members.
async fn retention(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
) -> Result<Json<Retention>, ApiError> {
    let organization_id = path_id(&org)?;
    access::member(&state, &agent, organization_id).await?;
    let days =
        projections::directory::read::retention_days(state.backend(), organization_id).await?;
    Ok(Json(Retention {
        retention_days: days.map(i64::from),
    }))
}

/// Operators and owners (the organization decides: `SetRetention`).
async fn set_retention(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<Retention>,
) -> Result<Json<Retention>, ApiError> {
    let organization_id = path_id(&org)?;
    access::member(&state, &agent, organization_id).await?;
    let retention_days = body
        .retention_days
        .map(RetentionDays::parse)
        .transpose()
        .map_err(invalid)?;
    let set = OrganizationCommand::SetRetention {
        retention_days,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    let executed = workflow::run::<Organization>(&state, organization_id, set, &ctx).await?;
    state
        .wait_for_read_models(workflow::last_position(&executed))
        .await;
    Ok(Json(body))
}
