//! The two doors customers use: a queue's public face, which the widget shows before a join,
//! and the join; a door checks the page it is embedded in against the queue's
//! `allowed_origins` (`customer_door`, which a left message goes through too).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use domain::metadata::CustomerMetadata;
use domain::organization::{Organization, OrganizationCommand};
use domain::queue::QueueEvent;
use domain::schedule::Origin;
use serde_json::Value;
use uuid::Uuid;

use super::identity::check_identity;
use super::wire::{self, Join, Joined, PublicQueue};
use super::{current, find};
use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::extract::Body;
use crate::limits;
use crate::openapi::Route;
use crate::secrets;
use crate::state::AppState;
use crate::sweeper;
use crate::workflow::{self, context};

/// The widget's face and the join: anyone's.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/v1/queues/{queue}/public", public)
            .id("publicQueue")
            .summary("A queue's public face, for the widget")
            .public()
            .returns::<wire::PublicQueue>(200, "The queue as the widget shows it."),
        Route::post("/v1/queues/{queue}/join", join)
            .id("join")
            .summary("Join a queue as a customer")
            .public()
            .describe(
                "409 if the queue is closed or full; 403 from a site not among its \
                 `allowed_origins`. Rate limited per address.",
            )
            .optional_body::<wire::Join>()
            .returns::<wire::Joined>(201, "The customer's conversation, token and place in line."),
    ]
}

/// What the widget shows before a customer joins: anyone may ask. `leave_message` says that
/// nobody can answer now, so the widget offers to leave a message instead of the line.
async fn public(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> Result<Json<PublicQueue>, ApiError> {
    let queue = find(&state, &queue).await?;
    let leave_message = crate::routes::left_messages::nobody_answers(&state, &queue).await?;
    let transcript_by_email = state.settings.mail.is_some();
    Ok(Json(PublicQueue::new(
        &queue,
        transcript_by_email,
        leave_message,
    )))
}

/// A customer joins: a new conversation waits in the queue, and its token is handed out once.
/// Anyone may join, at most 10 times a minute from one address.
async fn join(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Body(body): Body<Join>,
) -> Result<impl IntoResponse, ApiError> {
    limits::enforce(&state, limits::JOINS, &format!("address:{address}")).await?;
    let queue = customer_door(&state, &queue, &headers).await?;
    let metadata = CustomerMetadata::parse(Value::Object(body.metadata.unwrap_or_default()))?;
    let (customer, identity) = check_identity(&state, queue.id, body.identity.as_ref()).await?;
    // A visitor an agent blocked is refused by the organization, which holds its blocks.
    let visitor = state.visitors.key_of(address);
    let admit = OrganizationCommand::AdmitVisitor {
        visitor: visitor.clone(),
        at: Utc::now(),
    };
    workflow::run::<Organization>(&state, queue.organization_id, admit, &context(None, None))
        .await?;
    let conversation_id = Uuid::new_v4();
    // Joining takes no idempotency key: each join is a new customer.
    let executed = workflow::join(
        &state,
        queue.id,
        conversation_id,
        metadata,
        customer,
        &context(None, None),
    )
    .await?;
    let queue_position = executed
        .typed
        .iter()
        .find_map(|event| match event {
            QueueEvent::CustomerJoinedQueue { queue_position, .. } => Some(*queue_position),
            _ => None,
        })
        .ok_or_else(|| ApiError::Internal("a join that joined nobody".into()))?;
    let customer_token = secrets::issue_customer_token(state.backend(), conversation_id).await?;
    secrets::remember_visitor(state.backend(), conversation_id, &visitor).await?;
    sweeper::saw_customer(conversation_id);
    Ok((
        StatusCode::CREATED,
        Json(Joined {
            conversation_id,
            customer_token,
            queue_position: u64::try_from(queue_position).unwrap_or(u64::MAX),
            identity,
        }),
    ))
}

/// The queue a customer comes to (a join, a left message): 404 if there is none, 403 if the
/// page it comes from may not embed it. A browser's request is checked against the queue's
/// allowed sites as they are now.
pub(crate) async fn customer_door(
    state: &AppState,
    raw: &str,
    headers: &HeaderMap,
) -> Result<projections::queues::read::Queue, ApiError> {
    let mut queue = find(state, raw).await?;
    if headers.contains_key(header::ORIGIN) {
        queue = current(state, queue).await?;
    }
    check_origin(&queue, headers)?;
    Ok(queue)
}

/// A browser's `Origin` must be one of the queue's `allowed_origins`, when it has any.
fn check_origin(
    queue: &projections::queues::read::Queue,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let allowed: Vec<String> = queue
        .settings
        .get("allowed_origins")
        .and_then(|origins| serde_json::from_value(origins.clone()).ok())
        .unwrap_or_default();
    if allowed.is_empty() {
        return Ok(());
    }
    // Jono's own widget runs on this origin, inside a frame that only the allowed sites may
    // show (frame-ancestors): a same-origin join is the widget's.
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    let authority = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://").map(|(_, rest)| rest));
    if host.is_some() && host == authority {
        return Ok(());
    }
    let origin = origin
        .to_str()
        .ok()
        .and_then(|origin| Origin::parse(origin).ok());
    match origin {
        Some(origin) if allowed.iter().any(|allowed| allowed == origin.as_str()) => Ok(()),
        _ => Err(ApiError::Forbidden(
            "this site may not embed this queue".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::queue_with_origins;
    use super::*;

    #[test]
    fn only_allowed_origins_may_join_when_there_are_any() {
        let mut headers = HeaderMap::new();
        let anywhere = queue_with_origins(json!([]));
        let shop = queue_with_origins(json!(["https://shop.example"]));
        assert!(
            check_origin(&shop, &headers).is_ok(),
            "no Origin: not a browser"
        );
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(check_origin(&anywhere, &headers).is_ok());
        assert_eq!(
            check_origin(&shop, &headers).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        headers.insert(header::ORIGIN, "https://Shop.example".parse().unwrap());
        assert!(check_origin(&shop, &headers).is_ok());
        headers.insert(header::ORIGIN, "null".parse().unwrap());
        assert_eq!(
            check_origin(&shop, &headers).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
    }
}
