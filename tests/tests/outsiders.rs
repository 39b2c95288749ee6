//! The outsider walk (invariant 8): every operation of `schemas/openapi.json` (but those
//! `NOT_WALKED_HERE` names, with its reason) is called by three
//! outsiders of Acme's world — an agent of another organization, the customer of another
//! conversation, and someone with no token — and each answer is the one the table says.
//! Afterwards Acme's owner sees exactly what it saw before: a refused command appended nothing.
//!
//! How the table's answers follow from API.md:
//! - no token: 401 on every route but those `anyone` may call (sign-up, login, invitation
//!   acceptance, a queue's public view and joining).
//! - the other organization's agent: 404 for anything in an organization it is not a member of
//!   and for any conversation it may not see ("never reveal that it exists"); routes about
//!   itself (`/v1/me`, its password, its canned responses, its activity) answer for itself.
//! - the other conversation's customer: 404 for a conversation that is not its own (its token
//!   "opens only that customer's own conversation"). On agent-only routes it is authenticated
//!   but not allowed (403), while the thing is also in an organization it is not a member of
//!   (404): API.md admits either, so the table asks for [`Expect::Hidden`] — 403 or 404, and
//!   the same answer as for an id that does not exist, so that the status never tells whether
//!   the thing exists. Agent-only routes that name nothing (`/v1/me`, `/v1/activity`,
//!   `/v1/canned-responses`) have nothing to hide: 403.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jono_tests::api::{self, eventually, Agent, Api, Customer, Reply, PASSWORD};
use jono_tests::{contract, Storage};
use serde_json::{json, Value};
use uuid::Uuid;

/// What one outsider must be answered.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Status(u16),
    /// 403 or 404, and the same as for ids that do not exist.
    Hidden,
}
use Expect::{Hidden, Status};

/// The ids a route may name: Acme's real ones, or fresh ones that exist nowhere.
#[derive(Debug, Clone)]
struct Ids {
    org: Uuid,
    queue: Uuid,
    conversation: Uuid,
    channel: Uuid,
    direct: Uuid,
    member: Uuid,
    owner: Uuid,
    canned_org: Uuid,
    canned_personal: Uuid,
    invitation: String,
    invitation_id: Uuid,
    owner_email: String,
    /// Things Acme's world has none of (a call, a block, a webhook endpoint): the outsider
    /// must be refused before the id matters.
    nothing: Uuid,
}

impl Ids {
    fn unknown(&self) -> Ids {
        Ids {
            org: Uuid::new_v4(),
            queue: Uuid::new_v4(),
            conversation: Uuid::new_v4(),
            channel: Uuid::new_v4(),
            direct: Uuid::new_v4(),
            member: Uuid::new_v4(),
            owner: Uuid::new_v4(),
            canned_org: Uuid::new_v4(),
            canned_personal: Uuid::new_v4(),
            invitation: format!("unknown{}", Uuid::new_v4().simple()),
            invitation_id: Uuid::new_v4(),
            owner_email: api::fresh_email("nobody"),
            nothing: Uuid::new_v4(),
        }
    }
}

type Request = fn(&Ids) -> (String, Option<Value>);

/// How a row's body goes: as JSON, or (an upload) as the one file of a multipart form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Json,
    /// The body's JSON string is the file's content.
    File,
}

/// One row: the route, how to call it, and the answers for (another organization's agent,
/// another conversation's customer, no token).
struct Row {
    method: &'static str,
    route: &'static str,
    request: Request,
    expect: [Expect; 3],
    form: Form,
}

const fn row(
    method: &'static str,
    route: &'static str,
    request: Request,
    expect: [Expect; 3],
) -> Row {
    Row {
        method,
        route,
        request,
        expect,
        form: Form::Json,
    }
}

/// A row whose body is a file, uploaded as `multipart/form-data`.
const fn upload(route: &'static str, request: Request, expect: [Expect; 3]) -> Row {
    Row {
        method: "POST",
        route,
        request,
        expect,
        form: Form::File,
    }
}

const NOT_HERE: [Expect; 3] = [Status(404), Hidden, Status(401)];
const NOT_YOURS: [Expect; 3] = [Status(404), Status(404), Status(401)];

/// Routes whose refusal must leave Acme untouched.
fn routes() -> Vec<Row> {
    vec![
        // Accounts: callable by anyone, and the outsiders get what anyone gets.
        row(
            "POST",
            "/v1/signup",
            |ids| {
                (
                    "/v1/signup".into(),
                    Some(
                        json!({"organization": "Evil", "name": "Eve", "email": ids.owner_email, "password": PASSWORD}),
                    ),
                )
            },
            [Status(409); 3],
        ),
        row(
            "POST",
            "/v1/login",
            |ids| {
                (
                    "/v1/login".into(),
                    Some(json!({"email": ids.owner_email, "password": "not the password at all"})),
                )
            },
            [Status(401); 3],
        ),
        row(
            "GET",
            "/v1/me",
            |_| ("/v1/me".into(), None),
            [Status(200), Status(403), Status(401)],
        ),
        row(
            "PUT",
            "/v1/me/password",
            |_| {
                (
                    "/v1/me/password".into(),
                    Some(
                        json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
                    ),
                )
            },
            [Status(204), Status(403), Status(401)],
        ),
        // Organizations.
        row(
            "POST",
            "/v1/orgs/{org}/invitations",
            |ids| {
                (
                    format!("/v1/orgs/{}/invitations", ids.org),
                    Some(json!({"email": "mole@example.com", "role": "owner"})),
                )
            },
            NOT_HERE,
        ),
        // Acme's real invitation, accepted with an empty body: 403 with another account's
        // token (the customer's is no account's either), 401 without one.
        row(
            "POST",
            "/v1/invitations/{token}/accept (empty body)",
            |ids| {
                (
                    format!("/v1/invitations/{}/accept", ids.invitation),
                    Some(json!({})),
                )
            },
            [Status(403), Status(403), Status(401)],
        ),
        row(
            "GET",
            "/v1/orgs/{org}/members",
            |ids| (format!("/v1/orgs/{}/members", ids.org), None),
            NOT_HERE,
        ),
        row(
            "PUT",
            "/v1/orgs/{org}/members/{agent}",
            |ids| {
                (
                    format!("/v1/orgs/{}/members/{}", ids.org, ids.member),
                    Some(json!({"role": "operator"})),
                )
            },
            NOT_HERE,
        ),
        row(
            "DELETE",
            "/v1/orgs/{org}/members/{agent}",
            |ids| (format!("/v1/orgs/{}/members/{}", ids.org, ids.member), None),
            NOT_HERE,
        ),
        // Queues.
        row(
            "POST",
            "/v1/orgs/{org}/queues",
            |ids| {
                (
                    format!("/v1/orgs/{}/queues", ids.org),
                    Some(json!({"name": "Mole"})),
                )
            },
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/orgs/{org}/queues",
            |ids| (format!("/v1/orgs/{}/queues", ids.org), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/queues/{queue}",
            |ids| (format!("/v1/queues/{}", ids.queue), None),
            NOT_HERE,
        ),
        row(
            "PUT",
            "/v1/queues/{queue}/settings",
            |ids| {
                (
                    format!("/v1/queues/{}/settings", ids.queue),
                    Some(json!({"name": "Hijacked", "welcome_message": "pwned"})),
                )
            },
            NOT_HERE,
        ),
        row(
            "POST",
            "/v1/queues/{queue}/handlers",
            |ids| {
                (
                    format!("/v1/queues/{}/handlers", ids.queue),
                    Some(json!({"agent_id": ids.member})),
                )
            },
            NOT_HERE,
        ),
        row(
            "DELETE",
            "/v1/queues/{queue}/handlers/{agent}",
            |ids| {
                (
                    format!("/v1/queues/{}/handlers/{}", ids.queue, ids.owner),
                    None,
                )
            },
            NOT_HERE,
        ),
        row(
            "POST",
            "/v1/queues/{queue}/close",
            |ids| (format!("/v1/queues/{}/close", ids.queue), None),
            NOT_HERE,
        ),
        row(
            "POST",
            "/v1/queues/{queue}/open",
            |ids| (format!("/v1/queues/{}/open", ids.queue), None),
            NOT_HERE,
        ),
        row(
            "POST",
            "/v1/queues/{queue}/pick",
            |ids| (format!("/v1/queues/{}/pick", ids.queue), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/queues/{queue}/stats",
            |ids| (format!("/v1/queues/{}/stats", ids.queue), None),
            NOT_HERE,
        ),
        // Conversations.
        row(
            "GET",
            "/v1/conversations/{c}",
            |ids| (format!("/v1/conversations/{}", ids.conversation), None),
            NOT_YOURS,
        ),
        row(
            "GET",
            "/v1/orgs/{org}/conversations",
            |ids| (format!("/v1/orgs/{}/conversations", ids.org), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/conversations/{c}/messages",
            |ids| {
                (
                    format!("/v1/conversations/{}/messages", ids.conversation),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/messages",
            |ids| {
                (
                    format!("/v1/conversations/{}/messages", ids.conversation),
                    Some(json!({"text": "I should not be here"})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/tags",
            |ids| {
                (
                    format!("/v1/conversations/{}/tags", ids.conversation),
                    Some(json!({"tag": "mole"})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "DELETE",
            "/v1/conversations/{c}/tags/{tag}",
            |ids| {
                (
                    format!("/v1/conversations/{}/tags/vip", ids.conversation),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "GET",
            "/v1/conversations/{c}/notes",
            |ids| {
                (
                    format!("/v1/conversations/{}/notes", ids.conversation),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/notes",
            |ids| {
                (
                    format!("/v1/conversations/{}/notes", ids.conversation),
                    Some(json!({"text": "mole note"})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "PUT",
            "/v1/conversations/{c}/metadata",
            |ids| {
                (
                    format!("/v1/conversations/{}/metadata", ids.conversation),
                    Some(json!({"name": "Mallory"})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/live",
            |ids| {
                (
                    format!("/v1/conversations/{}/live", ids.conversation),
                    Some(json!({"page": "https://example.com/evil"})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/rating",
            |ids| {
                (
                    format!("/v1/conversations/{}/rating", ids.conversation),
                    Some(json!({"score": 1})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "GET",
            "/v1/conversations/{c}/transcript?format=json",
            |ids| {
                (
                    format!(
                        "/v1/conversations/{}/transcript?format=json",
                        ids.conversation
                    ),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "GET",
            "/v1/conversations/{c}/transcript?format=txt",
            |ids| {
                (
                    format!(
                        "/v1/conversations/{}/transcript?format=txt",
                        ids.conversation
                    ),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/end",
            |ids| (format!("/v1/conversations/{}/end", ids.conversation), None),
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/orgs/{org}/channels",
            |ids| {
                (
                    format!("/v1/orgs/{}/channels", ids.org),
                    Some(json!({"name": "moles"})),
                )
            },
            NOT_HERE,
        ),
        // Erasure (issue 17): an outsider erases nothing and learns nothing.
        row(
            "POST",
            "/v1/orgs/{org}/erasures",
            |ids| {
                (
                    format!("/v1/orgs/{}/erasures", ids.org),
                    Some(json!({"conversation_id": ids.conversation})),
                )
            },
            NOT_HERE,
        ),
        row(
            "PUT",
            "/v1/orgs/{org}/retention",
            |ids| {
                (
                    format!("/v1/orgs/{}/retention", ids.org),
                    Some(json!({"retention_days": 1})),
                )
            },
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/orgs/{org}/retention",
            |ids| (format!("/v1/orgs/{}/retention", ids.org), None),
            NOT_HERE,
        ),
        row(
            "POST",
            "/v1/orgs/{org}/directs",
            |ids| {
                (
                    format!("/v1/orgs/{}/directs", ids.org),
                    Some(json!({"agent_id": ids.member})),
                )
            },
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/conversations/{channel}/messages",
            |ids| (format!("/v1/conversations/{}/messages", ids.channel), None),
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{channel}/messages",
            |ids| {
                (
                    format!("/v1/conversations/{}/messages", ids.channel),
                    Some(json!({"text": "mole in the channel"})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "GET",
            "/v1/conversations/{direct}",
            |ids| (format!("/v1/conversations/{}", ids.direct), None),
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{direct}/messages",
            |ids| {
                (
                    format!("/v1/conversations/{}/messages", ids.direct),
                    Some(json!({"text": "mole in the direct chat"})),
                )
            },
            NOT_YOURS,
        ),
        // Canned responses.
        row(
            "GET",
            "/v1/canned-responses",
            |_| ("/v1/canned-responses".into(), None),
            [Status(200), Status(403), Status(401)],
        ),
        row(
            "POST",
            "/v1/canned-responses (Acme's)",
            |ids| {
                (
                    "/v1/canned-responses".into(),
                    Some(json!({"key": "mole", "text": "mole", "organization_id": ids.org})),
                )
            },
            NOT_HERE,
        ),
        row(
            "PUT",
            "/v1/canned-responses/{id} (Acme's)",
            |ids| {
                (
                    format!("/v1/canned-responses/{}", ids.canned_org),
                    Some(json!({"text": "hijacked"})),
                )
            },
            NOT_HERE,
        ),
        row(
            "DELETE",
            "/v1/canned-responses/{id} (Acme's)",
            |ids| (format!("/v1/canned-responses/{}", ids.canned_org), None),
            NOT_HERE,
        ),
        row(
            "PUT",
            "/v1/canned-responses/{id} (the owner's own)",
            |ids| {
                (
                    format!("/v1/canned-responses/{}", ids.canned_personal),
                    Some(json!({"text": "hijacked"})),
                )
            },
            NOT_HERE,
        ),
        row(
            "DELETE",
            "/v1/canned-responses/{id} (the owner's own)",
            |ids| {
                (
                    format!("/v1/canned-responses/{}", ids.canned_personal),
                    None,
                )
            },
            NOT_HERE,
        ),
        // Activity.
        row(
            "GET",
            "/v1/activity",
            |_| ("/v1/activity".into(), None),
            [Status(200), Status(403), Status(401)],
        ),
        // Read-only routes of the issues after API.md, each also checked in its own file.
        row(
            "GET",
            "/v1/orgs/{org}/invitations",
            |ids| (format!("/v1/orgs/{}/invitations", ids.org), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/orgs/{org}/blocks",
            |ids| (format!("/v1/orgs/{}/blocks", ids.org), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/orgs/{org}/audit",
            |ids| (format!("/v1/orgs/{}/audit", ids.org), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/orgs/{org}/security",
            |ids| (format!("/v1/orgs/{}/security", ids.org), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/orgs/{org}/sso",
            |ids| (format!("/v1/orgs/{}/sso", ids.org), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/orgs/{org}/webhooks",
            |ids| (format!("/v1/orgs/{}/webhooks", ids.org), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/orgs/{org}/webhooks/parked",
            |ids| (format!("/v1/orgs/{}/webhooks/parked", ids.org), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/orgs/{org}/search",
            |ids| (format!("/v1/orgs/{}/search?q=hello", ids.org), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/queues/{queue}/identity-secret",
            |ids| (format!("/v1/queues/{}/identity-secret", ids.queue), None),
            NOT_HERE,
        ),
        row(
            "GET",
            "/v1/conversations/{c}/same-customer",
            |ids| {
                (
                    format!("/v1/conversations/{}/same-customer", ids.conversation),
                    None,
                )
            },
            NOT_YOURS,
        ),
        // Routes that change things, of the issues after API.md, each also checked in its own
        // file. Ids Acme's world lacks (a call, a block, an endpoint) are fresh: the outsider is
        // refused before they matter.
        upload(
            "/v1/conversations/{c}/attachments",
            |ids| {
                (
                    format!("/v1/conversations/{}/attachments", ids.conversation),
                    Some(json!("a mole's file")),
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/block",
            |ids| {
                (
                    format!("/v1/conversations/{}/block", ids.conversation),
                    Some(json!({"minutes": 60, "reason": "mole"})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/calls",
            |ids| {
                (
                    format!("/v1/conversations/{}/calls", ids.conversation),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/calls/{call}/end",
            |ids| {
                (
                    format!(
                        "/v1/conversations/{}/calls/{}/end",
                        ids.conversation, ids.nothing
                    ),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/handoff",
            |ids| {
                (
                    format!("/v1/conversations/{}/handoff", ids.conversation),
                    Some(json!({"agent_id": ids.member})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/handoff/accept",
            |ids| {
                (
                    format!("/v1/conversations/{}/handoff/accept", ids.conversation),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/handoff/decline",
            |ids| {
                (
                    format!("/v1/conversations/{}/handoff/decline", ids.conversation),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/offer/accept",
            |ids| {
                (
                    format!("/v1/conversations/{}/offer/accept", ids.conversation),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/offer/decline",
            |ids| {
                (
                    format!("/v1/conversations/{}/offer/decline", ids.conversation),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/read",
            |ids| {
                (
                    format!("/v1/conversations/{}/read", ids.conversation),
                    Some(json!({"seq": 1})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/reopen",
            |ids| {
                (
                    format!("/v1/conversations/{}/reopen", ids.conversation),
                    None,
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/transcript/email",
            |ids| {
                (
                    format!("/v1/conversations/{}/transcript/email", ids.conversation),
                    Some(json!({"email": "mole@example.com"})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "POST",
            "/v1/conversations/{c}/transfer",
            |ids| {
                (
                    format!("/v1/conversations/{}/transfer", ids.conversation),
                    Some(json!({"queue_id": ids.queue})),
                )
            },
            NOT_YOURS,
        ),
        row(
            "DELETE",
            "/v1/orgs/{org}/blocks/{block}",
            |ids| (format!("/v1/orgs/{}/blocks/{}", ids.org, ids.nothing), None),
            NOT_HERE,
        ),
        row(
            "DELETE",
            "/v1/orgs/{org}/invitations/{invitation}",
            |ids| {
                (
                    format!("/v1/orgs/{}/invitations/{}", ids.org, ids.invitation_id),
                    None,
                )
            },
            NOT_HERE,
        ),
        row(
            "DELETE",
            "/v1/orgs/{org}/members/{agent}/sessions",
            |ids| {
                (
                    format!("/v1/orgs/{}/members/{}/sessions", ids.org, ids.member),
                    None,
                )
            },
            NOT_HERE,
        ),
        row(
            "PUT",
            "/v1/orgs/{org}/security",
            |ids| {
                (
                    format!("/v1/orgs/{}/security", ids.org),
                    Some(json!({"require_two_factor": true})),
                )
            },
            NOT_HERE,
        ),
        // An issuer that answers nothing (the discard port): were the outsider not refused
        // first, its discovery document would be unreadable (422), not 404.
        row(
            "PUT",
            "/v1/orgs/{org}/sso",
            |ids| {
                (
                    format!("/v1/orgs/{}/sso", ids.org),
                    Some(json!({
                        "issuer": "http://127.0.0.1:9",
                        "client_id": "mole",
                        "client_secret": "mole",
                        "required": true
                    })),
                )
            },
            NOT_HERE,
        ),
        row(
            "POST",
            "/v1/orgs/{org}/webhooks",
            |ids| {
                (
                    format!("/v1/orgs/{}/webhooks", ids.org),
                    Some(json!({
                        "url": "https://203.0.113.7/mole",
                        "event_types": ["MessageSent"]
                    })),
                )
            },
            NOT_HERE,
        ),
        row(
            "DELETE",
            "/v1/orgs/{org}/webhooks/{endpoint}",
            |ids| {
                (
                    format!("/v1/orgs/{}/webhooks/{}", ids.org, ids.nothing),
                    None,
                )
            },
            NOT_HERE,
        ),
        row(
            "POST",
            "/v1/orgs/{org}/webhooks/{endpoint}/deliveries/{position}/redeliver",
            |ids| {
                (
                    format!(
                        "/v1/orgs/{}/webhooks/{}/deliveries/1/redeliver",
                        ids.org, ids.nothing
                    ),
                    None,
                )
            },
            NOT_HERE,
        ),
        row(
            "POST",
            "/v1/queues/{queue}/identity-secret",
            |ids| (format!("/v1/queues/{}/identity-secret", ids.queue), None),
            NOT_HERE,
        ),
        row(
            "DELETE",
            "/v1/queues/{queue}/identity-secret",
            |ids| (format!("/v1/queues/{}/identity-secret", ids.queue), None),
            NOT_HERE,
        ),
    ]
}

/// Routes anyone may call; they may append (a join is a join), so they run after the check.
fn open_to_anyone() -> Vec<Row> {
    vec![
        row(
            "GET",
            "/v1/queues/{queue}/public",
            |ids| (format!("/v1/queues/{}/public", ids.queue), None),
            [Status(200); 3],
        ),
        row(
            "POST",
            "/v1/queues/{queue}/join",
            |ids| {
                (
                    format!("/v1/queues/{}/join", ids.queue),
                    Some(json!({"metadata": {}})),
                )
            },
            [Status(201); 3],
        ),
        // A message left on a queue is anyone's to leave, open queue or not (left_messages.rs).
        row(
            "POST",
            "/v1/queues/{queue}/messages",
            |ids| {
                (
                    format!("/v1/queues/{}/messages", ids.queue),
                    Some(json!({"text": "Call me back", "email": "caller@example.com"})),
                )
            },
            [Status(201); 3],
        ),
        row(
            "POST",
            "/v1/logout",
            |_| ("/v1/logout".into(), None),
            [Status(204), Status(403), Status(401)],
        ),
    ]
}

/// The operations of the OpenAPI document this file does not walk, and why; every other one
/// must have a row above (`the_tables_walk_every_route_of_the_document` fails otherwise, so a new
/// route is walked or named here).
const NOT_WALKED_HERE: &[&str] = &[
    // Anyone's, by design: nothing of an organization to refuse.
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v1/openapi.json",
    "GET /v1/webhooks/public-key",
    // A bearer of a secret, not of a token: a signed URL (attachments.rs), an emailed link
    // (email.rs), a login challenge (two_factor.rs), a provider's redirect (sso.rs).
    "GET /v1/attachments/{id}",
    "POST /v1/email-confirmation",
    "POST /v1/password-reset/request",
    "POST /v1/password-reset",
    "POST /v1/login/two-factor",
    "GET /v1/sso/{org}/start",
    "GET /v1/sso/callback",
    // The caller's own account: nothing of anyone else's to name (sessions.rs, two_factor.rs,
    // email.rs, websocket.rs).
    "PUT /v1/me/status",
    "POST /v1/me/email-confirmation",
    "GET /v1/me/sessions",
    "DELETE /v1/me/sessions/{session}",
    "POST /v1/me/two-factor",
    "POST /v1/me/two-factor/confirm",
    "POST /v1/me/two-factor/disable",
    // The WebSocket: its topics are refused frame by frame (websocket.rs).
    "GET /v1/ws",
];

/// The tables are the document's routes: every operation of `schemas/openapi.json` is a row of
/// `routes` or `open_to_anyone`, or named in `NOT_WALKED_HERE`; no row names a route the
/// document does not have.
#[test]
fn the_tables_walk_every_route_of_the_document() {
    let covered: Vec<(String, String)> = routes()
        .into_iter()
        .chain(open_to_anyone())
        .map(|row| {
            // A row's name may say more after the path: "… (empty body)".
            let path = row.route.split(' ').next().unwrap_or(row.route);
            (row.method.to_owned(), path.to_owned())
        })
        .collect();
    let gaps = contract::coverage_gaps(|_| true, &covered, NOT_WALKED_HERE);
    assert!(gaps.is_empty(), "{}", gaps.join("\n"));
}

/// Acme: an owner, a second member, a queue with a picked customer (a message, a tag, a note)
/// and a waiting one and an identity secret, a channel, a direct chat, canned responses and an
/// open invitation.
struct Acme {
    owner: Agent,
    member: Agent,
    ids: Ids,
    waiting: Customer,
}

async fn acme(api: &Api) -> Acme {
    let owner = api::sign_up(api, "Acme").await;
    let member = api::invite_and_accept(api, &owner, "agent", "Max Member").await;
    let queue = api::open_queue_handled_by(api, &owner, "Support").await;
    let served = api::join(api, queue, json!({"name": "Sam"})).await;
    let conversation = api::pick(api, &owner, queue).await;
    assert_eq!(conversation, served.conversation_id);
    api::send_message(api, served.token(), conversation, "Hi there").await;
    let path = format!("/v1/conversations/{conversation}");
    api.post(
        &format!("{path}/tags"),
        owner.token(),
        json!({"tag": "vip"}),
    )
    .await
    .expect(204, "tag");
    api.post(
        &format!("{path}/notes"),
        owner.token(),
        json!({"text": "secret note"}),
    )
    .await
    .expect(201, "note");
    let waiting = api::join(api, queue, json!({"name": "Wanda"})).await;
    let channel = api
        .post(
            &format!("/v1/orgs/{}/channels", owner.organization_id),
            owner.token(),
            json!({"name": "team"}),
        )
        .await
        .expect(201, "a channel")
        .id("conversation_id");
    api::send_message(api, owner.token(), channel, "Team meeting at 10").await;
    let direct = api
        .post(
            &format!("/v1/orgs/{}/directs", owner.organization_id),
            owner.token(),
            json!({"agent_id": member.agent_id}),
        )
        .await
        .expect(201, "a direct chat")
        .id("conversation_id");
    api::send_message(api, owner.token(), direct, "Just between us").await;
    // Each side of a private chat can name the other: its two agents are in the view.
    let seen = api
        .get(&format!("/v1/conversations/{direct}"), member.token())
        .await
        .expect(200, "the member reads the direct chat");
    let mut participants: Vec<String> = seen.body["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|id| id.as_str().expect("an id").to_owned())
        .collect();
    participants.sort();
    let mut expected = vec![owner.agent_id.to_string(), member.agent_id.to_string()];
    expected.sort();
    assert_eq!(participants, expected, "{}", seen.text);
    let canned_org = api
        .post(
            "/v1/canned-responses",
            owner.token(),
            json!({"key": "hello", "text": "Hello from Acme", "organization_id": owner.organization_id}),
        )
        .await
        .expect(201, "an organization's canned response")
        .id("id");
    let canned_personal = api
        .post(
            "/v1/canned-responses",
            owner.token(),
            json!({"key": "bye", "text": "Bye from Olivia"}),
        )
        .await
        .expect(201, "a personal canned response")
        .id("id");
    let invited = api
        .post(
            &format!("/v1/orgs/{}/invitations", owner.organization_id),
            owner.token(),
            json!({"email": api::fresh_email("invitee"), "role": "agent"}),
        )
        .await
        .expect(201, "an invitation");
    let invitation = invited.body["token"].as_str().expect("a token").to_owned();
    let invitation_id = invited.id("invitation_id");
    // An identity secret, so that an outsider's new one or removal would show.
    api.post(
        &format!("/v1/queues/{queue}/identity-secret"),
        owner.token(),
        json!({}),
    )
    .await
    .expect(201, "an identity secret");
    Acme {
        ids: Ids {
            org: owner.organization_id,
            queue,
            conversation,
            channel,
            direct,
            member: member.agent_id,
            owner: owner.agent_id,
            canned_org,
            canned_personal,
            invitation,
            invitation_id,
            owner_email: owner.email.clone(),
            nothing: Uuid::new_v4(),
        },
        owner,
        member,
        waiting,
    }
}

/// Everything Acme's owner can see.
fn owner_paths(acme: &Acme) -> Vec<String> {
    let ids = &acme.ids;
    vec![
        format!("/v1/orgs/{}/members", ids.org),
        format!("/v1/orgs/{}/queues", ids.org),
        format!("/v1/queues/{}", ids.queue),
        format!("/v1/orgs/{}/conversations", ids.org),
        format!("/v1/conversations/{}", ids.conversation),
        format!("/v1/conversations/{}/messages", ids.conversation),
        format!("/v1/conversations/{}/notes", ids.conversation),
        format!("/v1/conversations/{}/messages", ids.channel),
        format!("/v1/conversations/{}/messages", ids.direct),
        format!("/v1/conversations/{}", acme.waiting.conversation_id),
        "/v1/canned-responses".to_owned(),
        "/v1/activity".to_owned(),
        "/v1/me".to_owned(),
        format!("/v1/orgs/{}/invitations", ids.org),
        format!("/v1/orgs/{}/blocks", ids.org),
        format!("/v1/orgs/{}/security", ids.org),
        format!("/v1/orgs/{}/sso", ids.org),
        format!("/v1/orgs/{}/webhooks", ids.org),
        format!("/v1/queues/{}/identity-secret", ids.queue),
    ]
}

/// Calls `row`'s route with `body`, as JSON or as an uploaded file.
async fn send(api: &Api, row: &Row, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
    match (row.form, body) {
        (Form::File, Some(Value::String(content))) => {
            let boundary = format!("jono-outsider-{}", Uuid::new_v4().simple());
            let form = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"mole.txt\"\r\nContent-Type: text/plain\r\n\r\n{content}\r\n--{boundary}--\r\n"
            );
            let mut request = api
                .http
                .post(format!("{}{path}", api.base))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(form);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("the server answers");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response.text().await.expect("a body");
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            Reply {
                status,
                headers,
                text,
                body,
            }
        }
        (Form::File, other) => panic!(
            "{}: a file row's body is a string, not {other:?}",
            row.route
        ),
        (Form::Json, body) => api.call(row.method, path, token, body).await,
    }
}

/// The answer `row` gives caller `who`, checked against the table; a miss is returned.
async fn check(api: &Api, row: &Row, who: usize, token: Option<&str>, ids: &Ids) -> Option<String> {
    let callers = [
        "another organization's agent",
        "another conversation's customer",
        "no token",
    ];
    let (path, body) = (row.request)(ids);
    let reply = send(api, row, &path, token, body).await;
    let what = format!("{} {} by {}", row.method, row.route, callers[who]);
    let status = reply.status;
    match row.expect[who] {
        Status(expected) if status != expected => {
            return Some(format!(
                "{what}: expected {expected}, got {status} {}",
                reply.text
            ));
        }
        Status(_) => {}
        Hidden => {
            if ![403, 404].contains(&status) {
                return Some(format!(
                    "{what}: expected 403 or 404, got {status} {}",
                    reply.text
                ));
            }
            let (path, body) = (row.request)(&ids.unknown());
            let unknown = send(api, row, &path, token, body).await;
            if unknown.status != status {
                return Some(format!(
                    "{what}: the answer tells that the thing exists ({status} for Acme's, {} for an unknown id)",
                    unknown.status
                ));
            }
        }
    }
    if status >= 400 {
        return reply
            .problem_mismatch(status)
            .map(|wrong| format!("{what}: {wrong}"));
    }
    None
}

#[tokio::test]
async fn outsiders_get_the_documented_refusal_on_every_route_and_change_nothing() {
    walk(&Storage::embedded()).await;
}

#[tokio::test]
async fn outsiders_get_the_documented_refusal_on_every_route_and_change_nothing_on_postgres() {
    if let Some(storage) = Storage::postgres() {
        walk(&storage).await;
    }
}

/// The walk of every row by the three outsiders, on `storage`.
async fn walk(storage: &Storage) {
    let (_server, api) = api::start(storage);
    let acme = acme(&api).await;
    let other = api::sign_up(&api, "Globex").await;
    // The customer of another conversation: one waiting in Acme's own queue (the hardest
    // neighbour to keep out), so organization-wide routes are tested against a stranger that
    // is as close as a customer gets.
    let stranger = acme.waiting.clone();

    let mut watch = api::Watch::new(&acme.owner, owner_paths(&acme));
    let before = watch.look(&api).await;
    let tokens = [other.token(), stranger.token(), None];
    // Every row is walked before anything is asserted, so one report lists every miss.
    let mut misses = Vec::new();
    for row in routes() {
        for (who, token) in tokens.iter().enumerate() {
            misses.extend(check(&api, &row, who, *token, &acme.ids).await);
        }
    }
    let after = watch.look(&api).await;
    for (path, was) in before.as_object().unwrap() {
        if after[path] != *was {
            misses.push(format!(
                "{path} changed after the outsiders' refused calls: was {was}, is {}",
                after[path]
            ));
        }
    }

    // The member whose sessions the outsiders could not end is still signed in.
    api.get("/v1/me", acme.member.token())
        .await
        .expect(200, "the member's token still works");

    // The invitation the outsiders could not take is still there for its person.
    api.post(
        &format!("/v1/invitations/{}/accept", acme.ids.invitation),
        None,
        json!({"name": "Ivy Invitee", "password": PASSWORD}),
    )
    .await
    .expect(201, "the invitee accepts");

    // What outsiders may do, they may do.
    for row in open_to_anyone() {
        for (who, token) in tokens.iter().enumerate() {
            misses.extend(check(&api, &row, who, *token, &acme.ids).await);
        }
    }
    assert!(
        misses.is_empty(),
        "{} misses:\n{}",
        misses.len(),
        misses.join("\n")
    );
}

#[tokio::test]
async fn self_service_routes_show_an_outsider_nothing_of_another_organization() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let acme = acme(&api).await;
    let other = api::sign_up(&api, "Globex").await;

    let me = api.get("/v1/me", other.token()).await.expect(200, "me");
    let organizations = me.body["organizations"].as_array().expect("organizations");
    assert_eq!(organizations.len(), 1, "{}", me.text);
    assert_eq!(organizations[0]["id"], json!(other.organization_id));
    assert_eq!(organizations[0]["role"], "owner");

    let canned = api
        .get("/v1/canned-responses", other.token())
        .await
        .expect(200, "canned");
    assert_eq!(canned.body, json!([]), "Acme's canned responses leaked");

    let activity = api::activity(&api, other.token()).await;
    assert!(
        activity
            .iter()
            .all(|item| item["organization_id"] == json!(other.organization_id)),
        "Acme's activity leaked: {activity:?}"
    );
    // And the owner's own activity does hold Acme's events, so the filter is not emptiness.
    let owned = eventually(
        || api::activity(&api, acme.owner.token()),
        |items| items.iter().any(|item| item["type"] == "CustomerPicked"),
    )
    .await;
    assert!(owned.iter().any(|item| item["type"] == "CustomerPicked"));
}

#[tokio::test]
async fn a_direct_chat_is_closed_to_a_third_member_of_the_same_organization() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let acme = acme(&api).await;
    let third = api::invite_and_accept(&api, &acme.owner, "operator", "Theo Third").await;
    let direct = acme.ids.direct;
    api.get(&format!("/v1/conversations/{direct}"), third.token())
        .await
        .expect_problem(404, "a third member reads the direct chat");
    api.get(
        &format!("/v1/conversations/{direct}/messages"),
        third.token(),
    )
    .await
    .expect_problem(404, "a third member reads its messages");
    api.post(
        &format!("/v1/conversations/{direct}/messages"),
        third.token(),
        json!({"text": "hello?"}),
    )
    .await
    .expect_problem(404, "a third member writes in it");
    let listed = api
        .get(
            &format!("/v1/orgs/{}/conversations?kind=direct", acme.ids.org),
            third.token(),
        )
        .await
        .expect(200, "the third member's list");
    assert!(
        !listed.text.contains(&direct.to_string()),
        "the direct chat is listed for a third member: {}",
        listed.text
    );
    // Its two agents still read it.
    assert_eq!(
        api::texts(&api, acme.owner.token(), direct).await,
        ["Just between us"]
    );
}

#[tokio::test]
async fn a_customer_of_one_conversation_cannot_reach_its_neighbour() {
    let storage = Storage::embedded();
    let (_server, api) = api::start(&storage);
    let acme = acme(&api).await;
    let neighbour = acme.ids.conversation;
    let waiting = &acme.waiting;
    // Its own conversation opens; the neighbour's does not, not even its existence.
    api.get(
        &format!("/v1/conversations/{}", waiting.conversation_id),
        waiting.token(),
    )
    .await
    .expect(200, "its own conversation");
    let known = api
        .get(&format!("/v1/conversations/{neighbour}"), waiting.token())
        .await
        .expect_problem(404, "the neighbour's conversation");
    let unknown = api
        .get(
            &format!("/v1/conversations/{}", Uuid::new_v4()),
            waiting.token(),
        )
        .await
        .expect_problem(404, "a conversation that does not exist");
    assert_eq!(known.body["detail"], unknown.body["detail"]);
}
