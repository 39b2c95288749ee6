//! The wire types of the queue routes: the bodies they take and the answers they return. The
//! OpenAPI document references these same types.
//!
//! A queue's settings are kept by the read model as the JSON its projector wrote
//! (`projections::queues::read::Queue::settings`); the view passes those values through as they are (so an answer
//! is what it always was) and documents each with the domain's type (`#[schemars(with)]`).

use chrono::{DateTime, Utc};
use domain::queue::{OfferTimeout, QueueSettings, Routing, WidgetPosition};
use domain::schedule::RawOpeningHours;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::identity;

// `POST /v1/orgs/{org}/queues`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "CreateQueueRequest")]
pub struct CreateQueue {
    pub name: String,
}

#[derive(Serialize, JsonSchema)]
pub struct QueueCreated {
    pub queue_id: Uuid,
}

/// A change of some settings: an absent field keeps its value, `null` clears it (`name`
/// cannot be cleared).
// The wire's types: a wrong type is 400 here, a bad value 422 when it is parsed into the
// domain's `SettingsPatch`.
#[derive(Deserialize, Default, JsonSchema)]
#[schemars(rename = "QueueSettingsRequest")]
pub struct SettingsBody {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "String")]
    pub(super) name: Option<Option<String>>,
    /// The most customers who may wait at once; a join beyond it is 409.
    #[schemars(range(min = 1, max = 100_000))]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Option<u32>>")]
    pub(super) max_waiting: Option<Option<i64>>,
    /// Message 1 of each conversation of the queue, from `system`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) welcome_message: Option<Option<String>>,
    /// The most open conversations an agent may have and still pick.
    #[schemars(range(min = 1, max = 100_000))]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Option<u32>>")]
    pub(super) capacity_per_agent: Option<Option<i64>>,
    /// Opens and closes the queue on schedule.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) opening_hours: Option<Option<RawOpeningHours>>,
    /// The sites (`https://host[:port]`) that may embed its widget.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) allowed_origins: Option<Option<Vec<String>>>,
    /// The bottom corner of the host page the widget takes; `null` puts it back (`right`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Option<WidgetPosition>>")]
    pub(super) widget_position: Option<Option<String>>,
    /// The widget launcher's colour, `#rrggbb`; `null` is Jono's own.
    #[schemars(regex(pattern = r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"))]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) widget_color: Option<Option<String>>,
    /// `manual`: agents pick. `auto`: each waiting customer is also offered to one online
    /// handler with room (fewest open conversations, then idle longest), who accepts or
    /// declines; `null` puts it back (`manual`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Option<Routing>>")]
    pub(super) routing: Option<Option<String>>,
    /// How long an offer waits for its agent before it passes to the next (1 to 3,600;
    /// `null` puts it back to 30).
    #[schemars(range(min = 1, max = 3600))]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Option<u32>>")]
    pub(super) offer_timeout_seconds: Option<Option<i64>>,
    /// The widget offers to leave a message also while none of the queue's handlers is online
    /// (it always does while the queue is closed or full); `null` is `false`.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) leave_message_when_offline: Option<Option<bool>>,
    /// How long after its end a customer who writes again continues the same conversation
    /// with its agent instead of joining the back of the line; `null`: never.
    #[schemars(range(min = 1, max = 86_400))]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Option<u32>>")]
    pub(super) reopen_window_seconds: Option<Option<i64>>,
    /// The service-level target for a wait, in seconds: a customer picked within it meets it,
    /// one still waiting past it breaches it. `null` clears it.
    #[schemars(range(min = 1, max = 100_000))]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Option<u32>>")]
    pub(super) target_wait_seconds: Option<Option<i64>>,
    /// The service-level target for the first answer, in seconds from the join to the first
    /// message by an agent. `null` clears it.
    #[schemars(range(min = 1, max = 100_000))]
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Option<u32>>")]
    pub(super) target_first_response_seconds: Option<Option<i64>>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A count the read model keeps as a signed integer; never negative.
fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

/// A queue, in a list and alone: API.md's fields, then its settings flat and as one object.
// The settings' fields are always present (`null` when unset), `offers` only alone; the document
// has called them optional since they came after API.md.
#[derive(Serialize, JsonSchema)]
pub struct QueueView {
    pub id: Uuid,
    pub name: String,
    pub open: bool,
    /// How many customers wait now.
    pub waiting: u64,
    /// How long the longest-waiting customer has waited; `null` when nobody waits.
    pub oldest_wait_seconds: Option<u64>,
    /// The members who may pick from it.
    pub handlers: Vec<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Option<u32>>")]
    pub max_waiting: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Option<String>>")]
    pub welcome_message: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Option<u32>>")]
    pub capacity_per_agent: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Option<RawOpeningHours>>")]
    pub opening_hours: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<String>>")]
    pub allowed_origins: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<WidgetPosition>")]
    pub widget_position: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Option<String>>")]
    pub widget_color: Option<Value>,
    /// `manual` (agents pick) or `auto` (customers are offered to agents too).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Routing>")]
    pub routing: Option<Value>,
    /// How long an offer waits for its agent before it passes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<u32>")]
    pub offer_timeout_seconds: Option<Value>,
    /// The service-level target for a wait, in seconds; `null`: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Option<u32>>")]
    pub target_wait_seconds: Option<Value>,
    /// The service-level target for the first answer (join to an agent's first message), in
    /// seconds; `null`: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Option<u32>>")]
    pub target_first_response_seconds: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leave_message_when_offline: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Option<u32>>")]
    pub reopen_window_seconds: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<QueueSettings>")]
    pub settings: Option<Value>,
    /// The open offers of auto routing, in the order of their conversations' ids (only in
    /// `GET /v1/queues/{queue}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offers: Option<Vec<OfferView>>,
}

/// A setting's value, or its default when unset or of another JSON type.
fn or_default<T: Serialize + Default>(value: Option<&Value>, kind: fn(&Value) -> bool) -> Value {
    match value {
        Some(value) if kind(value) => value.clone(),
        _ => serde_json::to_value(T::default()).unwrap_or(Value::Null),
    }
}

impl From<&projections::queues::read::Queue> for QueueView {
    fn from(queue: &projections::queues::read::Queue) -> Self {
        let setting = |name: &str| Some(queue.settings.get(name).cloned().unwrap_or(Value::Null));
        let allowed_origins = match queue.settings.get("allowed_origins") {
            None | Some(Value::Null) => Value::Array(Vec::new()),
            Some(origins) => origins.clone(),
        };
        Self {
            id: queue.id,
            name: queue.name.clone(),
            open: queue.open,
            waiting: count(queue.waiting),
            oldest_wait_seconds: queue.oldest_wait_seconds.map(count),
            handlers: queue.handlers.clone(),
            organization_id: Some(queue.organization_id),
            max_waiting: setting("max_waiting"),
            welcome_message: setting("welcome_message"),
            capacity_per_agent: setting("capacity_per_agent"),
            opening_hours: setting("opening_hours"),
            allowed_origins: Some(allowed_origins),
            widget_position: Some(widget_position(queue)),
            widget_color: setting("widget_color"),
            routing: Some(or_default::<Routing>(
                queue.settings.get("routing"),
                Value::is_string,
            )),
            offer_timeout_seconds: Some(or_default::<OfferTimeout>(
                queue.settings.get("offer_timeout_seconds"),
                Value::is_number,
            )),
            target_wait_seconds: setting("target_wait_seconds"),
            target_first_response_seconds: setting("target_first_response_seconds"),
            leave_message_when_offline: Some(
                queue
                    .settings
                    .get("leave_message_when_offline")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            ),
            reopen_window_seconds: setting("reopen_window_seconds"),
            settings: Some(queue.settings.clone()),
            offers: None,
        }
    }
}

/// Where the queue's widget sits: its setting, or where it starts (`right`).
pub fn widget_position(queue: &projections::queues::read::Queue) -> Value {
    or_default::<WidgetPosition>(queue.settings.get("widget_position"), Value::is_string)
}

/// A waiting customer offered to an agent, who may accept it until `expires_at`.
#[derive(Serialize, JsonSchema)]
pub struct OfferView {
    pub conversation_id: Uuid,
    pub offer_id: Uuid,
    pub agent_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

// `POST /v1/queues/{queue}/handlers`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "AddHandlerRequest")]
pub struct AddHandler {
    pub agent_id: Uuid,
}

/// What the widget shows before a customer joins.
#[derive(Serialize, JsonSchema)]
pub struct PublicQueue {
    pub name: String,
    pub open: bool,
    pub waiting: u64,
    #[schemars(with = "Option<String>")]
    pub welcome_message: Value,
    /// The bottom corner of the host page the widget takes.
    #[schemars(with = "WidgetPosition")]
    pub widget_position: Value,
    /// The launcher's colour (`#rrggbb`); `null` is Jono's own.
    #[schemars(with = "Option<String>")]
    pub widget_color: Value,
    /// Whether the customer may have its transcript emailed
    /// (`POST /v1/conversations/{c}/transcript/email`): the deployment sends email.
    pub transcript_by_email: bool,
    /// Nobody can answer now (the queue is closed or full, or — with its
    /// `leave_message_when_offline` — none of its handlers is online): the widget offers to
    /// leave a message (`POST /v1/queues/{queue}/messages`) instead of the line.
    pub leave_message: bool,
    /// How long after its end a customer may continue a conversation by writing again
    /// (the queue's `reopen_window_seconds`); `null`: not at all.
    #[schemars(with = "Option<u32>")]
    pub reopen_window_seconds: Value,
}

impl PublicQueue {
    /// The widget's view of `queue`; the two answers that are not the queue's are given.
    pub fn new(
        queue: &projections::queues::read::Queue,
        transcript_by_email: bool,
        leave_message: bool,
    ) -> Self {
        let setting = |name: &str| queue.settings.get(name).cloned().unwrap_or(Value::Null);
        Self {
            name: queue.name.clone(),
            open: queue.open,
            waiting: count(queue.waiting),
            welcome_message: setting("welcome_message"),
            widget_position: widget_position(queue),
            widget_color: setting("widget_color"),
            transcript_by_email,
            leave_message,
            reopen_window_seconds: setting("reopen_window_seconds"),
        }
    }
}

// `POST /v1/queues/{queue}/join`.
#[derive(Deserialize, Default, JsonSchema)]
#[schemars(rename = "JoinRequest")]
pub struct Join {
    /// What a pre-chat form asked: a JSON object of at most 16 KiB.
    // An object or nothing: another JSON type is a wrong type (400), not a bad value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// A returning customer's identity, signed by the site with the queue's identity secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<SignedIdentity>")]
    pub identity: Option<identity::Claim>,
}

/// A site's signed-in user, vouched for with HMAC-SHA256 under the queue's identity secret
/// (README, "Returning customers"): the signature is the lowercase hex of
/// HMAC-SHA256(secret, "jono-identity-v1\n" + user_id + "\n" + name + "\n" + expires).
// The schema of `identity::Claim`, which the handler reads (`identity.rs` holds no schema).
#[derive(JsonSchema)]
pub struct SignedIdentity {
    /// The site's own id for the user: 1 to 256 characters, no control characters, no space at
    /// either end.
    pub user_id: String,
    /// The user's name (signed as the empty string when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unix seconds; the identity is ignored (`expired`) from then on.
    pub expires: i64,
    /// Hex of the HMAC-SHA256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// What became of a join's identity.
// The schema of `identity::Check`, which the answer holds (`identity.rs` holds no schema).
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityCheck {
    /// Recorded with the join; the customer's conversations are linked.
    Verified,
    /// Ignored: no signature.
    Unsigned,
    /// Ignored: signed, but past its `expires`.
    Expired,
    /// Ignored: the signature is not the queue's secret's for it.
    BadSignature,
    /// Ignored: its user id or name cannot be taken.
    Invalid,
    /// Ignored: the queue has no identity secret.
    NotEnabled,
}

#[derive(Serialize, JsonSchema)]
pub struct Joined {
    pub conversation_id: Uuid,
    /// A customer token: it opens only this conversation.
    pub customer_token: String,
    /// 1 = next.
    pub queue_position: u64,
    /// `null` when the join brought no identity; else whether it was verified or why it was
    /// ignored (the customer joins either way, as a guest when ignored).
    #[schemars(with = "Option<IdentityCheck>")]
    pub identity: Option<identity::Check>,
}

/// A queue's identity secret, for its operators; never in the log.
#[derive(Serialize, JsonSchema)]
pub struct IdentitySecret {
    /// `null` while the queue has none (identities are then ignored, `not_enabled`).
    pub secret: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

impl From<Option<identity::Secret>> for IdentitySecret {
    fn from(secret: Option<identity::Secret>) -> Self {
        match secret {
            Some(secret) => Self {
                secret: Some(secret.secret),
                created_at: Some(secret.created_at),
            },
            None => Self {
                secret: None,
                created_at: None,
            },
        }
    }
}
