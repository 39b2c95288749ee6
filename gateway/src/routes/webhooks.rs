//! Webhooks (issue 17): operators register the endpoints the organization's events are
//! delivered to (events of the organization's stream: the audit trail and rebuilds see them),
//! list and remove them, see the deliveries that were parked after their retries ran out, and
//! deliver one again. Anyone may read the public key that verifies deliveries. The delivering
//! itself is `crate::webhooks`'.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::organization::{Organization, OrganizationCommand, OrganizationEvent};
use domain::values::Role;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::error::ApiError;
use crate::extract::{path_id, Body, PageQuery, Params};
use crate::idempotency::IdempotencyKey;
use crate::openapi::{Route, Routes};
use crate::outbound;
use crate::state::AppState;
use crate::webhooks;
use crate::workflow::{self, context};
use store::webhook_deliveries as table;

pub fn routes() -> Routes {
    Routes::new("webhooks")
        .route(
            Route::get("/v1/webhooks/public-key", public_key)
                .id("webhookPublicKey")
                .summary("The key that verifies webhook deliveries")
                .public()
                .describe(
                    "The deployment's Ed25519 public key: each delivery's `Jono-Signature: \
                     t=<unix seconds>,ed25519=<base64>` signs the bytes `<t>.<body>` (README, \
                     Webhooks).",
                )
                .returns::<WebhookPublicKey>(200, "The public key, base64 and PEM."),
        )
        .route(
            Route::get("/v1/orgs/{org}/webhooks", list)
                .id("webhookEndpoints")
                .summary("The organization's webhook endpoints")
                .describe("Operators (403 for an agent). Oldest first.")
                .paged("the last endpoint's `id`")
                .returns::<Vec<WebhookEndpointView>>(200, "A page of its endpoints."),
        )
        .route(
            Route::post("/v1/orgs/{org}/webhooks", add)
                .id("addWebhookEndpoint")
                .summary("Register a webhook endpoint")
                .describe(
                    "Operators (403 for an agent). Records `WebhookEndpointAdded`; events of the \
                     chosen types after it are delivered to the URL, signed, at least once and in \
                     position order. 422 for a URL that is not http(s), longer than 2,000 \
                     characters, or on a loopback or private address (unless the server runs with \
                     `JONO_WEBHOOK_PRIVATE_NETWORKS=true`), or for no or unknown event types; 409 \
                     for a URL registered already or an eleventh endpoint.",
                )
                .body::<WebhookEndpointRequest>()
                .returns::<WebhookEndpointView>(201, "The endpoint."),
        )
        .route(
            Route::delete("/v1/orgs/{org}/webhooks/{endpoint}", remove)
                .id("removeWebhookEndpoint")
                .summary("Remove a webhook endpoint")
                .describe(
                    "Operators (403 for an agent). Records `WebhookEndpointRemoved`; nothing more \
                     is delivered to it, what it was still owed included. 404 for an unknown \
                     endpoint.",
                )
                .no_content("Removed."),
        )
        .route(
            Route::get("/v1/orgs/{org}/webhooks/parked", parked)
                .id("parkedWebhookDeliveries")
                .summary("Parked webhook deliveries")
                .describe(
                    "Operators (403 for an agent). Deliveries whose retries ran out \
                     (`JONO_WEBHOOK_RETRY_HOURS`, 24 by default); each holds the later deliveries \
                     of its endpoint.",
                )
                .paged("the last delivery's `id`")
                .returns::<Vec<ParkedDelivery>>(200, "A page of them, by position."),
        )
        .route(
            Route::post(
                "/v1/orgs/{org}/webhooks/{endpoint}/deliveries/{position}/redeliver",
                redeliver,
            )
            .id("redeliverWebhook")
            .summary("Deliver a parked delivery again")
            .describe(
                "Operators (403 for an agent). A fresh round of attempts, from now; once it \
                     is delivered, the deliveries it held follow. 404 for a delivery that is not \
                     parked.",
            )
            .responds(202, "It will be tried at once."),
        )
}

/// The key that verifies deliveries' `Jono-Signature`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WebhookPublicKey {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The 32 bytes of the public key, base64.
    pub public_key: String,
    /// The same key as PEM (SubjectPublicKeyInfo, RFC 8410).
    pub pem: String,
}

/// `POST /v1/orgs/{org}/webhooks`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct WebhookEndpointRequest {
    /// Where deliveries are POSTed: an http(s) URL of at most 2,000 characters, on a public
    /// address unless the server allows private networks.
    pub url: String,
    /// The event types to deliver, at least one of: `CustomerJoinedQueue`, `CustomerLeftQueue`,
    /// `CustomerPicked`, `ConversationTransferred`, `MessageSent`, `ConversationRated`,
    /// `ConversationEnded`.
    pub event_types: Vec<String>,
}

/// A registered endpoint.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WebhookEndpointView {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
}

/// A delivery whose retries ran out; it holds the later deliveries of its endpoint until it is
/// delivered again.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ParkedDelivery {
    /// The delivery's id (the page cursor): the same for the same endpoint and position.
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// The event's position in the log (`Jono-Position`).
    pub position: i64,
    pub event_type: String,
    pub attempts: i64,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub parked_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed (a little of the endpoint's answer at most).
    pub last_error: Option<String>,
}

/// Anyone: the public key of the deployment's webhook signatures.
async fn public_key(State(state): State<AppState>) -> Json<WebhookPublicKey> {
    Json(WebhookPublicKey {
        algorithm: "ed25519".into(),
        public_key: STANDARD.encode(state.webhook_key.public_key()),
        pem: state.webhook_key.public_key_pem(),
    })
}

async fn endpoints(
    state: &AppState,
    organization_id: Uuid,
) -> Result<Vec<WebhookEndpointView>, ApiError> {
    let (organization, _) = state
        .commands
        .load::<Organization>(&organization_id.to_string())
        .await?;
    Ok(organization
        .webhooks
        .into_iter()
        .map(|endpoint| WebhookEndpointView {
            id: endpoint.id,
            url: endpoint.url,
            event_types: endpoint.event_types,
        })
        .collect())
}

/// Operators: the organization's endpoints, oldest first, read from its stream as it is now.
async fn list(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    Params(page): Params<PageQuery>,
) -> Result<Json<Vec<WebhookEndpointView>>, ApiError> {
    let organization_id = path_id(&org)?;
    let page = page.parse::<Uuid>()?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let endpoints = endpoints(&state, organization_id).await?;
    Ok(Json(page.of(endpoints, |endpoint| endpoint.id)))
}

/// Operators: a new endpoint. An address on a private network is refused here (422) unless
/// the server allows them; a host name is checked again on every connection.
async fn add(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<WebhookEndpointRequest>,
) -> Result<(StatusCode, Json<WebhookEndpointView>), ApiError> {
    let organization_id = path_id(&org)?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let http = outbound::client(
        state.settings.webhook_private_networks,
        webhooks::DEFAULT_TIMEOUT,
        webhooks::PRIVATE_NETWORKS,
    );
    if let Err(outbound::Refused::Private { .. }) = http.check(body.url.trim()) {
        return Err(ApiError::Invalid(format!(
            "{} is on a loopback or private network ({} allows that)",
            body.url.trim(),
            webhooks::PRIVATE_NETWORKS
        )));
    }
    let add = OrganizationCommand::AddWebhookEndpoint {
        endpoint_id: Uuid::new_v4(),
        url: body.url,
        event_types: body.event_types,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    let executed = workflow::run::<Organization>(&state, organization_id, add, &ctx).await?;
    let view = executed
        .typed
        .into_iter()
        .find_map(|event| match event {
            OrganizationEvent::WebhookEndpointAdded {
                endpoint_id,
                url,
                event_types,
                ..
            } => Some(WebhookEndpointView {
                id: endpoint_id,
                url,
                event_types,
            }),
            _ => None,
        })
        .ok_or_else(|| ApiError::Internal("an endpoint that was not added".into()))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Operators: nothing more is delivered to the endpoint, what was owed to it included.
async fn remove(
    State(state): State<AppState>,
    Path((org, endpoint)): Path<(String, String)>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    let organization_id = path_id(&org)?;
    let endpoint_id = path_id(&endpoint)?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let remove = OrganizationCommand::RemoveWebhookEndpoint {
        endpoint_id,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    let ctx = context(Some(&caller), key.as_deref());
    workflow::run::<Organization>(&state, organization_id, remove, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn time(millis: Option<i64>) -> Option<DateTime<Utc>> {
    millis.and_then(DateTime::from_timestamp_millis)
}

/// Operators: the parked deliveries, by position.
async fn parked(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    Params(page): Params<PageQuery>,
) -> Result<Json<Vec<ParkedDelivery>>, ApiError> {
    let organization_id = path_id(&org)?;
    let page = page.parse::<Uuid>()?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let parked = table::parked(state.backend(), organization_id).await?;
    let parked: Vec<ParkedDelivery> = parked
        .into_iter()
        .filter_map(|delivery| {
            let endpoint_id: Uuid = delivery.endpoint_id.parse().ok()?;
            Some(ParkedDelivery {
                id: Uuid::new_v5(&endpoint_id, &delivery.position.to_be_bytes()),
                endpoint_id,
                position: delivery.position,
                event_type: delivery.event_type,
                attempts: delivery.attempts,
                first_attempt_at: time(delivery.first_attempt_at),
                parked_at: time(delivery.parked_at),
                last_error: delivery.last_error,
            })
        })
        .collect();
    Ok(Json(page.of(parked, |delivery| delivery.id)))
}

/// Operators: a parked delivery gets a fresh round of attempts, starting at once (202: the
/// worker delivers it, then the deliveries it held).
async fn redeliver(
    State(state): State<AppState>,
    Path((org, endpoint, position)): Path<(String, String, String)>,
    agent: AgentCaller,
) -> Result<StatusCode, ApiError> {
    let organization_id = path_id(&org)?;
    let endpoint_id = path_id(&endpoint)?;
    let position: i64 = position
        .parse()
        .map_err(|_| ApiError::BadRequest("the position is a number".into()))?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let now = Utc::now().timestamp_millis();
    if table::redeliver(state.backend(), organization_id, endpoint_id, position, now).await? {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::NotFound)
    }
}
