//! What the HTTP layer asks of the read models: each function answers one question of API.md
//! from the `rm_` tables alone (never the log), as plain serializable structs. Authorization is
//! the caller's: these functions say what is, not who may see it — except where a question is
//! itself about one viewer (`activity_for`, `canned_for`, `conversations`' direct chats).

use chrono::{DateTime, Utc};
use serde::Serialize;
use store::log::Backend;
use uuid::Uuid;

use crate::params;
use crate::sql::{fetch_all, fetch_optional};

/// A read-model query failed, or a row did not hold what the projection writes.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("a read model holds an unreadable value: {0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, QueryError>;

pub(crate) fn id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| QueryError::Corrupt(format!("id {text:?}: {e}")))
}

fn opt_id(text: Option<&str>) -> Result<Option<Uuid>> {
    text.map(id).transpose()
}

pub(crate) fn time(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| QueryError::Corrupt(format!("time {micros}")))
}

fn opt_time(micros: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    micros.map(time).transpose()
}

fn json(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| QueryError::Corrupt(format!("json: {e}")))
}

/// The most rows one page holds (API.md: a larger `limit` is treated as 1,000).
pub const MAX_PAGE: i64 = 1_000;

fn page(limit: i64) -> i64 {
    limit.clamp(1, MAX_PAGE)
}

// ---- accounts, organizations, memberships, invitations ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub agent_id: Uuid,
    pub email: String,
    pub name: String,
}

type AccountRow = (String, String, String);

fn account_from((agent_id, email, name): AccountRow) -> Result<Account> {
    Ok(Account {
        agent_id: id(&agent_id)?,
        email,
        name,
    })
}

/// The account of a (lower-cased, as `Email` parses it) email: login.
pub async fn account_by_email(backend: &Backend, email: &str) -> Result<Option<Account>> {
    let row: Option<AccountRow> = fetch_optional(
        backend,
        "SELECT agent_id, email, name FROM rm_accounts WHERE email = $1",
        params![email.to_lowercase()],
    )
    .await?;
    row.map(account_from).transpose()
}

pub async fn account(backend: &Backend, agent_id: Uuid) -> Result<Option<Account>> {
    let row: Option<AccountRow> = fetch_optional(
        backend,
        "SELECT agent_id, email, name FROM rm_accounts WHERE agent_id = $1",
        params![agent_id],
    )
    .await?;
    row.map(account_from).transpose()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
}

pub async fn organization(
    backend: &Backend,
    organization_id: Uuid,
) -> Result<Option<Organization>> {
    let row: Option<(String, String)> = fetch_optional(
        backend,
        "SELECT organization_id, name FROM rm_organizations WHERE organization_id = $1",
        params![organization_id],
    )
    .await?;
    row.map(|(org, name)| {
        Ok(Organization {
            id: id(&org)?,
            name,
        })
    })
    .transpose()
}

/// One of an agent's organizations, as `GET /v1/me` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub id: Uuid,
    pub name: String,
    pub role: String,
}

/// The organizations `agent_id` is a member of, oldest membership first.
pub async fn memberships_of(backend: &Backend, agent_id: Uuid) -> Result<Vec<Membership>> {
    let rows: Vec<(String, String, String)> = fetch_all(
        backend,
        "SELECT m.organization_id, o.name, m.role FROM rm_memberships m
         JOIN rm_organizations o ON o.organization_id = m.organization_id
         WHERE m.agent_id = $1 ORDER BY m.position",
        params![agent_id],
    )
    .await?;
    rows.into_iter()
        .map(|(org, name, role)| {
            Ok(Membership {
                id: id(&org)?,
                name,
                role,
            })
        })
        .collect()
}

/// The role (`owner`, `operator`, `agent`) of `agent_id` in the organization; `None` for a
/// non-member.
pub async fn role_of(
    backend: &Backend,
    organization_id: Uuid,
    agent_id: Uuid,
) -> Result<Option<String>> {
    let row: Option<(String,)> = fetch_optional(
        backend,
        "SELECT role FROM rm_memberships WHERE organization_id = $1 AND agent_id = $2",
        params![organization_id, agent_id],
    )
    .await?;
    Ok(row.map(|(role,)| role))
}

/// Whether the organization requires its members to have a second factor.
pub async fn two_factor_required(backend: &Backend, organization_id: Uuid) -> Result<bool> {
    let row: Option<(i64,)> = fetch_optional(
        backend,
        "SELECT two_factor_required FROM rm_org_sign_in WHERE organization_id = $1",
        params![organization_id],
    )
    .await?;
    Ok(row.is_some_and(|(required,)| required != 0))
}

/// How many days the organization keeps customers' personal data after a conversation ends
/// (`None`: until erased by hand).
pub async fn retention_days(backend: &Backend, organization_id: Uuid) -> Result<Option<u32>> {
    let row: Option<(Option<i64>,)> = fetch_optional(
        backend,
        "SELECT retention_days FROM rm_org_retention WHERE organization_id = $1",
        params![organization_id],
    )
    .await?;
    Ok(row
        .and_then(|(days,)| days)
        .and_then(|days| u32::try_from(days).ok()))
}

/// Every organization with a retention, and its days.
pub async fn retentions(backend: &Backend) -> Result<Vec<(Uuid, u32)>> {
    let rows: Vec<(String, i64)> = fetch_all(
        backend,
        "SELECT organization_id, retention_days FROM rm_org_retention
         WHERE retention_days IS NOT NULL ORDER BY organization_id",
        &[],
    )
    .await?;
    rows.into_iter()
        .map(|(organization_id, days)| {
            Ok((
                id(&organization_id)?,
                u32::try_from(days)
                    .map_err(|e| QueryError::Corrupt(format!("retention_days: {e}")))?,
            ))
        })
        .collect()
}

/// At most `limit` customer conversations (chats and left messages) of the organization that
/// ended before `cutoff` and are not erased, the longest ended first: what its retention erases.
pub async fn past_retention(
    backend: &Backend,
    organization_id: Uuid,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>> {
    let rows: Vec<(String,)> = fetch_all(
        backend,
        "SELECT conversation_id FROM rm_conversations
         WHERE organization_id = $1 AND status = 'ended' AND ended_at < $2
         AND erased_at IS NULL AND kind IN ('customer', 'left_message')
         ORDER BY ended_at LIMIT $3",
        params![organization_id, cutoff.timestamp_micros(), limit],
    )
    .await?;
    rows.into_iter()
        .map(|(conversation,)| id(&conversation))
        .collect()
}

/// The conversations of the organization linked to the verified customer `customer_ref`
/// (`CustomerJoinedQueue`'s `customer`), oldest first. An erased one is no longer linked.
pub async fn conversations_of_customer(
    backend: &Backend,
    organization_id: Uuid,
    customer_ref: Uuid,
) -> Result<Vec<Uuid>> {
    let rows: Vec<(String,)> = fetch_all(
        backend,
        "SELECT conversation_id FROM rm_customer_links
         WHERE organization_id = $1 AND customer_ref = $2 ORDER BY position",
        params![organization_id, customer_ref],
    )
    .await?;
    rows.into_iter()
        .map(|(conversation,)| id(&conversation))
        .collect()
}

/// An organization's single sign-on, as its owner set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SsoSettings {
    pub issuer: String,
    pub client_id: String,
    pub required: bool,
}

pub async fn sso_settings(backend: &Backend, organization_id: Uuid) -> Result<Option<SsoSettings>> {
    let row: Option<(Option<String>, Option<String>, i64)> = fetch_optional(
        backend,
        "SELECT sso_issuer, sso_client_id, sso_required FROM rm_org_sign_in
         WHERE organization_id = $1",
        params![organization_id],
    )
    .await?;
    Ok(row.and_then(|(issuer, client_id, required)| {
        Some(SsoSettings {
            issuer: issuer?,
            client_id: client_id?,
            required: required != 0,
        })
    }))
}

/// A member of an organization (presence is the gateway's: it is not in the log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub agent_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: String,
}

/// The organization's members, oldest first.
pub async fn members(backend: &Backend, organization_id: Uuid) -> Result<Vec<Member>> {
    let rows: Vec<(String, String, String, String)> = fetch_all(
        backend,
        "SELECT m.agent_id, a.name, a.email, m.role FROM rm_memberships m
         JOIN rm_accounts a ON a.agent_id = m.agent_id
         WHERE m.organization_id = $1 ORDER BY m.position",
        params![organization_id],
    )
    .await?;
    rows.into_iter()
        .map(|(agent, name, email, role)| {
            Ok(Member {
                agent_id: id(&agent)?,
                name,
                email,
                role,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub role: String,
    pub expires_at: DateTime<Utc>,
    pub invited_by: Option<Uuid>,
    pub accepted: bool,
    pub accepted_by: Option<Uuid>,
}

/// The organization's invitations still open at `now` (neither accepted, revoked nor expired),
/// oldest first.
pub async fn pending_invitations(
    backend: &Backend,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Invitation>> {
    type Row = (String, String, String, String, i64, Option<String>);
    let rows: Vec<Row> = fetch_all(
        backend,
        "SELECT invitation_id, organization_id, email, role, expires_at, invited_by
         FROM rm_invitations WHERE organization_id = $1 AND accepted = 0 AND expires_at > $2
         ORDER BY created_at, invitation_id",
        params![organization_id, now.timestamp_micros()],
    )
    .await?;
    rows.into_iter()
        .map(|(inv, org, email, role, expires_at, invited_by)| {
            Ok(Invitation {
                id: id(&inv)?,
                organization_id: id(&org)?,
                email,
                role,
                expires_at: time(expires_at)?,
                invited_by: opt_id(invited_by.as_deref())?,
                accepted: false,
                accepted_by: None,
            })
        })
        .collect()
}

/// A running block of an abusive visitor, as operators review it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Block {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub until: DateTime<Utc>,
    pub reason: Option<String>,
    pub blocked_by: Uuid,
    pub blocked_at: DateTime<Utc>,
    /// Whether the block holds the address the customer joined from, not only its token.
    pub by_address: bool,
}

/// The organization's blocks still running at `now`, oldest first.
pub async fn blocks(
    backend: &Backend,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Block>> {
    type Row = (String, String, i64, Option<String>, String, i64, i64);
    let rows: Vec<Row> = fetch_all(
        backend,
        "SELECT block_id, conversation_id, until, reason, blocked_by, blocked_at, by_address
         FROM rm_blocks WHERE organization_id = $1 AND until > $2 ORDER BY position",
        params![organization_id, now.timestamp_micros()],
    )
    .await?;
    rows.into_iter()
        .map(
            |(block, conversation, until, reason, blocked_by, blocked_at, by_address)| {
                Ok(Block {
                    id: id(&block)?,
                    conversation_id: id(&conversation)?,
                    until: time(until)?,
                    reason,
                    blocked_by: id(&blocked_by)?,
                    blocked_at: time(blocked_at)?,
                    by_address: by_address != 0,
                })
            },
        )
        .collect()
}

pub async fn invitation(backend: &Backend, invitation_id: Uuid) -> Result<Option<Invitation>> {
    type Row = (
        String,
        String,
        String,
        String,
        i64,
        Option<String>,
        i64,
        Option<String>,
    );
    let row: Option<Row> = fetch_optional(
        backend,
        "SELECT invitation_id, organization_id, email, role, expires_at, invited_by, accepted,
         accepted_by FROM rm_invitations WHERE invitation_id = $1",
        params![invitation_id],
    )
    .await?;
    row.map(
        |(inv, org, email, role, expires_at, invited_by, accepted, accepted_by)| {
            Ok(Invitation {
                id: id(&inv)?,
                organization_id: id(&org)?,
                email,
                role,
                expires_at: time(expires_at)?,
                invited_by: opt_id(invited_by.as_deref())?,
                accepted: accepted != 0,
                accepted_by: opt_id(accepted_by.as_deref())?,
            })
        },
    )
    .transpose()
}

// ---- queues ----

/// A queue as `GET /v1/orgs/{org}/queues` and `GET /v1/queues/{queue}` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queue {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub open: bool,
    pub waiting: i64,
    /// Seconds the longest-waiting customer has waited, at the time of the query.
    pub oldest_wait_seconds: Option<i64>,
    pub handlers: Vec<Uuid>,
    /// The whole of the settings (`QueueSettings` as JSON).
    pub settings: serde_json::Value,
}

const QUEUE_SELECT: &str = "SELECT q.queue_id, q.organization_id, q.name, q.open, q.settings,
    (SELECT COUNT(*) FROM rm_queue_waiting w WHERE w.queue_id = q.queue_id),
    (SELECT MIN(w.since) FROM rm_queue_waiting w WHERE w.queue_id = q.queue_id)
    FROM rm_queues q";

type QueueRow = (String, String, String, i64, String, i64, Option<i64>);

async fn queue_from(backend: &Backend, row: QueueRow, now: DateTime<Utc>) -> Result<Queue> {
    let (queue_id, org, name, open, settings, waiting, oldest) = row;
    let handlers: Vec<(String,)> = fetch_all(
        backend,
        "SELECT agent_id FROM rm_queue_handlers WHERE queue_id = $1 ORDER BY agent_id",
        params![queue_id.as_str()],
    )
    .await?;
    Ok(Queue {
        id: id(&queue_id)?,
        organization_id: id(&org)?,
        name,
        open: open != 0,
        waiting,
        oldest_wait_seconds: opt_time(oldest)?.map(|since| (now - since).num_seconds().max(0)),
        handlers: handlers
            .iter()
            .map(|(agent,)| id(agent))
            .collect::<Result<_>>()?,
        settings: json(&settings)?,
    })
}

/// The organization's queues, oldest first.
pub async fn queues_of(backend: &Backend, organization_id: Uuid) -> Result<Vec<Queue>> {
    let rows: Vec<QueueRow> = fetch_all(
        backend,
        &format!("{QUEUE_SELECT} WHERE q.organization_id = $1 ORDER BY q.created_position"),
        params![organization_id],
    )
    .await?;
    let now = Utc::now();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(queue_from(backend, row, now).await?);
    }
    Ok(out)
}

pub async fn queue(backend: &Backend, queue_id: Uuid) -> Result<Option<Queue>> {
    let row: Option<QueueRow> = fetch_optional(
        backend,
        &format!("{QUEUE_SELECT} WHERE q.queue_id = $1"),
        params![queue_id],
    )
    .await?;
    match row {
        Some(row) => Ok(Some(queue_from(backend, row, Utc::now()).await?)),
        None => Ok(None),
    }
}

/// One customer in a queue's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub conversation_id: Uuid,
    /// 1 = next to be picked.
    pub queue_position: i64,
    pub since: DateTime<Utc>,
}

/// Customers waiting in every queue's line together, and since when the longest has waited
/// (`GET /metrics`: per queue would make queue ids labels).
pub async fn waiting_overall(backend: &Backend) -> Result<(i64, Option<DateTime<Utc>>)> {
    let row: Option<(i64, Option<i64>)> = fetch_optional(
        backend,
        "SELECT COUNT(*), MIN(since) FROM rm_queue_waiting",
        params![],
    )
    .await?;
    let (waiting, oldest) = row.unwrap_or((0, None));
    Ok((waiting, opt_time(oldest)?))
}

/// A queue's line, next first.
pub async fn waiting_line(backend: &Backend, queue_id: Uuid) -> Result<Vec<Waiting>> {
    let rows: Vec<(String, i64)> = fetch_all(
        backend,
        "SELECT conversation_id, since FROM rm_queue_waiting WHERE queue_id = $1 ORDER BY rank",
        params![queue_id],
    )
    .await?;
    rows.into_iter()
        .zip(1..)
        .map(|((conversation, since), place)| {
            Ok(Waiting {
                conversation_id: id(&conversation)?,
                queue_position: place,
                since: time(since)?,
            })
        })
        .collect()
}

// ---- conversations ----

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Customer {
    pub metadata: serde_json::Value,
    pub live: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rating {
    pub score: i64,
    pub comment: Option<String>,
}

/// A conversation as an agent sees it (`GET /v1/conversations/{c}`), plus what authorization
/// and the customer's view need (`participants`, `rating`, `end_reason`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    pub id: Uuid,
    pub kind: String,
    pub name: Option<String>,
    pub organization_id: Uuid,
    pub queue_id: Option<Uuid>,
    /// `waiting`, `active` or `ended`.
    pub status: String,
    pub agent_id: Option<Uuid>,
    pub customer: Customer,
    pub tags: Vec<String>,
    /// 1 = next to be picked; `None` unless waiting.
    pub queue_position: Option<i64>,
    /// The two agents of a direct chat; empty otherwise.
    pub participants: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub picked_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
    pub rating: Option<Rating>,
    /// The newest message's `seq` (0 without messages).
    pub last_seq: i64,
    /// When an agent first wrote in it; `None` before.
    pub answered_at: Option<DateTime<Utc>>,
    /// The returning customer its site vouched for, if any.
    pub verified: Option<VerifiedCustomer>,
    /// How many messages the reader has not read (`None` where the query has no reader).
    pub unread: Option<i64>,
    /// The open handoff to a teammate, if any.
    pub handoff: Option<Handoff>,
    /// When its customer's personal data was erased (`CustomerErased`), if it was.
    pub erased_at: Option<DateTime<Utc>>,
}

/// A handoff offered to a teammate and not yet answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handoff {
    pub handoff_id: Uuid,
    pub to_agent_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// The conversation columns, with `reader`'s read marker (a placeholder such as `$3`, or
/// `NULL` for no reader).
fn conversation_select(reader: &str) -> String {
    format!(
        "SELECT c.conversation_id, c.kind, c.name, c.organization_id,
         c.queue_id, c.status, c.agent_id, c.metadata, c.live, c.participants, c.created_at,
         c.picked_at, c.ended_at, c.end_reason, c.rating_score, c.rating_comment, c.last_seq,
         c.answered_at, c.handoff_id, c.handoff_to, c.handoff_expires_at, c.erased_at, l.customer_ref, l.user_id AS verified_user_id,
         l.name AS verified_name,
         r.seq AS read_seq, {reader} IS NOT NULL AS has_reader
         FROM rm_conversations c
         LEFT JOIN rm_reads r ON r.conversation_id = c.conversation_id AND r.agent_id = {reader}
         LEFT JOIN rm_customer_links l ON l.conversation_id = c.conversation_id"
    )
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    conversation_id: String,
    kind: String,
    name: Option<String>,
    organization_id: String,
    queue_id: Option<String>,
    status: String,
    agent_id: Option<String>,
    metadata: String,
    live: String,
    participants: String,
    created_at: i64,
    picked_at: Option<i64>,
    ended_at: Option<i64>,
    end_reason: Option<String>,
    rating_score: Option<i64>,
    rating_comment: Option<String>,
    last_seq: i64,
    answered_at: Option<i64>,
    handoff_id: Option<String>,
    handoff_to: Option<String>,
    handoff_expires_at: Option<i64>,
    erased_at: Option<i64>,
    customer_ref: Option<String>,
    verified_user_id: Option<String>,
    verified_name: Option<String>,
    read_seq: Option<i64>,
    has_reader: bool,
}

async fn conversation_from(backend: &Backend, row: ConversationRow) -> Result<Conversation> {
    let tags: Vec<(String,)> = fetch_all(
        backend,
        "SELECT tag FROM rm_conversation_tags WHERE conversation_id = $1 ORDER BY tag",
        params![row.conversation_id.as_str()],
    )
    .await?;
    let queue_position = if row.status == "waiting" {
        let place: Option<(i64,)> = fetch_optional(
            backend,
            "SELECT COUNT(*) FROM rm_queue_waiting w
             JOIN rm_queue_waiting me ON me.queue_id = w.queue_id AND w.rank <= me.rank
             WHERE me.conversation_id = $1",
            params![row.conversation_id.as_str()],
        )
        .await?;
        place.map(|(n,)| n).filter(|n| *n > 0)
    } else {
        None
    };
    let participants: Vec<Uuid> = serde_json::from_str(&row.participants)
        .map_err(|e| QueryError::Corrupt(format!("participants: {e}")))?;
    Ok(Conversation {
        id: id(&row.conversation_id)?,
        kind: row.kind,
        name: row.name,
        organization_id: id(&row.organization_id)?,
        queue_id: opt_id(row.queue_id.as_deref())?,
        status: row.status,
        agent_id: opt_id(row.agent_id.as_deref())?,
        customer: Customer {
            metadata: json(&row.metadata)?,
            live: json(&row.live)?,
        },
        tags: tags.into_iter().map(|(tag,)| tag).collect(),
        queue_position,
        participants,
        created_at: time(row.created_at)?,
        picked_at: opt_time(row.picked_at)?,
        ended_at: opt_time(row.ended_at)?,
        end_reason: row.end_reason,
        rating: row.rating_score.map(|score| Rating {
            score,
            comment: row.rating_comment,
        }),
        last_seq: row.last_seq,
        answered_at: opt_time(row.answered_at)?,
        handoff: match (row.handoff_id, row.handoff_to, row.handoff_expires_at) {
            (Some(handoff_id), Some(to), Some(expires_at)) => Some(Handoff {
                handoff_id: id(&handoff_id)?,
                to_agent_id: id(&to)?,
                expires_at: time(expires_at)?,
            }),
            _ => None,
        },
        erased_at: opt_time(row.erased_at)?,
        verified: match (row.customer_ref, row.verified_user_id) {
            (Some(customer_ref), Some(user_id)) => Some(VerifiedCustomer {
                customer_ref: id(&customer_ref)?,
                user_id,
                name: row.verified_name,
            }),
            _ => None,
        },
        unread: row
            .has_reader
            .then(|| (row.last_seq - row.read_seq.unwrap_or(0)).max(0)),
    })
}

async fn conversations_from(
    backend: &Backend,
    rows: Vec<ConversationRow>,
) -> Result<Vec<Conversation>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(conversation_from(backend, row).await?);
    }
    Ok(out)
}

pub async fn conversation(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<Option<Conversation>> {
    let row: Option<ConversationRow> = fetch_optional(
        backend,
        &format!(
            "{} WHERE c.conversation_id = $1",
            conversation_select("NULL")
        ),
        params![conversation_id],
    )
    .await?;
    match row {
        Some(row) => Ok(Some(conversation_from(backend, row).await?)),
        None => Ok(None),
    }
}

/// `GET /v1/orgs/{org}/conversations?status=&agent=&kind=&queue=&tag=&from=&to=`: every filter optional; `viewer`
/// sees only its own direct chats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationFilter {
    pub status: Option<String>,
    pub agent_id: Option<Uuid>,
    pub kind: Option<String>,
    pub queue_id: Option<Uuid>,
    /// Conversations that carry this tag.
    pub tag: Option<String>,
    /// Started at or after this time (microseconds since the epoch).
    pub from: Option<i64>,
    /// Started before this time (microseconds since the epoch).
    pub to: Option<i64>,
}

/// A page of the organization's conversations, oldest first, after the conversation
/// `after_id` (the cursor: the last item's id). An unknown cursor gives an empty page.
pub async fn conversations(
    backend: &Backend,
    organization_id: Uuid,
    viewer: Uuid,
    filter: &ConversationFilter,
    after_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Conversation>> {
    let after = match after_id {
        None => 0,
        Some(after) => {
            let found: Option<(i64,)> = fetch_optional(
                backend,
                "SELECT created_position FROM rm_conversations
                 WHERE conversation_id = $1 AND organization_id = $2",
                params![after, organization_id],
            )
            .await?;
            match found {
                Some((position,)) => position,
                None => return Ok(Vec::new()),
            }
        }
    };
    let viewer_json = format!("%{viewer}%");
    let rows: Vec<ConversationRow> = fetch_all(
        backend,
        &format!(
            "{} WHERE c.organization_id = $1 AND c.created_position > $2
             AND (c.kind <> 'direct' OR c.participants LIKE $3)
             AND ($4 IS NULL OR c.status = $4)
             AND ($5 IS NULL OR c.agent_id = $5)
             AND ($6 IS NULL OR c.kind = $6)
             AND ($8 IS NULL OR c.queue_id = $8)
             AND ($9 IS NULL OR EXISTS (SELECT 1 FROM rm_conversation_tags t
                  WHERE t.conversation_id = c.conversation_id AND t.tag = $9))
             AND ($10 IS NULL OR c.created_at >= $10)
             AND ($11 IS NULL OR c.created_at < $11)
             ORDER BY c.created_position LIMIT $7",
            conversation_select("$12")
        ),
        params![
            organization_id,
            after,
            viewer_json,
            filter.status.clone(),
            filter.agent_id,
            filter.kind.clone(),
            page(limit),
            filter.queue_id,
            filter.tag.clone(),
            filter.from,
            filter.to,
            viewer
        ],
    )
    .await?;
    conversations_from(backend, rows).await
}

/// A verified customer of a conversation (personal data: `user_id`, `name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifiedCustomer {
    pub customer_ref: Uuid,
    pub user_id: String,
    pub name: Option<String>,
}

/// The other conversations of the verified customer of `conversation_id` (none for a guest),
/// newest first, at most `limit`.
pub async fn same_customer(
    backend: &Backend,
    conversation_id: Uuid,
    limit: i64,
) -> Result<Vec<Conversation>> {
    let rows: Vec<ConversationRow> = fetch_all(
        backend,
        &format!(
            "{} WHERE l.customer_ref = (SELECT customer_ref FROM rm_customer_links
                                        WHERE conversation_id = $1)
             AND c.conversation_id <> $1
             ORDER BY l.position DESC LIMIT $2",
            conversation_select("NULL")
        ),
        params![conversation_id, limit],
    )
    .await?;
    conversations_from(backend, rows).await
}

/// How many conversations are assigned to `agent_id` and not ended (for `capacity_per_agent`).
pub async fn open_conversations(backend: &Backend, agent_id: Uuid) -> Result<i64> {
    let row: Option<(i64,)> = fetch_optional(
        backend,
        "SELECT COUNT(*) FROM rm_conversations WHERE agent_id = $1 AND status = 'active'",
        params![agent_id],
    )
    .await?;
    Ok(row.map_or(0, |(n,)| n))
}

/// The agent's inbox: the conversations assigned to it and not ended, oldest first.
pub async fn inbox(backend: &Backend, agent_id: Uuid) -> Result<Vec<Conversation>> {
    let rows: Vec<ConversationRow> = fetch_all(
        backend,
        &format!(
            "{} WHERE c.agent_id = $1 AND c.status = 'active'
             ORDER BY c.created_position",
            conversation_select("$1")
        ),
        params![agent_id],
    )
    .await?;
    conversations_from(backend, rows).await
}

/// A tag of an organization with how often it was added, for suggestions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagUse {
    pub tag: String,
    pub uses: i64,
}

/// The organization's tags, most used first.
pub async fn organization_tags(backend: &Backend, organization_id: Uuid) -> Result<Vec<TagUse>> {
    let rows: Vec<(String, i64)> = fetch_all(
        backend,
        "SELECT tag, uses FROM rm_org_tags WHERE organization_id = $1
         ORDER BY uses DESC, last_used DESC, tag",
        params![organization_id],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|(tag, uses)| TagUse { tag, uses })
        .collect())
}

// ---- messages, notes, attachments ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageAuthor {
    /// `agent`, `customer` or `system`.
    pub kind: String,
    pub id: Uuid,
    pub name: String,
}

/// An attachment as a message carries it; the gateway adds the signed `url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MessageAttachment {
    pub attachment_id: Uuid,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub seq: i64,
    pub id: Uuid,
    pub author: MessageAuthor,
    pub text: String,
    pub attachments: Vec<MessageAttachment>,
    pub sent_at: DateTime<Utc>,
}

/// A page of a conversation's messages with `seq` above `after_seq`, by `seq`.
pub async fn messages(
    backend: &Backend,
    conversation_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Message>> {
    type Row = (i64, String, String, String, String, String, String, i64);
    let rows: Vec<Row> = fetch_all(
        backend,
        "SELECT seq, message_id, author_kind, author_id, author_name, text, attachments, sent_at
         FROM rm_messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        params![conversation_id, after_seq, page(limit)],
    )
    .await?;
    rows.into_iter()
        .map(
            |(seq, message_id, kind, author_id, author_name, text, attachments, sent_at)| {
                Ok(Message {
                    seq,
                    id: id(&message_id)?,
                    author: MessageAuthor {
                        kind,
                        id: id(&author_id)?,
                        name: author_name,
                    },
                    text,
                    attachments: serde_json::from_str(&attachments)
                        .map_err(|e| QueryError::Corrupt(format!("attachments: {e}")))?,
                    sent_at: time(sent_at)?,
                })
            },
        )
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoteAuthor {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub id: Uuid,
    pub author: NoteAuthor,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// A conversation's private notes, oldest first. Never for a customer.
pub async fn notes(backend: &Backend, conversation_id: Uuid) -> Result<Vec<Note>> {
    let rows: Vec<(String, String, String, String, i64)> = fetch_all(
        backend,
        "SELECT note_id, author_id, author_name, text, created_at FROM rm_notes
         WHERE conversation_id = $1 ORDER BY position",
        params![conversation_id],
    )
    .await?;
    rows.into_iter()
        .map(|(note, author, name, text, created_at)| {
            Ok(Note {
                id: id(&note)?,
                author: NoteAuthor {
                    id: id(&author)?,
                    name,
                },
                text,
                created_at: time(created_at)?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub attachment_id: Uuid,
    pub conversation_id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub uploaded_at: DateTime<Utc>,
}

pub async fn attachment(backend: &Backend, attachment_id: Uuid) -> Result<Option<Attachment>> {
    type Row = (String, String, String, String, i64, String, String, i64);
    let row: Option<Row> = fetch_optional(
        backend,
        "SELECT attachment_id, conversation_id, organization_id, name, size, content_type,
         sha256, uploaded_at FROM rm_attachments WHERE attachment_id = $1",
        params![attachment_id],
    )
    .await?;
    row.map(|(att, conv, org, name, size, content_type, sha256, at)| {
        Ok(Attachment {
            attachment_id: id(&att)?,
            conversation_id: id(&conv)?,
            organization_id: id(&org)?,
            name,
            size,
            content_type,
            sha256,
            uploaded_at: time(at)?,
        })
    })
    .transpose()
}

// ---- activity ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityItem {
    pub position: i64,
    pub at: DateTime<Utc>,
    pub organization_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
}

/// `GET /v1/activity`: a page of what happened in the agent's organizations after
/// `after_position`, oldest first; direct chats' messages only of the agent's own.
/// `two_factor`: whether the agent's account has a second factor; without one, what happens in
/// an organization that requires one is not shown (the organization refuses the agent there).
pub async fn activity_for(
    backend: &Backend,
    agent_id: Uuid,
    two_factor: bool,
    after_position: i64,
    limit: i64,
) -> Result<Vec<ActivityItem>> {
    type Row = (
        i64,
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = fetch_all(
        backend,
        "SELECT position, at, organization_id, type, queue_id, conversation_id, agent_id
         FROM rm_activity
         WHERE position > $1
         AND organization_id IN (SELECT organization_id FROM rm_memberships WHERE agent_id = $2)
         AND (participant_a IS NULL OR participant_a = $2 OR participant_b = $2)
         AND ($4 = 1 OR organization_id NOT IN
              (SELECT organization_id FROM rm_org_sign_in WHERE two_factor_required = 1))
         ORDER BY position LIMIT $3",
        params![after_position, agent_id, page(limit), i64::from(two_factor)],
    )
    .await?;
    rows.into_iter()
        .map(|(position, at, org, kind, queue, conversation, agent)| {
            Ok(ActivityItem {
                position,
                at: time(at)?,
                organization_id: id(&org)?,
                kind,
                queue_id: opt_id(queue.as_deref())?,
                conversation_id: opt_id(conversation.as_deref())?,
                agent_id: opt_id(agent.as_deref())?,
            })
        })
        .collect()
}

// ---- canned responses ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CannedResponse {
    pub id: Uuid,
    pub key: String,
    pub text: String,
    /// `None` for a personal response.
    pub organization_id: Option<Uuid>,
    /// The owner of a personal response; `None` for an organization's.
    #[serde(skip_serializing)]
    pub agent_id: Option<Uuid>,
}

type CannedRow = (String, String, String, Option<String>, Option<String>);

fn canned_from((response, key, text, org, agent): CannedRow) -> Result<CannedResponse> {
    Ok(CannedResponse {
        id: id(&response)?,
        key,
        text,
        organization_id: opt_id(org.as_deref())?,
        agent_id: opt_id(agent.as_deref())?,
    })
}

/// `GET /v1/canned-responses`: the agent's own and those of its organizations, oldest first.
/// `two_factor`: whether the agent's account has a second factor; without one, the responses of
/// an organization that requires one are left out (the organization refuses the agent there).
pub async fn canned_for(
    backend: &Backend,
    agent_id: Uuid,
    two_factor: bool,
) -> Result<Vec<CannedResponse>> {
    let rows: Vec<CannedRow> = fetch_all(
        backend,
        "SELECT response_id, key, text, organization_id, agent_id FROM rm_canned
         WHERE (scope = 'agent' AND agent_id = $1)
         OR (scope = 'organization' AND organization_id IN
             (SELECT organization_id FROM rm_memberships WHERE agent_id = $1)
             AND ($2 = 1 OR organization_id NOT IN
                  (SELECT organization_id FROM rm_org_sign_in WHERE two_factor_required = 1)))
         ORDER BY created_position",
        params![agent_id, i64::from(two_factor)],
    )
    .await?;
    rows.into_iter().map(canned_from).collect()
}

/// One canned response, for `PUT` and `DELETE` (whose scope says who may change it).
pub async fn canned(backend: &Backend, response_id: Uuid) -> Result<Option<CannedResponse>> {
    let row: Option<CannedRow> = fetch_optional(
        backend,
        "SELECT response_id, key, text, organization_id, agent_id FROM rm_canned
         WHERE response_id = $1",
        params![response_id],
    )
    .await?;
    row.map(canned_from).transpose()
}
