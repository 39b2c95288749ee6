//! Queues: creating and listing them, their settings and handlers, opening and closing, the
//! pick, statistics, and the two doors customers use — the public face and the join.
//!
//! Choices API.md leaves open, made here:
//! - A queue object is `{id, organization_id, name, open, waiting, oldest_wait_seconds,
//!   handlers}` plus its settings as flat fields (`max_waiting`, `welcome_message`,
//!   `capacity_per_agent`, `opening_hours`, `allowed_origins`) and again as one `settings`
//!   object (and the service-level targets `target_wait_seconds` and
//!   `target_first_response_seconds`); the list and the single queue show the same object. `oldest_wait_seconds` is
//!   `null` when nobody waits.
//! - A handler must be a member of the queue's organization: adding anyone else is 422 (the
//!   value is well-formed but not acceptable here; 404 is kept for the queue itself).
//! - In a settings change `null` clears `max_waiting`, `welcome_message`, `capacity_per_agent`,
//!   `opening_hours` and the targets, and empties `allowed_origins`; `name` cannot be cleared (422).
//! - `from` and `to` of the statistics are RFC 3339 times or bare dates (midnight UTC), as
//!   `jono stats` takes them; anything else is 400, and `from` not before `to` is 422.
//! - A join from a page whose `Origin` is not among the queue's `allowed_origins` (when it has
//!   any) is 403; a request without `Origin` (not from a browser) is let through.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use chrono::Utc;
use cqrs_es::Aggregate;
use domain::metadata::{CustomerMetadata, VerifiedCustomer};
use domain::organization::{Organization, OrganizationCommand};
use domain::queue::{
    Colour, OfferTimeout, Queue, QueueCommand, QueueEvent, Routing, SettingsPatch, WidgetPosition,
};
use domain::schedule::{OpeningHours, Origin};
use domain::values::{Limit, Name, Role, WelcomeMessage};
use projections::stats::{stats_from_rows, QueueStats, Scope, StatsError};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::access;
use crate::auth::{AgentCaller, Caller};
use crate::client::ClientAddr;
use crate::consistency;
use crate::error::{invalid, ApiError};
use crate::extract::{path_id, Body, PageQuery, Params};
use crate::idempotency::IdempotencyKey;
use crate::identity;
use crate::limits;
use crate::openapi::{time_schema, Route, Routes};
use crate::routes::conversations::ConversationCreated;
use crate::secrets;
use crate::state::AppState;
use crate::sweeper;
use crate::workflow::{self, context};

pub mod wire;

pub use wire::{
    AddHandler, CreateQueue, IdentitySecret, Join, Joined, OfferView, PublicQueue, QueueCreated,
    QueueView, SettingsBody,
};

pub fn routes() -> Routes {
    Routes::new("queues").extend(managing()).extend(serving())
}

/// Operators' calls: creating, setting up and watching queues.
fn managing() -> Vec<Route> {
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
        Route::put("/v1/queues/{queue}/settings", change_settings)
            .id("changeQueueSettings")
            .summary("Change a queue's settings")
            .describe("Operators.")
            .body::<SettingsBody>()
            .returns::<wire::QueueView>(200, "The queue."),
        Route::post("/v1/queues/{queue}/handlers", add_handler)
            .id("addHandler")
            .summary("Add a handler")
            .describe("Operators. A handler is a member who may pick from the queue.")
            .body::<wire::AddHandler>()
            .no_content("Added."),
        Route::delete("/v1/queues/{queue}/handlers/{agent}", remove_handler)
            .id("removeHandler")
            .summary("Remove a handler")
            .describe("Operators.")
            .no_content("Removed."),
        Route::get("/v1/queues/{queue}/stats", stats)
            .id("queueStats")
            .summary("A queue's statistics")
            .describe("Operators. A wait or a handle counts in the window in which it ends.")
            .query(
                "from",
                time_schema(),
                "The window's start (inclusive); default: the beginning of the log.",
            )
            .query(
                "to",
                time_schema(),
                "The window's end (exclusive); default: now.",
            )
            .returns::<QueueStats>(200, "The figures."),
        Route::get("/v1/queues/{queue}/identity-secret", identity_secret)
            .id("identitySecret")
            .summary("A queue's identity secret")
            .describe(
                "Operators. What the queue's site signs its users' identities with (README, \
                 Returning customers); kept outside the log.",
            )
            .returns::<wire::IdentitySecret>(200, "The secret, or `null` while there is none."),
        Route::post("/v1/queues/{queue}/identity-secret", rotate_identity_secret)
            .id("rotateIdentitySecret")
            .summary("Make a new identity secret")
            .describe(
                "Operators. Replaces the one before: identities signed with it are no longer \
                 verified.",
            )
            .returns::<wire::IdentitySecret>(201, "The new secret."),
        Route::delete("/v1/queues/{queue}/identity-secret", remove_identity_secret)
            .id("removeIdentitySecret")
            .summary("Remove the identity secret")
            .describe(
                "Operators. Identities are ignored (`not_enabled`) until a new secret is made.",
            )
            .no_content("Removed (or there was none)."),
    ]
}

/// Opening and closing, picking, and the customers' side: the widget's face and joining.
fn serving() -> Vec<Route> {
    vec![
        Route::post("/v1/queues/{queue}/open", open)
            .id("openQueue")
            .summary("Open a queue")
            .describe("Its handlers and operators.")
            .no_content("Open."),
        Route::post("/v1/queues/{queue}/close", close)
            .id("closeQueue")
            .summary("Close a queue")
            .describe("Its handlers and operators.")
            .no_content("Closed."),
        Route::post("/v1/queues/{queue}/pick", pick)
            .id("pick")
            .summary("Pick the customer who has waited longest")
            .describe(
                "Handlers. 409 when nobody waits or the agent is at `capacity_per_agent`. Two \
                 agents never get the same customer. In a queue with `routing: auto` too; a \
                 customer under an offer to someone else is picked all the same (the offer \
                 ends).",
            )
            .returns::<ConversationCreated>(201, "The picked customer's conversation."),
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

/// The queue behind a path segment, from the read model (looked for again at the log's
/// position if it is not there: created a moment ago); 404 if there is none.
async fn find(state: &AppState, raw: &str) -> Result<projections::queues::read::Queue, ApiError> {
    let queue_id = path_id(raw)?;
    consistency::found(state, || async {
        Ok(projections::queues::read::queue(state.backend(), queue_id).await?)
    })
    .await?
    .ok_or(ApiError::NotFound)
}

/// The queue again, once the read models show every change of its stream answered before now
/// (its handlers, its settings): for a decision that a stale row could get wrong either way.
async fn current(
    state: &AppState,
    queue: projections::queues::read::Queue,
) -> Result<projections::queues::read::Queue, ApiError> {
    consistency::wait_for_stream(state, Queue::TYPE, &queue.id.to_string()).await?;
    Ok(projections::queues::read::queue(state.backend(), queue.id)
        .await?
        .unwrap_or(queue))
}

/// The queue, for a member of its organization (404 for anyone else), with the caller's role.
async fn find_as_member(
    state: &AppState,
    agent: &AgentCaller,
    raw: &str,
) -> Result<(projections::queues::read::Queue, Role), ApiError> {
    let queue = find(state, raw).await?;
    let role = access::member(state, agent, queue.organization_id).await?;
    Ok((queue, role))
}

/// The queue, for an operator of its organization: 404 for non-members, 403 for agents.
async fn find_as_operator(
    state: &AppState,
    agent: &AgentCaller,
    raw: &str,
) -> Result<projections::queues::read::Queue, ApiError> {
    let queue = find(state, raw).await?;
    access::at_least(state, agent, queue.organization_id, Role::Operator).await?;
    Ok(queue)
}

async fn rendered(state: &AppState, queue_id: Uuid) -> Result<Json<QueueView>, ApiError> {
    let queue = projections::queues::read::queue(state.backend(), queue_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(QueueView::from(&queue)))
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

/// A customer's token outlives its conversation by a day (`auth::CUSTOMER_TOKEN_AFTER_END`),
/// so a reopening window is at most that.
const REOPEN_WINDOW_MAX: i64 = 86_400;

fn reopen_window(raw: Option<Option<i64>>) -> Result<Option<Option<Limit>>, ApiError> {
    match raw {
        Some(Some(seconds)) if seconds > REOPEN_WINDOW_MAX => Err(ApiError::Invalid(format!(
            "reopen_window_seconds is at most {REOPEN_WINDOW_MAX} (a day)"
        ))),
        Some(Some(seconds)) => Limit::parse(seconds, "reopen_window_seconds")
            .map(|limit| Some(Some(limit)))
            .map_err(invalid),
        Some(None) => Ok(Some(None)),
        None => Ok(None),
    }
}

impl SettingsBody {
    fn parse(self) -> Result<SettingsPatch, ApiError> {
        let name = match self.name {
            None => None,
            Some(None) => return Err(ApiError::Invalid("a queue's name cannot be cleared".into())),
            Some(Some(name)) => Some(Name::parse(name).map_err(invalid)?),
        };
        let limit = |raw: Option<Option<i64>>, field| match raw {
            Some(Some(raw)) => Limit::parse(raw, field)
                .map(|limit| Some(Some(limit)))
                .map_err(invalid),
            Some(None) => Ok(Some(None)),
            None => Ok(None),
        };
        let welcome_message = match self.welcome_message {
            Some(Some(text)) => Some(Some(WelcomeMessage::parse(text).map_err(invalid)?)),
            other => other.map(|_| None),
        };
        let opening_hours = match self.opening_hours {
            Some(Some(raw)) => Some(Some(OpeningHours::parse(raw).map_err(invalid)?)),
            other => other.map(|_| None),
        };
        let allowed_origins = match self.allowed_origins {
            Some(origins) => Some(
                origins
                    .unwrap_or_default()
                    .iter()
                    .map(Origin::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(invalid)?,
            ),
            None => None,
        };
        let widget_position = match self.widget_position {
            Some(Some(raw)) => Some(WidgetPosition::parse(&raw).map_err(invalid)?),
            // `null` puts it back where it starts.
            Some(None) => Some(WidgetPosition::default()),
            None => None,
        };
        let widget_color = match self.widget_color {
            Some(Some(raw)) => Some(Some(Colour::parse(raw).map_err(invalid)?)),
            other => other.map(|_| None),
        };
        let routing = match self.routing {
            Some(Some(raw)) => Some(Routing::parse(&raw).map_err(invalid)?),
            // `null` puts it back to the default: manual.
            Some(None) => Some(Routing::default()),
            None => None,
        };
        let offer_timeout_seconds = match self.offer_timeout_seconds {
            Some(Some(raw)) => Some(OfferTimeout::parse(raw).map_err(invalid)?),
            Some(None) => Some(OfferTimeout::default()),
            None => None,
        };
        Ok(SettingsPatch {
            routing,
            offer_timeout_seconds,
            name,
            max_waiting: limit(self.max_waiting, "max_waiting")?,
            welcome_message,
            capacity_per_agent: limit(self.capacity_per_agent, "capacity_per_agent")?,
            opening_hours,
            allowed_origins,
            widget_position,
            widget_color,
            // `null` is the default: off.
            leave_message_when_offline: self
                .leave_message_when_offline
                .map(|offline| offline.unwrap_or(false)),
            reopen_window_seconds: reopen_window(self.reopen_window_seconds)?,
            target_wait_seconds: limit(self.target_wait_seconds, "target_wait_seconds")?,
            target_first_response_seconds: limit(
                self.target_first_response_seconds,
                "target_first_response_seconds",
            )?,
        })
    }
}

async fn change_settings(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<SettingsBody>,
) -> Result<impl IntoResponse, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let patch = body.parse()?;
    let change = QueueCommand::ChangeSettings {
        patch,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    let executed = workflow::run::<Queue>(
        &state,
        queue.id,
        change,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    // The answer shows the change: it waits for the read model to have it.
    state
        .wait_for_read_models(workflow::last_position(&executed))
        .await;
    rendered(&state, queue.id).await
}

async fn add_handler(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    Body(body): Body<AddHandler>,
) -> Result<StatusCode, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let organization_id = queue.organization_id;
    let member = consistency::found(&state, || async {
        Ok(
            projections::directory::read::role_of(state.backend(), organization_id, body.agent_id)
                .await?,
        )
    })
    .await?;
    if member.is_none() {
        return Err(ApiError::Invalid(
            "a handler must be a member of the queue's organization".into(),
        ));
    }
    let add = QueueCommand::AddHandler {
        agent_id: body.agent_id,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    workflow::run::<Queue>(
        &state,
        queue.id,
        add,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_handler(
    State(state): State<AppState>,
    Path((queue, target)): Path<(String, String)>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let target = path_id(&target)?;
    let remove = QueueCommand::RemoveHandler {
        agent_id: target,
        by: Some(agent.agent_id),
    };
    let caller = Caller::Agent(agent);
    workflow::run::<Queue>(
        &state,
        queue.id,
        remove,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Opening and closing: the queue's handlers and the organization's operators.
async fn open_or_close(
    state: AppState,
    raw: String,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
    open: bool,
) -> Result<StatusCode, ApiError> {
    let (mut queue, role) = find_as_member(&state, &agent, &raw).await?;
    if role < Role::Operator {
        // Its handlers decide: as they are now, not as a lagging read model last saw them.
        queue = current(&state, queue).await?;
    }
    if role < Role::Operator && !queue.handlers.contains(&agent.agent_id) {
        return Err(ApiError::Forbidden(
            "only the queue's handlers and operators open and close it".into(),
        ));
    }
    let by = Some(agent.agent_id);
    let command = if open {
        QueueCommand::OpenQueue { by }
    } else {
        QueueCommand::CloseQueue { by }
    };
    let caller = Caller::Agent(agent);
    workflow::run::<Queue>(
        &state,
        queue.id,
        command,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn open(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    open_or_close(state, queue, agent, key, true).await
}

async fn close(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<StatusCode, ApiError> {
    open_or_close(state, queue, agent, key, false).await
}

/// The longest-waiting customer goes to the caller. Who may pick (a handler) is the queue's
/// stream to decide, and whether the caller has room (`capacity_per_agent`) its workload's
/// stream, in the same append (`workflow::give`): two agents racing for one customer are settled
/// by the queue's expected version (invariant 2), two picks of one agent racing for its last
/// place by its workload's; the loser is retried by the command layer against the new state
/// and gets the next customer, or 409.
async fn pick(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    key: Option<Extension<IdempotencyKey>>,
) -> Result<impl IntoResponse, ApiError> {
    let (queue, _) = find_as_member(&state, &agent, &queue).await?;
    let account = projections::directory::read::account(state.backend(), agent.agent_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let agent_id = agent.agent_id;
    let pick = QueueCommand::PickCustomer {
        agent_id,
        agent_name: account.name,
    };
    let caller = Caller::Agent(agent);
    let executed = workflow::give(
        &state,
        queue.id,
        queue.organization_id,
        agent_id,
        pick,
        &context(Some(&caller), key.as_deref()),
    )
    .await?;
    let conversation_id = picked(&executed.typed)
        .ok_or_else(|| ApiError::Internal("a pick that picked nobody".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(ConversationCreated { conversation_id }),
    ))
}

/// The customer a pick or an accepted offer gave.
pub(crate) fn picked(events: &[QueueEvent]) -> Option<Uuid> {
    events.iter().find_map(|event| match event {
        QueueEvent::CustomerPicked {
            conversation_id, ..
        } => Some(*conversation_id),
        _ => None,
    })
}

#[derive(Deserialize)]
struct StatsQuery {
    from: Option<String>,
    to: Option<String>,
}

/// API.md's statistics of the queue: the `stats` read model's samples (the log's, folded by the
/// `stats` projector) through the same code as `jono stats`.
async fn stats(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
    Params(query): Params<StatsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let from = crate::extract::time("from", query.from.as_deref())?;
    let to = crate::extract::time("to", query.to.as_deref())?;
    let report = stats_from_rows(
        state.store.backend(),
        Scope::Queue(queue.id),
        from,
        to,
        None,
    )
    .await
    .map_err(|error| match error {
        StatsError::Store(error) => ApiError::from(error),
        StatsError::EmptyWindow { .. } => invalid(error),
        StatsError::UnknownQueue(_)
        | StatsError::UnknownOrganization(_)
        | StatsError::NotYetCreated { .. } => ApiError::NotFound,
        StatsError::Corrupt { .. } | StatsError::TooManyBuckets => {
            ApiError::Internal(error.to_string())
        }
    })?;
    Ok(Json(report.total))
}

/// What the widget shows before a customer joins: anyone may ask. `leave_message` says that
/// nobody can answer now, so the widget offers to leave a message instead of the line.
async fn public(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> Result<Json<PublicQueue>, ApiError> {
    let queue = find(&state, &queue).await?;
    let leave_message = super::left_messages::nobody_answers(&state, &queue).await?;
    let transcript_by_email = state.settings.mail.is_some();
    Ok(Json(PublicQueue::new(
        &queue,
        transcript_by_email,
        leave_message,
    )))
}

/// The identity of a join: the verified customer, and what the answer says of it (`None`
/// when the join brought none).
async fn check_identity(
    state: &AppState,
    queue_id: Uuid,
    claim: Option<&identity::Claim>,
) -> Result<(Option<VerifiedCustomer>, Option<identity::Check>), ApiError> {
    let Some(claim) = claim else {
        return Ok((None, None));
    };
    let secret = identity::secret(state.backend(), queue_id).await?;
    let checked = identity::verify(
        secret.as_ref().map(|secret| secret.secret.as_str()),
        claim,
        Utc::now().timestamp(),
    );
    match checked {
        Ok((user_id, name)) => {
            let key = secrets::customer_ref_secret(state.backend()).await?;
            let customer = VerifiedCustomer {
                customer_ref: domain::ids::customer_ref(key, queue_id, &user_id),
                user_id,
                name,
            };
            Ok((Some(customer), Some(identity::Check::Verified)))
        }
        Err(check) => Ok((None, Some(check))),
    }
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
pub(super) async fn customer_door(
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

/// The queue's identity secret, for its operators (`null` while it has none).
async fn identity_secret(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
) -> Result<impl IntoResponse, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let secret = identity::secret(state.backend(), queue.id).await?;
    Ok(Json(IdentitySecret::from(secret)))
}

/// A new identity secret for the queue, replacing the one before (signatures made with it are
/// no longer verified).
async fn rotate_identity_secret(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
) -> Result<impl IntoResponse, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    let secret = identity::rotate(state.backend(), queue.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(IdentitySecret::from(Some(secret))),
    ))
}

/// No identity secret: identities are ignored (`not_enabled`) until a new one is made.
async fn remove_identity_secret(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    agent: AgentCaller,
) -> Result<impl IntoResponse, ApiError> {
    let queue = find_as_operator(&state, &agent, &queue).await?;
    identity::remove(state.backend(), queue.id).await?;
    Ok(StatusCode::NO_CONTENT)
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

    use super::*;

    fn patch(body: Value) -> Result<SettingsPatch, ApiError> {
        serde_json::from_value::<SettingsBody>(body)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
            .parse()
    }

    #[test]
    fn absent_keeps_and_null_clears() {
        let empty = patch(json!({})).unwrap();
        assert_eq!(empty, SettingsPatch::default());
        let cleared = patch(json!({
            "max_waiting": null, "welcome_message": null, "capacity_per_agent": null,
            "opening_hours": null, "allowed_origins": null,
            "target_wait_seconds": null, "target_first_response_seconds": null
        }))
        .unwrap();
        assert_eq!(cleared.target_wait_seconds, Some(None));
        assert_eq!(cleared.target_first_response_seconds, Some(None));
        assert_eq!(cleared.max_waiting, Some(None));
        assert_eq!(cleared.welcome_message, Some(None));
        assert_eq!(cleared.capacity_per_agent, Some(None));
        assert_eq!(cleared.opening_hours, Some(None));
        assert_eq!(cleared.allowed_origins, Some(vec![]));
        assert_eq!(cleared.name, None);
    }

    #[test]
    fn settings_are_parsed_into_the_domains_values() {
        let set = patch(json!({
            "name": " Sales ", "max_waiting": 3, "welcome_message": "Hi!", "capacity_per_agent": 2,
            "opening_hours": {"timezone": "Europe/Helsinki", "weekly": [{"day": "mon", "open": "09:00", "close": "17:00"}]},
            "allowed_origins": ["https://Shop.Example"]
        }))
        .unwrap();
        assert_eq!(set.name.unwrap().as_str(), "Sales");
        assert_eq!(set.max_waiting.flatten().map(Limit::get), Some(3));
        assert_eq!(set.capacity_per_agent.flatten().map(Limit::get), Some(2));
        assert!(set.opening_hours.flatten().is_some());
        assert_eq!(
            set.allowed_origins.unwrap()[0].as_str(),
            "https://shop.example"
        );
    }

    #[test]
    fn bad_values_are_422_and_wrong_types_400() {
        let status = |body: Value| patch(body).map(|_| ()).unwrap_err().status();
        for bad in [
            json!({"max_waiting": 0}),
            json!({"max_waiting": -1}),
            json!({"capacity_per_agent": 0}),
            json!({"name": ""}),
            json!({"name": null}),
            json!({"welcome_message": "  "}),
            json!({"allowed_origins": ["ftp://x"]}),
            json!({"opening_hours": {"timezone": "Mars/Olympus", "weekly": []}}),
            json!({"opening_hours": {"timezone": "UTC", "weekly": [{"day": "mon", "open": "17:00", "close": "09:00"}]}}),
        ] {
            assert_eq!(
                status(bad.clone()),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}"
            );
        }
        for wrong in [
            json!({"max_waiting": "3"}),
            json!({"max_waiting": 1.5}),
            json!({"name": 3}),
            json!({"allowed_origins": "https://a"}),
            json!({"opening_hours": "always"}),
        ] {
            assert_eq!(status(wrong.clone()), StatusCode::BAD_REQUEST, "{wrong}");
        }
    }

    #[test]
    fn stats_times_are_rfc_3339_or_dates() {
        assert_eq!(crate::extract::time("from", None).unwrap(), None);
        assert_eq!(crate::extract::time("from", Some("")).unwrap(), None);
        let t = crate::extract::time("from", Some("2026-01-31T11:00:00+02:00"))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-31T09:00:00+00:00");
        let d = crate::extract::time("from", Some("2026-01-31"))
            .unwrap()
            .unwrap();
        assert_eq!(d.to_rfc3339(), "2026-01-31T00:00:00+00:00");
        assert_eq!(
            crate::extract::time("to", Some("yesterday"))
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
    }

    fn queue_with_origins(origins: Value) -> projections::queues::read::Queue {
        projections::queues::read::Queue {
            id: Uuid::new_v4(),
            organization_id: Uuid::new_v4(),
            name: "Support".into(),
            open: true,
            waiting: 0,
            oldest_wait_seconds: None,
            handlers: vec![],
            settings: json!({ "name": "Support", "allowed_origins": origins }),
        }
    }

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
