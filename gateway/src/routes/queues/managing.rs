//! An organization's queues: creating one, listing them, and one queue as its members see it,
//! with the open offers of auto routing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use domain::queue::{Queue, QueueCommand, QueueEvent};
use domain::values::{Name, Role};
use uuid::Uuid;

use super::find_as_member;
use super::wire::{self, CreateQueue, OfferView, QueueCreated, QueueView};
use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body, PageQuery, Params};
use crate::idempotency::IdempotencyKey;
use crate::openapi::Route;
use crate::state::AppState;
use crate::workflow::{self, context};

/// Operators' calls: creating queues; members' reads.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::post("/v1/orgs/{org}/queues", create)
            .id("createQueue")
            .summary("Create a queue")
            .describe("Operators. A new queue is closed.")
            .body::<wire::CreateQueue>()
            .returns::<wire::QueueCreated>(201, "The new queue."),
        Route::get("/v1/orgs/{org}/queues", list)
            .id("queues")
            .summary("The organization's queues")
            .paged("the last queue's id")
            .returns::<Vec<wire::QueueView>>(200, "A page of queues."),
        Route::get("/v1/queues/{queue}", show)
            .id("queue")
            .summary("A queue")
            .returns::<wire::QueueView>(200, "The queue, with its settings."),
    ]
}

async fn create(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<CreateQueue>,
) -> Result<impl IntoResponse, ApiError> {
    let organization_id = path_id(&org)?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let name = Name::parse(&body.name).map_err(invalid)?;
    let queue_id = Uuid::new_v4();
    let create = QueueCommand::CreateQueue {
        queue_id,
        organization_id,
        name,
    };
    let caller = Caller::Agent(agent);
    let executed = workflow::run::<Queue>(
        &state,
        queue_id,
        create,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    // A replayed key answers with the queue its first request created.
    let queue_id = executed
        .typed
        .iter()
        .find_map(|event| match event {
            QueueEvent::QueueCreated { queue_id, .. } => Some(*queue_id),
            _ => None,
        })
        .unwrap_or(queue_id);
    Ok((StatusCode::CREATED, Json(QueueCreated { queue_id })))
}

/// A page of the organization's queues, oldest first; the cursor is the last queue's id.
async fn list(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    Params(page): Params<PageQuery>,
) -> Result<Json<Vec<QueueView>>, ApiError> {
    let organization_id = path_id(&org)?;
    let page = page.parse::<Uuid>()?;
    access::member(&state, &agent, organization_id).await?;
    let queues = projections::queues::read::queues_of(state.backend(), organization_id).await?;
    let page = page
        .of(queues, |queue| queue.id)
        .iter()
        .map(QueueView::from)
        .collect();
    Ok(Json(page))
}

async fn show(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
) -> Result<Json<QueueView>, ApiError> {
    let (queue, _) = find_as_member(&state, &agent, &queue).await?;
    let mut view = QueueView::from(&queue);
    // The open offers of auto routing, from the queue's stream (current, whatever the read
    // models' lag): whom each waiting customer is offered to, until when.
    let (stream, _) = state
        .commands
        .load::<Queue>(&queue.id.to_string())
        .await
        .map_err(ApiError::from)?;
    let offers = stream
        .offers
        .iter()
        .map(|(conversation_id, offer)| OfferView {
            conversation_id: *conversation_id,
            offer_id: offer.offer_id,
            agent_id: offer.agent_id,
            expires_at: offer.expires_at,
        })
        .collect();
    view.offers = Some(offers);
    Ok(Json(view))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::queue_with_origins;
    use super::*;

    #[test]
    fn a_queue_shows_its_settings_flat_and_whole() {
        let queue = queue_with_origins(json!(["https://shop.example"]));
        let shown = serde_json::to_value(QueueView::from(&queue)).unwrap();
        for field in [
            "id",
            "name",
            "open",
            "waiting",
            "oldest_wait_seconds",
            "handlers",
            "max_waiting",
            "welcome_message",
            "capacity_per_agent",
            "opening_hours",
            "allowed_origins",
            "widget_position",
            "widget_color",
            "routing",
            "offer_timeout_seconds",
            "leave_message_when_offline",
            "reopen_window_seconds",
            "target_wait_seconds",
            "target_first_response_seconds",
            "settings",
        ] {
            assert!(shown.get(field).is_some(), "{field}");
        }
        assert_eq!(shown["allowed_origins"], json!(["https://shop.example"]));
        // An unset setting is there, as `null`; an unset default shows the default.
        assert_eq!(shown["max_waiting"], Value::Null);
        assert_eq!(shown["widget_color"], Value::Null);
        assert_eq!(shown["widget_position"], json!("right"));
        assert_eq!(shown["routing"], json!("manual"));
        assert_eq!(shown["leave_message_when_offline"], json!(false));
        // Only `GET /v1/queues/{queue}` lists the offers.
        assert!(shown.get("offers").is_none());
    }
}
