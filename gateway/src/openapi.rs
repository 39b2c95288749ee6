//! The OpenAPI 3.1 document of API.md, built in Rust and served at `GET /v1/openapi.json`
//! (STYLE.md habit 11: wire types are generated, not hand-copied).
//!
//! Each request and response body is the type its handler takes or returns (`Json<T>`), declared
//! once in its routes module (`routes::*`, `routes::conversations::wire`, `routes::queues::wire`)
//! and deriving `JsonSchema`; schemars writes its JSON Schema (2020-12, the dialect of OpenAPI
//! 3.1) into `components/schemas`, and the path table below says which operation takes and
//! returns which. Where a body carries the domain's own type (`Role`, `ConversationKind`,
//! `QueueSettings`, opening hours) that type is used, so the document follows the domain when it
//! changes; the queue statistics are `projections::stats::QueueStats` itself. The schemas still
//! declared here are the WebSocket frames', which `ws.rs` writes as JSON values. `schemas/openapi.json` is this document, committed; its
//! drift test fails when the two differ, and `tests/routes_documented.rs` when the routers and
//! this path table disagree.
//!
//! Every operation lists its success responses and a `default` response: the
//! `application/problem+json` body `{type, title, status, detail}` that every error has.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use domain::values::AuthorKind;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::error::Problem;
use crate::routes::accounts::{
    ChangePassword as ChangePasswordRequest, Login as LoginRequest, LoginAnswer, Me,
    SetStatus as SetStatusRequest, SignUp as SignUpRequest, SignUpResponse,
};
use crate::routes::activity::ActivityItem;
use crate::routes::blocks::{BlockRequest, BlockView, Blocked};
use crate::routes::canned::{
    CannedCreated, CannedResponse, Change as ChangeCannedRequest, Create as CreateCannedRequest,
};
use crate::routes::conversations::wire::{
    AddNote as NoteRequest, AddTag as TagRequest, AgentConversation, Attachment, CallStarted,
    ConversationCreated, ConversationView, Message, MessageAuthor, MessageSent, Note, NoteAdded,
    Rate as RatingRequest, ReadRequest, SendMessage as SendMessageRequest,
    StartChannel as ChannelRequest, StartDirect as DirectRequest, Transcript,
    Transfer as TransferRequest, UploadRequest,
};
use crate::routes::email::{ConfirmRequest, ResetPassword, ResetRequest, TranscriptEmailRequest};
use crate::routes::erasures::{Erased, ErasureRequest, Retention};
use crate::routes::handoff::HandoffBody as HandoffRequest;
use crate::routes::health::{Health, Readiness};
use crate::routes::left_messages::LeaveMessage as LeaveMessageRequest;
use crate::routes::organizations::{
    Accept as AcceptInvitationRequest, ChangeRole as ChangeRoleRequest, InvitationAccepted,
    InvitationCreated, InvitationView, Invite as InvitationRequest, Member,
};
use crate::routes::queues::wire::{
    AddHandler as AddHandlerRequest, CreateQueue as CreateQueueRequest, IdentitySecret,
    Join as JoinRequest, Joined, PublicQueue, QueueCreated, QueueView,
};
use crate::routes::queues::SettingsBody as QueueSettingsRequest;
use crate::routes::search::SearchHit;
use crate::routes::sessions::SessionView;
use crate::routes::sso::{SsoRequest, SsoView};
use crate::routes::two_factor::{
    Enrolment, OrgSecurity, RecoveryCodes, SecondStep, SignedIn, TwoFactorCode, TwoFactorProof,
};
use crate::routes::webhooks::{
    ParkedDelivery, WebhookEndpointRequest, WebhookEndpointView, WebhookPublicKey,
};
use crate::state::AppState;
use projections::stats::QueueStats;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(serve))
}

async fn serve() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], body.as_str())
}

// ---- bodies whose Rust type derives no schema ----
// `/v1/ws` carries the frames `ws.rs` writes as JSON values.

// ---- WebSocket frames ----

/// A frame a client sends over `/v1/ws`.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum WsClientFrame {
    /// Replays the topic after `after` (`null`: from its beginning), then follows it live.
    Subscribe {
        /// `activity`, `queue:ID` or `conversation:ID`.
        topic: String,
        after: Option<u64>,
    },
    Unsubscribe {
        topic: String,
    },
    /// A WebRTC offer, answer or ICE candidate for the conversation's other participants.
    Signal {
        conversation: Uuid,
        data: Map<String, Value>,
    },
    /// Not stored; relayed to the conversation's other participants.
    Typing {
        conversation: Uuid,
    },
}

/// Who a relayed frame is from.
#[derive(Serialize, JsonSchema)]
pub struct Participant {
    pub kind: AuthorKind,
    pub id: Uuid,
}

/// A stored event, flat: its `type`, the fields its JSON Schema in `schemas/events/` gives,
/// and `at`. A customer's topic carries only its allow-list of types and fields.
#[derive(Serialize, JsonSchema)]
pub struct WsEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub at: DateTime<Utc>,
}

/// A frame the server sends over `/v1/ws`.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum WsServerFrame {
    Event {
        topic: String,
        /// The event's place in the global log; it only rises within a topic.
        position: u64,
        event: WsEvent,
    },
    /// Every event of the topic up to `position` has been sent; live events follow.
    Subscribed { topic: String, position: u64 },
    /// A topic that does not exist or that the caller may not see (404), a malformed frame
    /// (400), or typing or signal frames beyond their rate (429).
    Error {
        topic: Option<String>,
        status: u16,
        detail: String,
    },
    Signal {
        conversation: Uuid,
        from: Participant,
        data: Map<String, Value>,
    },
    Typing {
        conversation: Uuid,
        author: MessageAuthor,
    },
    /// To a waiting customer subscribed to its conversation: at subscription and whenever its
    /// place changes.
    Queue {
        conversation: Uuid,
        /// 1 = next.
        queue_position: u64,
        /// A placeholder estimate: one minute (60 seconds) a place in line. It will learn from
        /// the queue's recent waits in the real-time extras issue; until then do not show it as
        /// a promise.
        estimated_wait_seconds: u64,
    },
}

// ---- the document ----

/// Who may call an operation without the bearer token every other operation needs.
#[derive(Clone, Copy)]
enum Access {
    /// Anyone.
    Public,
    /// Anyone; a bearer token changes what it does.
    OptionalToken,
}

/// One operation of the path table, built step by step.
struct Operation {
    method: &'static str,
    path: &'static str,
    value: Map<String, Value>,
    responses: Map<String, Value>,
}

/// The schema of a path parameter, by its name.
fn path_parameter(name: &str) -> Value {
    let (schema, description) = match name {
        "org" => (
            json!({"type": "string", "format": "uuid"}),
            "An organization's id.",
        ),
        "queue" => (json!({"type": "string", "format": "uuid"}), "A queue's id."),
        "c" => (
            json!({"type": "string", "format": "uuid"}),
            "A conversation's id.",
        ),
        "agent" => (
            json!({"type": "string", "format": "uuid"}),
            "An agent's id.",
        ),
        "call" => (json!({"type": "string", "format": "uuid"}), "A call's id."),
        "id" => (
            json!({"type": "string", "format": "uuid"}),
            "The item's id.",
        ),
        "token" => (json!({"type": "string"}), "An invitation token."),
        "endpoint" => (
            json!({"type": "string", "format": "uuid"}),
            "A webhook endpoint's id.",
        ),
        "position" => (
            json!({"type": "integer", "format": "int64", "minimum": 1}),
            "An event's position in the log.",
        ),
        "tag" => (json!({"type": "string"}), "A tag."),
        _ => (json!({"type": "string"}), ""),
    };
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

impl Operation {
    fn new(method: &'static str, path: &'static str, id: &str, tag: &str, summary: &str) -> Self {
        let mut value = Map::new();
        value.insert("operationId".into(), json!(id));
        value.insert("tags".into(), json!([tag]));
        value.insert("summary".into(), json!(summary));
        let parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(path_parameter)
            .collect();
        if !parameters.is_empty() {
            value.insert("parameters".into(), Value::Array(parameters));
        }
        Self {
            method,
            path,
            value,
            responses: Map::new(),
        }
    }

    fn access(mut self, access: Access) -> Self {
        match access {
            Access::Public => {
                self.value.insert("security".into(), json!([]));
            }
            Access::OptionalToken => {
                self.value
                    .insert("security".into(), json!([{}, {"bearer": []}]));
            }
        }
        self
    }

    fn describe(mut self, description: &str) -> Self {
        self.value.insert("description".into(), json!(description));
        self
    }

    fn query(mut self, name: &str, schema: Value, description: &str) -> Self {
        let parameter = json!({"name": name, "in": "query", "required": false,
            "description": description, "schema": schema});
        if let Some(Value::Array(parameters)) = self.value.get_mut("parameters") {
            parameters.push(parameter);
        } else {
            self.value
                .insert("parameters".into(), Value::Array(vec![parameter]));
        }
        self
    }

    /// `?after=CURSOR&limit=N`.
    fn paged(self, cursor: &str) -> Self {
        self.query(
            "after",
            json!({"type": "string"}),
            &format!("The cursor: {cursor}. Malformed is 400."),
        )
        .query(
            "limit",
            json!({"type": "integer", "minimum": 1}),
            "Items in a page: default 100; more than 1,000 is treated as 1,000.",
        )
    }

    fn body<T: JsonSchema>(mut self, generator: &mut SchemaGenerator, required: bool) -> Self {
        let schema = generator.subschema_for::<T>();
        self.value.insert(
            "requestBody".into(),
            json!({"required": required, "content": {"application/json": {"schema": schema}}}),
        );
        self
    }

    fn raw_body(mut self, body: Value) -> Self {
        self.value.insert("requestBody".into(), body);
        self
    }

    fn returns<T: JsonSchema>(
        mut self,
        generator: &mut SchemaGenerator,
        status: u16,
        description: &str,
    ) -> Self {
        let schema = generator.subschema_for::<T>();
        self.responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"application/json": {"schema": schema}}}),
        );
        self
    }

    fn raw_response(mut self, status: u16, response: Value) -> Self {
        self.responses.insert(status.to_string(), response);
        self
    }

    fn no_content(mut self, description: &str) -> Self {
        self.responses
            .insert("204".into(), json!({"description": description}));
        self
    }

    fn extension(mut self, name: &str, value: Value) -> Self {
        self.value.insert(name.into(), value);
        self
    }

    fn finish(mut self, problem: &Value) -> (&'static str, &'static str, Value) {
        self.responses.insert(
            "default".into(),
            json!({"description": "An error, as `application/problem+json` (RFC 9457).",
                "content": {"application/problem+json": {"schema": problem}}}),
        );
        self.value
            .insert("responses".into(), Value::Object(self.responses));
        (self.method, self.path, Value::Object(self.value))
    }
}

/// The OpenAPI 3.1 document: what `GET /v1/openapi.json` serves and `schemas/openapi.json`
/// holds.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
        })
        .for_serialize()
        .into_generator();
    let problem = generator.subschema_for::<Problem>().to_value();
    let mut paths = Map::new();
    for operation in operations(&mut generator) {
        let (method, path, value) = operation.finish(&problem);
        if let Value::Object(item) = paths.entry(path).or_insert_with(|| json!({})) {
            item.insert(method.into(), value);
        }
    }
    // The frames of `/v1/ws`, which no operation returns as a body.
    let client_frame = generator.subschema_for::<WsClientFrame>().to_value();
    let server_frame = generator.subschema_for::<WsServerFrame>().to_value();
    if let Some(Value::Object(ws)) = paths.get_mut("/v1/ws") {
        if let Some(Value::Object(get)) = ws.get_mut("get") {
            get.insert(
                "x-websocket-frames".into(),
                json!({"client": client_frame, "server": server_frame}),
            );
        }
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Jono",
            "version": "1",
            "description": "Jono's public contract (API.md): accounts and organizations, queues, conversations, canned responses, activity and the WebSocket. IDs are UUID strings; times are RFC 3339 in UTC; lists are pages, oldest first; errors are application/problem+json. Event and command schemas are in schemas/events and schemas/commands.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An agent token (sign-up, login, invitation acceptance) or a customer token (joining a queue).",
                },
            },
        },
    })
}

/// The path table: every call of API.md, plus the health checks, the attachment URL and this
/// document.
fn operations(g: &mut SchemaGenerator) -> Vec<Operation> {
    use Access::{OptionalToken, Public};
    let text = |description: &str| {
        json!({"description": description,
            "content": {"text/plain": {"schema": {"type": "string"}}}})
    };
    let uuid = json!({"type": "string", "format": "uuid"});
    let time =
        json!({"type": "string", "description": "An RFC 3339 time, or a date (midnight UTC)."});
    vec![
        // health
        Operation::new("get", "/healthz", "healthz", "health", "The process is up")
            .access(Public)
            .returns::<Health>(g, 200, "Up."),
        Operation::new("get", "/readyz", "readyz", "health", "Ready to serve")
            .access(Public)
            .describe("The store answers and every projector reached the log's head within 1 s; otherwise 503 with the reason.")
            .returns::<Readiness>(g, 200, "Ready.")
            .returns::<Readiness>(g, 503, "Not ready, and why."),
        Operation::new("get", "/metrics", "metrics", "health", "Prometheus metrics")
            .access(Public)
            .raw_response(200, text("Prometheus text format.")),
        Operation::new("get", "/v1/openapi.json", "openapi", "health", "This document")
            .access(Public)
            .raw_response(200, json!({"description": "The OpenAPI 3.1 document.",
                "content": {"application/json": {"schema": {"type": "object"}}}})),
        // accounts
        Operation::new("post", "/v1/signup", "signup", "accounts", "Sign up: a new organization and its owner")
            .access(Public)
            .describe("When sign-up is open. 409 if the email has an account; 422 for a password under 10 characters.")
            .body::<SignUpRequest>(g, true)
            .returns::<SignUpResponse>(g, 201, "The organization, its owner, and the owner's token."),
        Operation::new("post", "/v1/login", "login", "accounts", "Log in")
            .access(Public)
            .describe("401 on a wrong pair; rate limited per email and per address; 403 for a member of an organization that requires single sign-on (not its owners). An account with two-factor authentication gets a challenge instead of a token: `POST /v1/login/two-factor` answers it with a code.")
            .body::<LoginRequest>(g, true)
            .returns::<LoginAnswer>(g, 200, "A token, or a challenge for the second step."),
        Operation::new("post", "/v1/login/two-factor", "loginSecondStep", "accounts", "Log in: the second step")
            .access(Public)
            .describe("The challenge of `POST /v1/login` with `code` (the authenticator app's 6 digits; each is taken once) or `recovery_code` (each works once). 401 for a wrong code (5 per challenge) or an expired challenge (5 minutes); rate limited per account and per address (429).")
            .body::<SecondStep>(g, true)
            .returns::<SignedIn>(g, 200, "A token."),
        Operation::new("post", "/v1/logout", "logout", "accounts", "Log out")
            .no_content("The token stops working at once, on open WebSockets too."),
        Operation::new("get", "/v1/me", "me", "accounts", "The caller's account")
            .returns::<Me>(g, 200, "The account and its organizations."),
        Operation::new("put", "/v1/me/password", "changePassword", "accounts", "Change the password")
            .body::<ChangePasswordRequest>(g, true)
            .no_content("Changed; every other token of the account ends."),
        Operation::new("put", "/v1/me/status", "setStatus", "accounts", "Set presence")
            .body::<SetStatusRequest>(g, true)
            .no_content("Shown to teammates."),
        Operation::new("post", "/v1/me/two-factor", "enrolTwoFactor", "accounts", "Begin two-factor authentication")
            .describe("A new TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s), its `otpauth://` URI and that URI's QR code. It works once `POST /v1/me/two-factor/confirm` confirms it; enrolling again before replaces it. 409 when two-factor authentication is on.")
            .returns::<Enrolment>(g, 201, "The secret, its URI and QR code."),
        Operation::new("post", "/v1/me/two-factor/confirm", "confirmTwoFactor", "accounts", "Confirm two-factor authentication")
            .describe("A first code from the authenticator app turns two-factor authentication on. 403 for a wrong code, 409 with no enrolment begun; rate limited (429).")
            .body::<TwoFactorCode>(g, true)
            .returns::<RecoveryCodes>(g, 200, "Ten one-time recovery codes, shown only now."),
        Operation::new("post", "/v1/me/two-factor/disable", "disableTwoFactor", "accounts", "Turn two-factor authentication off")
            .describe("With a code or a recovery code. 403 for a wrong one, 409 when it is not on; rate limited (429).")
            .body::<TwoFactorProof>(g, true)
            .no_content("Off: the secret and the recovery codes are forgotten."),
        Operation::new("post", "/v1/me/email-confirmation", "resendEmailConfirmation", "accounts", "Send the address's confirmation link again")
            .describe("With email set up (`JONO_SMTP_URL`; 409 otherwise): a new link to confirm the account's address is emailed, and the one before stops working. 409 when the address is confirmed already; 3 an hour per account (429).")
            .raw_response(202, json!({"description": "The link is on its way."})),
        Operation::new("post", "/v1/email-confirmation", "confirmEmail", "accounts", "Confirm an address")
            .access(Public)
            .describe("The token of an emailed confirmation link (the console's `/confirm/TOKEN`): the account's address is confirmed (`EmailConfirmed`). A link works once, for 48 hours; 404 for an unknown, used or expired one. 409 when the deployment sends no email.")
            .body::<ConfirmRequest>(g, true)
            .no_content("Confirmed."),
        Operation::new("post", "/v1/password-reset/request", "requestPasswordReset", "accounts", "Ask for a password reset")
            .access(Public)
            .describe("With email set up (409 otherwise). The same answer whether or not the email has an account; an account gets a link (the console's `/reset/TOKEN`) that works once, for 30 minutes, replacing any earlier one. 5 an hour per client address and per email (429).")
            .body::<ResetRequest>(g, true)
            .raw_response(202, json!({"description": "Taken: if the email has an account, the link is on its way."})),
        Operation::new("post", "/v1/password-reset", "resetPassword", "accounts", "Reset the password")
            .access(Public)
            .describe("The token of an emailed reset link and the new password (at least 10 characters, 422). Every session of the account ends, and its address counts as confirmed. 404 for an unknown, used or expired link, which changes nothing. 409 when the deployment sends no email.")
            .body::<ResetPassword>(g, true)
            .no_content("The password is set; log in with it."),
        Operation::new("get", "/v1/me/sessions", "sessions", "accounts", "The caller's sessions")
            .describe("Live sessions, the latest used first: the User-Agent and address each was opened from.")
            .returns::<Vec<SessionView>>(g, 200, "The sessions."),
        Operation::new("delete", "/v1/me/sessions/{session}", "endSession", "accounts", "End one of the caller's sessions")
            .describe("Its token stops working at once, on open WebSockets too. 404 for a session not the caller's.")
            .no_content("Ended."),
        // organizations
        Operation::new("post", "/v1/orgs/{org}/invitations", "invite", "organizations", "Invite someone")
            .describe("Operators; owners for the roles operator and owner.")
            .body::<InvitationRequest>(g, true)
            .returns::<InvitationCreated>(g, 201, "The invitation and its token (7 days); with email set up, the link is also sent to the address (`emailed`)."),
        Operation::new("get", "/v1/orgs/{org}/invitations", "invitations", "organizations", "The invitations still open")
            .describe("Operators. Neither accepted, withdrawn nor expired, oldest first; never the token.")
            .paged("the last invitation's `invitation_id`")
            .returns::<Vec<InvitationView>>(g, 200, "A page of invitations."),
        Operation::new("delete", "/v1/orgs/{org}/invitations/{invitation}", "revokeInvitation", "organizations", "Withdraw an invitation")
            .describe("Operators; owners for an operator's or an owner's invitation. Its token stops working at once. 404 for an unknown, accepted or withdrawn invitation.")
            .no_content("Withdrawn."),
        Operation::new("post", "/v1/invitations/{token}/accept", "acceptInvitation", "organizations", "Accept an invitation")
            .access(OptionalToken)
            .describe("`{name, password}` for a new account. For an email that has an account: that account's bearer token and an empty body (401 without one, 403 with another account's; with email set up, 403 too while the account has not confirmed its address). 404 for an unknown, used or expired token.")
            .body::<AcceptInvitationRequest>(g, false)
            .returns::<InvitationAccepted>(g, 201, "A member of the organization, with a token."),
        Operation::new("get", "/v1/orgs/{org}/members", "members", "organizations", "The organization's members")
            .paged("the last member's `agent_id`")
            .returns::<Vec<Member>>(g, 200, "Its members."),
        Operation::new("put", "/v1/orgs/{org}/members/{agent}", "changeRole", "organizations", "Change a member's role")
            .describe("Operators; owners for the roles operator and owner.")
            .body::<ChangeRoleRequest>(g, true)
            .returns::<Member>(g, 200, "The member."),
        Operation::new("delete", "/v1/orgs/{org}/members/{agent}", "removeMember", "organizations", "Remove a member")
            .describe("The agent's access ends at once, its WebSockets included. The last owner cannot be removed (409).")
            .no_content("Removed."),
        Operation::new("delete", "/v1/orgs/{org}/members/{agent}/sessions", "endMemberSessions", "organizations", "End a member's sessions")
            .describe("Owners (403 otherwise). Every token of the member's account ends at once, its WebSockets included (`MemberSessionsEnded`).")
            .no_content("Ended."),
        Operation::new("get", "/v1/orgs/{org}/sso", "orgSso", "organizations", "The organization's single sign-on")
            .describe("Members. Never the client secret; `issuer` and `client_id` are null while none is set.")
            .returns::<SsoView>(g, 200, "The provider and whether members must use it."),
        Operation::new("put", "/v1/orgs/{org}/sso", "setOrgSso", "organizations", "Set the organization's single sign-on")
            .describe("Owners (403 otherwise). An OpenID Connect provider: its issuer (whose discovery document must be readable now, 422 otherwise), the client id, and the client secret (kept by the server, never in the log nor shown again; needed the first time). `required`: members sign in only through the provider, owners keep their password (`SsoConfigured`).")
            .body::<SsoRequest>(g, true)
            .returns::<SsoView>(g, 200, "The provider."),
        Operation::new("get", "/v1/sso/{org}/start", "ssoStart", "accounts", "Sign in through the organization's provider")
            .access(Public)
            .describe("Sends the browser to the provider (authorization-code flow with PKCE S256, `state` and `nonce`; 10 minutes). 404 when the organization has no single sign-on; 502 when its provider cannot be reached.")
            .query("login_hint", json!({"type": "string"}), "Passed on to the provider.")
            .raw_response(303, json!({"description": "To the provider's authorization endpoint (`Location`)."})),
        Operation::new("get", "/v1/sso/callback", "ssoCallback", "accounts", "Where the provider sends the browser back")
            .access(Public)
            .describe("Takes `state` once (401 for an unknown, used or expired one), trades `code` (with the PKCE verifier) for the ID token and checks its RS256 signature against the provider's JWKS, `iss`, `aud`, `exp` and `nonce`, and that `email_verified` is true (401 otherwise). A member signs in; an invited email's first sign-in creates its account (without a password) and joins; anyone else is refused 403.")
            .query("code", json!({"type": "string"}), "The provider's authorization code.")
            .query("state", json!({"type": "string"}), "The state the start sent.")
            .query("error", json!({"type": "string"}), "The provider's refusal, when it refused.")
            .raw_response(303, json!({"description": "To the console with the session's token in the fragment: `/#sso_token=TOKEN`."})),
        Operation::new("get", "/v1/orgs/{org}/security", "orgSecurity", "organizations", "The organization's sign-in rules")
            .returns::<OrgSecurity>(g, 200, "Whether members need two-factor authentication."),
        Operation::new("put", "/v1/orgs/{org}/security", "setOrgSecurity", "organizations", "Set the organization's sign-in rules")
            .describe("Owners (403 otherwise); an owner turns on its own two-factor authentication before requiring it (409). While it is required, a member without it is refused 403 in the organization, with a detail saying what to do (`TwoFactorRequirementSet`).")
            .body::<OrgSecurity>(g, true)
            .returns::<OrgSecurity>(g, 200, "The rules."),
        // queues
        Operation::new("post", "/v1/orgs/{org}/queues", "createQueue", "queues", "Create a queue")
            .describe("Operators. A new queue is closed.")
            .body::<CreateQueueRequest>(g, true)
            .returns::<QueueCreated>(g, 201, "The new queue."),
        Operation::new("get", "/v1/orgs/{org}/queues", "queues", "queues", "The organization's queues")
            .paged("the last queue's id")
            .returns::<Vec<QueueView>>(g, 200, "A page of queues."),
        Operation::new("get", "/v1/queues/{queue}", "queue", "queues", "A queue")
            .returns::<QueueView>(g, 200, "The queue, with its settings."),
        Operation::new("put", "/v1/queues/{queue}/settings", "changeQueueSettings", "queues", "Change a queue's settings")
            .describe("Operators.")
            .body::<QueueSettingsRequest>(g, true)
            .returns::<QueueView>(g, 200, "The queue."),
        Operation::new("post", "/v1/queues/{queue}/handlers", "addHandler", "queues", "Add a handler")
            .describe("Operators. A handler is a member who may pick from the queue.")
            .body::<AddHandlerRequest>(g, true)
            .no_content("Added."),
        Operation::new("delete", "/v1/queues/{queue}/handlers/{agent}", "removeHandler", "queues", "Remove a handler")
            .describe("Operators.")
            .no_content("Removed."),
        Operation::new("post", "/v1/queues/{queue}/open", "openQueue", "queues", "Open a queue")
            .describe("Its handlers and operators.")
            .no_content("Open."),
        Operation::new("post", "/v1/queues/{queue}/close", "closeQueue", "queues", "Close a queue")
            .describe("Its handlers and operators.")
            .no_content("Closed."),
        Operation::new("post", "/v1/queues/{queue}/pick", "pick", "queues", "Pick the customer who has waited longest")
            .describe("Handlers. 409 when nobody waits or the agent is at `capacity_per_agent`. Two agents never get the same customer. In a queue with `routing: auto` too; a customer under an offer to someone else is picked all the same (the offer ends).")
            .returns::<ConversationCreated>(g, 201, "The picked customer's conversation."),
        Operation::new("post", "/v1/conversations/{c}/offer/accept", "acceptOffer", "queues", "Accept the offer of a waiting customer")
            .describe("The agent the customer is offered to (auto routing: `CustomerOffered` on the `queue:ID` topic). The customer is picked by the caller, as by a pick. 409 when no offer of it is open (declined, expired, or the customer picked or gone), the offer is another agent's, it has expired, or the caller is at `capacity_per_agent`.")
            .returns::<ConversationCreated>(g, 201, "The accepted customer's conversation."),
        Operation::new("post", "/v1/conversations/{c}/offer/decline", "declineOffer", "queues", "Decline the offer of a waiting customer")
            .describe("The agent the customer is offered to. The customer passes to another agent (never back to this one while it waits). 409 when no offer of it is open or it is another agent's.")
            .no_content("Declined."),
        Operation::new("get", "/v1/queues/{queue}/stats", "queueStats", "queues", "A queue's statistics")
            .describe("Operators. A wait or a handle counts in the window in which it ends.")
            .query("from", time.clone(), "The window's start (inclusive); default: the beginning of the log.")
            .query("to", time.clone(), "The window's end (exclusive); default: now.")
            .returns::<QueueStats>(g, 200, "The figures."),
        Operation::new("get", "/v1/queues/{queue}/public", "publicQueue", "queues", "A queue's public face, for the widget")
            .access(Public)
            .returns::<PublicQueue>(g, 200, "The queue as the widget shows it."),
        Operation::new("post", "/v1/queues/{queue}/join", "join", "queues", "Join a queue as a customer")
            .access(Public)
            .describe("409 if the queue is closed or full; 403 from a site not among its `allowed_origins`. Rate limited per address.")
            .body::<JoinRequest>(g, false)
            .returns::<Joined>(g, 201, "The customer's conversation, token and place in line."),
        Operation::new("post", "/v1/queues/{queue}/messages", "leaveMessage", "queues", "Leave a message when nobody can answer")
            .access(Public)
            .describe("Whenever the queue exists, open or not: the message becomes a conversation of kind `left_message` in the queue (status `waiting` until an agent answers, never in the line), shown to its agents. Agents answer with ordinary messages; with email set up each answer is emailed to `email`. 403 from a site not among its `allowed_origins` or for a blocked visitor; 422 for a bad email or text. Rate limited per address (`left-message`: 5 an hour).")
            .body::<LeaveMessageRequest>(g, true)
            .returns::<crate::routes::left_messages::MessageLeftResponse>(g, 201, "The left message's conversation."),
        Operation::new("get", "/v1/queues/{queue}/identity-secret", "identitySecret", "queues", "A queue's identity secret")
            .describe("Operators. What the queue's site signs its users' identities with (README, Returning customers); kept outside the log.")
            .returns::<IdentitySecret>(g, 200, "The secret, or `null` while there is none."),
        Operation::new("post", "/v1/queues/{queue}/identity-secret", "rotateIdentitySecret", "queues", "Make a new identity secret")
            .describe("Operators. Replaces the one before: identities signed with it are no longer verified.")
            .returns::<IdentitySecret>(g, 201, "The new secret."),
        Operation::new("delete", "/v1/queues/{queue}/identity-secret", "removeIdentitySecret", "queues", "Remove the identity secret")
            .describe("Operators. Identities are ignored (`not_enabled`) until a new secret is made.")
            .no_content("Removed (or there was none)."),
        // conversations
        Operation::new("get", "/v1/conversations/{c}", "conversation", "conversations", "A conversation")
            .describe("Its participants. An agent sees the agent view; its customer sees only the customer view.")
            .returns::<ConversationView>(g, 200, "The conversation as the caller may see it."),
        Operation::new("get", "/v1/orgs/{org}/conversations", "conversations", "conversations", "The organization's conversations")
            .describe("Direct chats only the caller's own.")
            .query("status", json!({"enum": ["waiting", "active", "ended"]}), "Only conversations in this status.")
            .query("agent", uuid.clone(), "Only conversations of this agent.")
            .query("kind", json!({"enum": ["customer", "channel", "direct", "left_message"]}), "Only conversations of this kind.")
            .query("queue", uuid.clone(), "Only conversations of this queue.")
            .query("tag", json!({"type": "string"}), "Only conversations that carry this tag.")
            .query("from", time.clone(), "Only conversations started at or after this time.")
            .query("to", time.clone(), "Only conversations started before this time.")
            .paged("the last conversation's id")
            .returns::<Vec<AgentConversation>>(g, 200, "A page of conversations."),
        Operation::new("get", "/v1/orgs/{org}/search", "search", "conversations", "Search the organization's conversations")
            .describe("Full text over messages (and their files' names), private notes and customer metadata; the words of `q` are one phrase, never query syntax, so any text is a valid query. Newest first. Direct chats only the caller's own.")
            .query("q", json!({"type": "string", "maxLength": 500}), "What to find.")
            .paged("the last hit's `position`")
            .returns::<Vec<SearchHit>>(g, 200, "A page of hits."),
        Operation::new("get", "/v1/conversations/{c}/messages", "messages", "conversations", "A conversation's messages")
            .describe("A queue's welcome message, if set, is message 1, author `system`.")
            .paged("the last message's `seq`")
            .returns::<Vec<Message>>(g, 200, "A page of messages."),
        Operation::new("post", "/v1/conversations/{c}/messages", "sendMessage", "conversations", "Send a message")
            .describe("409 if the conversation ended; 422 if the text is too long, empty while the message carries no attachment, or an attachment is not this conversation's.")
            .body::<SendMessageRequest>(g, true)
            .returns::<MessageSent>(g, 201, "The message's id and `seq`."),
        Operation::new("post", "/v1/conversations/{c}/attachments", "upload", "conversations", "Upload a file")
            .describe("Multipart with one file part. 413 over 10 MiB, or over 100 MiB for the conversation.")
            .raw_body(json!({"required": true, "content": {"multipart/form-data": {
                "schema": generator_schema::<UploadRequest>(g)}}}))
            .returns::<Attachment>(g, 201, "The attachment, with a signed URL."),
        Operation::new("get", "/v1/attachments/{id}", "attachment", "conversations", "An attachment's file, by its signed URL")
            .access(Public)
            .describe("The URL an upload or a message gives; it needs no token and expires in 1 hour (404 after). Raster images inline, everything else as a download; always `nosniff` and a sandboxing CSP.")
            .query("expires", json!({"type": "string"}), "Part of the signed URL.")
            .query("sig", json!({"type": "string"}), "Part of the signed URL.")
            .raw_response(200, json!({"description": "The file.",
                "content": {"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}})),
        Operation::new("post", "/v1/conversations/{c}/read", "markRead", "conversations", "Mark messages read")
            .describe("Agents who may see the conversation. The caller has read up to message `seq`: its unread count in the conversation list follows, on every device. An older `seq` changes nothing; a `seq` past the newest message is 422.")
            .body::<ReadRequest>(g, true)
            .no_content("Marked."),
        Operation::new("post", "/v1/conversations/{c}/tags", "addTag", "conversations", "Tag a conversation")
            .describe("Agent participants.")
            .body::<TagRequest>(g, true)
            .no_content("Tagged."),
        Operation::new("delete", "/v1/conversations/{c}/tags/{tag}", "removeTag", "conversations", "Remove a tag")
            .describe("Agent participants.")
            .no_content("Removed."),
        Operation::new("get", "/v1/conversations/{c}/same-customer", "sameCustomer", "conversations", "The customer's other conversations")
            .describe("Agent participants. A verified returning customer's other conversations in the queue, newest first, at most 50; empty for a guest.")
            .returns::<Vec<AgentConversation>>(g, 200, "The conversations."),
        Operation::new("get", "/v1/conversations/{c}/notes", "notes", "conversations", "A conversation's private notes")
            .describe("Agent participants. Never shown to a customer.")
            .paged("the last note's id")
            .returns::<Vec<Note>>(g, 200, "The notes."),
        Operation::new("post", "/v1/conversations/{c}/notes", "addNote", "conversations", "Add a private note")
            .describe("Agent participants.")
            .body::<NoteRequest>(g, true)
            .returns::<NoteAdded>(g, 201, "The note's id."),
        Operation::new("put", "/v1/conversations/{c}/metadata", "setMetadata", "conversations", "Set customer metadata")
            .describe("Agent participants, or its customer. The body is the whole metadata object (at most 16 KiB).")
            .raw_body(json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}}))
            .no_content("Set."),
        Operation::new("post", "/v1/conversations/{c}/live", "updateLive", "conversations", "Update live metadata")
            .describe("Its customer. Last value wins. A string value that begins with a URI scheme must use http or https (422).")
            .raw_body(json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}}))
            .no_content("Updated."),
        Operation::new("post", "/v1/conversations/{c}/transfer", "transfer", "conversations", "Transfer to another queue")
            .describe("Agent participants. The customer waits again, first in line, in the target queue of the same organization.")
            .body::<TransferRequest>(g, true)
            .no_content("Transferred."),
        Operation::new("post", "/v1/conversations/{c}/handoff", "offerHandoff", "conversations", "Hand over to a teammate")
            .describe("The conversation's agent, or an operator, for an active customer conversation (409 otherwise, or to its own agent). The named teammate (404 if not a member of the organization) is offered the conversation until the queue's `offer_timeout_seconds` pass (`HandoffOffered`, on the `activity` topic with the teammate as its `agent_id`, and as `handoff` in the conversation); the conversation stays with its agent until the teammate accepts. A new handoff replaces an open one.")
            .body::<HandoffRequest>(g, true)
            .no_content("Offered."),
        Operation::new("post", "/v1/conversations/{c}/handoff/accept", "acceptHandoff", "conversations", "Accept a handoff")
            .describe("The teammate it is offered to (403 for another agent). The caller becomes the conversation's agent (`HandoffAccepted`; the customer sees the new agent's name) and the agent it came from has room again. 409 when no handoff is open (declined, replaced, or the conversation ended or moved), it has expired, or the caller is at the queue's `capacity_per_agent` (then nothing changes).")
            .returns::<ConversationCreated>(g, 201, "The accepted conversation."),
        Operation::new("post", "/v1/conversations/{c}/handoff/decline", "declineHandoff", "conversations", "Decline a handoff")
            .describe("The teammate it is offered to (403 for another agent; 409 when none is open). The conversation stays with its agent (`HandoffDeclined`).")
            .no_content("Declined."),
        Operation::new("post", "/v1/conversations/{c}/calls", "startCall", "conversations", "Start a call")
            .describe("Participants. Records `CallStarted`; media flows peer to peer, signalled over the WebSocket.")
            .returns::<CallStarted>(g, 201, "The call's id."),
        Operation::new("post", "/v1/conversations/{c}/calls/{call}/end", "endCall", "conversations", "End a call")
            .describe("Participants. Records `CallEnded`.")
            .no_content("Ended."),
        Operation::new("post", "/v1/conversations/{c}/end", "end", "conversations", "End a conversation")
            .describe("Agent participants, or its customer. A customer still waiting who ends has abandoned the queue.")
            .no_content("Ended."),
        Operation::new("post", "/v1/conversations/{c}/reopen", "reopen", "conversations", "Reopen an ended conversation")
            .describe("Agents, for an ended customer conversation or left message (409 if it has not ended or is a channel or direct chat): it is active again with the caller as its agent (`ConversationReopened`). A customer reopens by writing again: a message to its ended conversation within its queue's `reopen_window_seconds` reopens it with its last agent; after the window (or without one) it is 409, and the widget starts a new conversation.")
            .no_content("Reopened."),
        Operation::new("post", "/v1/conversations/{c}/block", "blockCustomer", "blocks", "Block the customer of a conversation")
            .describe("Agent participants of a customer conversation (409 for a channel or a direct chat). The customer's token ends, its sockets close, the conversation ends if it has not, and joins from the address it joined from (an IPv6 client by its /64) to any queue of the organization are refused with 403 until the block runs out or an operator lifts it. 422 for a length outside 1 minute to 365 days or a reason over 500 characters.")
            .body::<BlockRequest>(g, false)
            .returns::<Blocked>(g, 201, "Blocked."),
        Operation::new("get", "/v1/orgs/{org}/blocks", "blocks", "blocks", "The running blocks")
            .describe("Operators. Blocks that have neither run out nor been lifted, oldest first.")
            .paged("the last block's id")
            .returns::<Vec<BlockView>>(g, 200, "A page of blocks."),
        Operation::new("get", "/v1/orgs/{org}/audit", "audit", "organizations", "Who changed what, and when")
            .describe("Operators (403 for an agent). The organization's changes read from the log, oldest first: members and roles, invitations, queues and their settings and handlers, sign-in rules, single sign-on, webhooks, blocks, canned responses. Filters combine; `format=csv` answers the same rows as a CSV file (fields quoted; a value that starts like a spreadsheet formula is prefixed with `'`). 422 for a type that is not audited.")
            .query("type", json!({"type": "string"}), "Only these event types, comma-separated.")
            .query("actor", uuid.clone(), "Only what this agent did.")
            .query("subject", uuid.clone(), "Only what was done to this member, queue, endpoint, invitation or block.")
            .query("from", time.clone(), "From this time (inclusive).")
            .query("to", time.clone(), "Before this time.")
            .query("format", json!({"enum": ["json", "csv"]}), "`json` (the default) or `csv`.")
            .query("order", json!({"enum": ["asc", "desc"]}), "`asc` (the default: oldest first, the page starts after `after`) or `desc` (newest first, the page ends before `after`).")
            .paged("the last item's `position`")
            .raw_response(200, json!({"description": "A page of changes: JSON, or with `format=csv` the same rows as CSV.",
                "content": {
                    "application/json": {"schema": generator_schema::<Vec<crate::routes::audit::AuditItem>>(g)},
                    "text/csv": {"schema": {"type": "string"}},
                }})),
        Operation::new("delete", "/v1/orgs/{org}/blocks/{block}", "liftBlock", "blocks", "Lift a block")
            .describe("Operators (403 for an agent). 404 for an unknown or lifted block, 409 for one that ran out.")
            .no_content("Lifted; the visitor may join again."),
        Operation::new("post", "/v1/orgs/{org}/erasures", "eraseCustomer", "organizations", "Erase a customer's personal data")
            .describe("Operators and owners (403 for an agent). Exactly one of `conversation_id` (a customer conversation or left message of the organization; 404 for any other id, 409 for a channel or a direct chat) and `customer_ref` (a verified returning customer: every conversation of that customer in the organization; none is an empty `erased`); 422 otherwise. A conversation not ended ends first (`ConversationEnded` by the operator; a waiting customer leaves its line, `removed`), then `CustomerErased`: its messages' and notes' texts, the customer's name, its files' names read `[erased]` everywhere (conversation, messages, transcript, search, notes), its metadata and live metadata are empty, its files' bytes, its kept idempotent answers and its webhook deliveries still owed are deleted, the customer's token ends. Statistics do not change (beyond the end of a conversation that had not ended). Nothing personal is added to it afterwards (409 `conversation erased`). Erasing again answers the same (nothing appended). Audited (`CustomerErased`, subject the conversation).")
            .body::<ErasureRequest>(g, true)
            .returns::<Erased>(g, 200, "The conversations erased."),
        Operation::new("get", "/v1/orgs/{org}/retention", "orgRetention", "organizations", "The organization's retention of customers' personal data")
            .describe("Members.")
            .returns::<Retention>(g, 200, "Days after a conversation's end before its customer's personal data is erased; `null`: kept until erased by hand."),
        Operation::new("put", "/v1/orgs/{org}/retention", "setOrgRetention", "organizations", "Set the organization's retention of customers' personal data")
            .describe("Operators and owners (403 for an agent). `retention_days` from 1 to 3,650 (422 otherwise), or `null` to keep personal data until erased by hand (`RetentionSet`, audited). Customer conversations that ended more than that many days ago are erased by the server's sweeper (reason `retention`), a bounded batch every few seconds.")
            .body::<Retention>(g, true)
            .returns::<Retention>(g, 200, "The retention."),
        Operation::new("get", "/v1/webhooks/public-key", "webhookPublicKey", "webhooks", "The key that verifies webhook deliveries")
            .access(Public)
            .describe("The deployment's Ed25519 public key: each delivery's `Jono-Signature: t=<unix seconds>,ed25519=<base64>` signs the bytes `<t>.<body>` (README, Webhooks).")
            .returns::<WebhookPublicKey>(g, 200, "The public key, base64 and PEM."),
        Operation::new("get", "/v1/orgs/{org}/webhooks", "webhookEndpoints", "webhooks", "The organization's webhook endpoints")
            .describe("Operators (403 for an agent). Oldest first.")
            .paged("the last endpoint's `id`")
            .returns::<Vec<WebhookEndpointView>>(g, 200, "A page of its endpoints."),
        Operation::new("post", "/v1/orgs/{org}/webhooks", "addWebhookEndpoint", "webhooks", "Register a webhook endpoint")
            .describe("Operators (403 for an agent). Records `WebhookEndpointAdded`; events of the chosen types after it are delivered to the URL, signed, at least once and in position order. 422 for a URL that is not http(s), longer than 2,000 characters, or on a loopback or private address (unless the server runs with `JONO_WEBHOOK_PRIVATE_NETWORKS=true`), or for no or unknown event types; 409 for a URL registered already or an eleventh endpoint.")
            .body::<WebhookEndpointRequest>(g, true)
            .returns::<WebhookEndpointView>(g, 201, "The endpoint."),
        Operation::new("delete", "/v1/orgs/{org}/webhooks/{endpoint}", "removeWebhookEndpoint", "webhooks", "Remove a webhook endpoint")
            .describe("Operators (403 for an agent). Records `WebhookEndpointRemoved`; nothing more is delivered to it, what it was still owed included. 404 for an unknown endpoint.")
            .no_content("Removed."),
        Operation::new("get", "/v1/orgs/{org}/webhooks/parked", "parkedWebhookDeliveries", "webhooks", "Parked webhook deliveries")
            .describe("Operators (403 for an agent). Deliveries whose retries ran out (`JONO_WEBHOOK_RETRY_HOURS`, 24 by default); each holds the later deliveries of its endpoint.")
            .paged("the last delivery's `id`")
            .returns::<Vec<ParkedDelivery>>(g, 200, "A page of them, by position."),
        Operation::new("post", "/v1/orgs/{org}/webhooks/{endpoint}/deliveries/{position}/redeliver", "redeliverWebhook", "webhooks", "Deliver a parked delivery again")
            .describe("Operators (403 for an agent). A fresh round of attempts, from now; once it is delivered, the deliveries it held follow. 404 for a delivery that is not parked.")
            .raw_response(202, json!({"description": "It will be tried at once."})),
        Operation::new("post", "/v1/conversations/{c}/rating", "rate", "conversations", "Rate a conversation")
            .describe("Its customer, once; a second rating is 409.")
            .body::<RatingRequest>(g, true)
            .no_content("Rated."),
        Operation::new("get", "/v1/conversations/{c}/transcript", "transcript", "conversations", "A conversation's transcript")
            .describe("Participants; never notes for the customer.")
            .query("format", json!({"enum": ["json", "txt"]}), "`json` (the default) or `txt`.")
            .raw_response(200, json!({"description": "The whole conversation.",
                "content": {
                    "application/json": {"schema": generator_schema::<Transcript>(g)},
                    "text/plain": {"schema": {"type": "string"}},
                }})),
        Operation::new("post", "/v1/conversations/{c}/transcript/email", "emailTranscript", "conversations", "Email the transcript to the customer")
            .describe("Its customer (403 for an agent), with email set up (409 otherwise): the transcript as the customer sees it (messages; never notes, tags or metadata) is sent to `email`. 3 an hour per conversation and 10 an hour per client address (429).")
            .body::<TranscriptEmailRequest>(g, true)
            .raw_response(202, json!({"description": "The transcript is on its way."})),
        Operation::new("post", "/v1/orgs/{org}/channels", "startChannel", "conversations", "Start a channel")
            .describe("Operators. A channel's participants are the organization's members.")
            .body::<ChannelRequest>(g, true)
            .returns::<ConversationCreated>(g, 201, "The channel."),
        Operation::new("post", "/v1/orgs/{org}/directs", "startDirect", "conversations", "Start or find a direct chat")
            .describe("Members. The one private chat of the pair.")
            .body::<DirectRequest>(g, true)
            .returns::<ConversationCreated>(g, 201, "Started.")
            .returns::<ConversationCreated>(g, 200, "It existed."),
        // canned responses
        Operation::new("get", "/v1/canned-responses", "cannedResponses", "canned", "The caller's canned responses")
            .describe("The agent's own and those of its organizations.")
            .paged("the last response's id")
            .returns::<Vec<CannedResponse>>(g, 200, "The responses."),
        Operation::new("post", "/v1/canned-responses", "createCanned", "canned", "Create a canned response")
            .describe("Agents; operators for an organization's. 409 if the key is taken in that scope.")
            .body::<CreateCannedRequest>(g, true)
            .returns::<CannedCreated>(g, 201, "Its id."),
        Operation::new("put", "/v1/canned-responses/{id}", "changeCanned", "canned", "Change a canned response")
            .describe("Its owner; operators for an organization's.")
            .body::<ChangeCannedRequest>(g, true)
            .returns::<CannedResponse>(g, 200, "The response."),
        Operation::new("delete", "/v1/canned-responses/{id}", "deleteCanned", "canned", "Delete a canned response")
            .describe("Its owner; operators for an organization's.")
            .no_content("Deleted."),
        // activity
        Operation::new("get", "/v1/activity", "activity", "activity", "What happened in the caller's organizations")
            .describe("From the start of the log unless `after` says otherwise, oldest first.")
            .paged("the last item's `position`")
            .returns::<Vec<ActivityItem>>(g, 200, "A page of activity."),
        // WebSocket
        Operation::new("get", "/v1/ws", "websocket", "websocket", "The WebSocket")
            .describe("Token in the `Authorization` header or in `?token=`. JSON text frames: `x-websocket-frames` gives their schemas. Topics `activity`, `queue:ID` and `conversation:ID`; subscribe with `after` to resume with no gap and no duplicate. A client that reads too slowly is closed (1008 or 1013) and reconnects with `after`.")
            .query("token", json!({"type": "string"}), "The bearer token, for clients that cannot set headers.")
            .raw_response(101, json!({"description": "Switching to the WebSocket protocol."}))
            .extension("x-websocket", json!(true)),
    ]
}

/// `T`'s schema (a reference into the components) as a value.
fn generator_schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation<'a>(document: &'a Value, method: &str, path: &str) -> &'a Value {
        &document["paths"][path][method]
    }

    #[test]
    fn every_call_of_the_contract_is_described() {
        let document = document();
        for (method, path) in [
            ("post", "/v1/signup"),
            ("post", "/v1/login"),
            ("post", "/v1/logout"),
            ("get", "/v1/me"),
            ("post", "/v1/orgs/{org}/invitations"),
            ("post", "/v1/invitations/{token}/accept"),
            ("get", "/v1/orgs/{org}/invitations"),
            ("delete", "/v1/orgs/{org}/invitations/{invitation}"),
            ("put", "/v1/me/password"),
            ("get", "/v1/orgs/{org}/members"),
            ("put", "/v1/orgs/{org}/members/{agent}"),
            ("delete", "/v1/orgs/{org}/members/{agent}"),
            ("put", "/v1/me/status"),
            ("post", "/v1/login/two-factor"),
            ("post", "/v1/me/two-factor"),
            ("post", "/v1/me/two-factor/confirm"),
            ("post", "/v1/me/two-factor/disable"),
            ("get", "/v1/me/sessions"),
            ("delete", "/v1/me/sessions/{session}"),
            ("delete", "/v1/orgs/{org}/members/{agent}/sessions"),
            ("get", "/v1/orgs/{org}/security"),
            ("get", "/v1/orgs/{org}/sso"),
            ("put", "/v1/orgs/{org}/sso"),
            ("get", "/v1/sso/{org}/start"),
            ("get", "/v1/sso/callback"),
            ("put", "/v1/orgs/{org}/security"),
            ("post", "/v1/orgs/{org}/queues"),
            ("get", "/v1/orgs/{org}/queues"),
            ("get", "/v1/queues/{queue}"),
            ("put", "/v1/queues/{queue}/settings"),
            ("post", "/v1/queues/{queue}/handlers"),
            ("delete", "/v1/queues/{queue}/handlers/{agent}"),
            ("post", "/v1/queues/{queue}/open"),
            ("post", "/v1/queues/{queue}/close"),
            ("post", "/v1/queues/{queue}/pick"),
            ("post", "/v1/conversations/{c}/offer/accept"),
            ("post", "/v1/conversations/{c}/offer/decline"),
            ("get", "/v1/queues/{queue}/stats"),
            ("get", "/v1/queues/{queue}/public"),
            ("post", "/v1/queues/{queue}/join"),
            ("post", "/v1/queues/{queue}/messages"),
            ("get", "/v1/conversations/{c}"),
            ("get", "/v1/orgs/{org}/conversations"),
            ("get", "/v1/conversations/{c}/messages"),
            ("post", "/v1/conversations/{c}/messages"),
            ("post", "/v1/conversations/{c}/attachments"),
            ("post", "/v1/conversations/{c}/tags"),
            ("delete", "/v1/conversations/{c}/tags/{tag}"),
            ("get", "/v1/conversations/{c}/notes"),
            ("post", "/v1/conversations/{c}/notes"),
            ("put", "/v1/conversations/{c}/metadata"),
            ("post", "/v1/conversations/{c}/live"),
            ("post", "/v1/conversations/{c}/transfer"),
            ("post", "/v1/conversations/{c}/handoff"),
            ("post", "/v1/conversations/{c}/handoff/accept"),
            ("post", "/v1/conversations/{c}/handoff/decline"),
            ("post", "/v1/conversations/{c}/calls"),
            ("post", "/v1/conversations/{c}/calls/{call}/end"),
            ("post", "/v1/conversations/{c}/end"),
            ("post", "/v1/conversations/{c}/reopen"),
            ("post", "/v1/conversations/{c}/rating"),
            ("post", "/v1/conversations/{c}/block"),
            ("get", "/v1/orgs/{org}/blocks"),
            ("get", "/v1/orgs/{org}/audit"),
            ("delete", "/v1/orgs/{org}/blocks/{block}"),
            ("post", "/v1/orgs/{org}/erasures"),
            ("get", "/v1/orgs/{org}/retention"),
            ("put", "/v1/orgs/{org}/retention"),
            ("get", "/v1/webhooks/public-key"),
            ("get", "/v1/queues/{queue}/identity-secret"),
            ("post", "/v1/queues/{queue}/identity-secret"),
            ("delete", "/v1/queues/{queue}/identity-secret"),
            ("get", "/v1/conversations/{c}/same-customer"),
            ("get", "/v1/orgs/{org}/webhooks"),
            ("post", "/v1/orgs/{org}/webhooks"),
            ("delete", "/v1/orgs/{org}/webhooks/{endpoint}"),
            ("get", "/v1/orgs/{org}/webhooks/parked"),
            (
                "post",
                "/v1/orgs/{org}/webhooks/{endpoint}/deliveries/{position}/redeliver",
            ),
            ("get", "/v1/conversations/{c}/transcript"),
            ("post", "/v1/conversations/{c}/transcript/email"),
            ("post", "/v1/me/email-confirmation"),
            ("post", "/v1/email-confirmation"),
            ("post", "/v1/password-reset/request"),
            ("post", "/v1/password-reset"),
            ("post", "/v1/orgs/{org}/channels"),
            ("post", "/v1/orgs/{org}/directs"),
            ("get", "/v1/canned-responses"),
            ("post", "/v1/canned-responses"),
            ("put", "/v1/canned-responses/{id}"),
            ("delete", "/v1/canned-responses/{id}"),
            ("get", "/v1/activity"),
            ("get", "/v1/ws"),
        ] {
            let operation = operation(&document, method, path);
            assert!(operation.is_object(), "{method} {path} is missing");
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("default"), "{method} {path}");
            assert!(
                responses
                    .keys()
                    // A redirect is the success of a browser's leg (single sign-on).
                    .any(|status| status.starts_with(['1', '2', '3'])),
                "{method} {path} has no success response"
            );
        }
    }

    #[test]
    fn every_reference_points_into_the_components() {
        fn walk(value: &Value, schemas: &Map<String, Value>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(reference)) = map.get("$ref") {
                        let name = reference
                            .strip_prefix("#/components/schemas/")
                            .unwrap_or_else(|| panic!("{reference} is not a component"));
                        assert!(schemas.contains_key(name), "{reference} is missing");
                    }
                    map.values().for_each(|value| walk(value, schemas));
                }
                Value::Array(items) => items.iter().for_each(|value| walk(value, schemas)),
                _ => {}
            }
        }
        let document = document();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        walk(&document, schemas);
    }

    #[test]
    fn path_parameters_match_the_paths() {
        let document = document();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let declared: Vec<&str> = operation["parameters"]
                    .as_array()
                    .map(|parameters| {
                        parameters
                            .iter()
                            .filter(|p| p["in"] == "path")
                            .map(|p| p["name"].as_str().unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                let in_path: Vec<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                assert_eq!(declared, in_path, "{method} {path}");
            }
        }
    }

    #[test]
    fn the_queue_frame_says_its_estimate_is_a_placeholder() {
        let document = document().to_string();
        assert!(document.contains("A placeholder estimate"));
    }

    #[test]
    fn errors_are_problem_details() {
        let document = document();
        let problem = &document["components"]["schemas"]["Problem"];
        let mut required: Vec<&str> = problem["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|field| field.as_str().unwrap())
            .collect();
        required.sort_unstable();
        assert_eq!(required, ["detail", "status", "title", "type"]);
    }
}
