//! What the HTTP layer asks of the conversations read model's tables (conversations, their customers, tags and inboxes): each function
//! answers one question of API.md from the `rm_` tables alone (never the log), as plain
//! serializable structs. Authorization is the caller's: these functions say what is, not who
//! may see it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::conversation::ConversationKind;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use store::log::Backend;
use uuid::Uuid;

use crate::database::{fetch_all, fetch_few, fetch_optional};
use crate::params;
use crate::reading::{id, json, named, opt_id, opt_time, page, time, QueryError, Result};
use crate::runtime::Dialect;

// Where a conversation stands (`rm_conversations.status`); the answers carry it as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    Waiting,
    Active,
    Ended,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Active => "active",
            Self::Ended => "ended",
        }
    }
}

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
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub organization_id: Uuid,
    pub queue_id: Option<Uuid>,
    pub status: ConversationStatus,
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
/// The select of conversation rows, each with its tags as a JSON array of text (one statement
/// for a conversation and its tags: a read of each was a statement of its own, and so was
/// every listed conversation's).
fn conversation_select(backend: &Backend, reader: &str) -> String {
    let tags = match Dialect::of(backend) {
        // Sorted after: SQLite's aggregates take no ORDER BY here.
        Dialect::Sqlite => "json_group_array(t.tag)",
        Dialect::Postgres => "COALESCE(json_agg(t.tag ORDER BY t.tag), '[]'::json)::text",
    };
    format!(
        "SELECT c.conversation_id, c.kind, c.name, c.organization_id,
         c.queue_id, c.status, c.agent_id, c.metadata, c.live, c.participants, c.created_at,
         c.picked_at, c.ended_at, c.end_reason, c.rating_score, c.rating_comment, c.last_seq,
         c.answered_at, c.handoff_id, c.handoff_to, c.handoff_expires_at, c.erased_at, l.customer_ref, l.user_id AS verified_user_id,
         l.name AS verified_name,
         r.seq AS read_seq, {reader} IS NOT NULL AS has_reader,
         (SELECT {tags} FROM rm_conversation_tags t
          WHERE t.conversation_id = c.conversation_id) AS tags,
         CASE WHEN c.status = 'waiting' THEN
          (SELECT COUNT(*) FROM rm_queue_waiting w
           JOIN rm_queue_waiting me ON me.queue_id = w.queue_id AND w.rank <= me.rank
           WHERE me.conversation_id = c.conversation_id) END AS place
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
    tags: String,
    /// A waiting conversation's place in its queue's line.
    place: Option<i64>,
}

store::from_direct_row!(ConversationRow {
    conversation_id,
    kind,
    name,
    organization_id,
    queue_id,
    status,
    agent_id,
    metadata,
    live,
    participants,
    created_at,
    picked_at,
    ended_at,
    end_reason,
    rating_score,
    rating_comment,
    last_seq,
    answered_at,
    handoff_id,
    handoff_to,
    handoff_expires_at,
    erased_at,
    customer_ref,
    verified_user_id,
    verified_name,
    read_seq,
    has_reader,
    tags,
    place,
});

fn conversation_from(backend: &Backend, row: ConversationRow) -> Result<Conversation> {
    let mut tags: Vec<String> =
        serde_json::from_str(&row.tags).map_err(|e| QueryError::Corrupt(format!("tags: {e}")))?;
    if Dialect::of(backend) == Dialect::Sqlite {
        // Postgres ordered them by its collation; SQLite's `ORDER BY tag` is bytewise.
        tags.sort_unstable();
    }
    let status: ConversationStatus = named(&row.status)?;
    let queue_position = match status {
        ConversationStatus::Waiting => row.place.filter(|n| *n > 0),
        _ => None,
    };
    let participants: Vec<Uuid> = serde_json::from_str(&row.participants)
        .map_err(|e| QueryError::Corrupt(format!("participants: {e}")))?;
    Ok(Conversation {
        id: id(&row.conversation_id)?,
        kind: named(&row.kind)?,
        name: row.name,
        organization_id: id(&row.organization_id)?,
        queue_id: opt_id(row.queue_id.as_deref())?,
        status,
        agent_id: opt_id(row.agent_id.as_deref())?,
        customer: Customer {
            metadata: json(&row.metadata)?,
            live: json(&row.live)?,
        },
        tags,
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

fn conversations_from(backend: &Backend, rows: Vec<ConversationRow>) -> Result<Vec<Conversation>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(conversation_from(backend, row)?);
    }
    Ok(out)
}

pub async fn conversation(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<Option<Conversation>> {
    Ok(conversations_by_id(backend, &[conversation_id])
        .await?
        .remove(&conversation_id))
}

/// Several conversations at once (those of concurrent requests: see `store::gathered`), by
/// id; an id of none is absent.
pub async fn conversations_by_id(
    backend: &Backend,
    conversation_ids: &[Uuid],
) -> Result<HashMap<Uuid, Conversation>> {
    let ids: Vec<String> = conversation_ids.iter().map(Uuid::to_string).collect();
    let rows: Vec<ConversationRow> = fetch_few(
        backend,
        &format!(
            "{} WHERE c.conversation_id IN ({})",
            conversation_select(backend, "NULL"),
            Dialect::of(backend).each_of("$1")
        ),
        params![serde_json::Value::from(ids).to_string()],
    )
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let conversation = conversation_from(backend, row)?;
        found.insert(conversation.id, conversation);
    }
    Ok(found)
}

/// `GET /v1/orgs/{org}/conversations?status=&agent=&kind=&queue=&tag=&from=&to=`: every filter optional; `viewer`
/// sees only its own direct chats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationFilter {
    pub status: Option<ConversationStatus>,
    pub agent_id: Option<Uuid>,
    pub kind: Option<ConversationKind>,
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
            conversation_select(backend, "$12")
        ),
        params![
            organization_id,
            after,
            viewer_json,
            filter.status.map(ConversationStatus::as_str),
            filter.agent_id,
            filter.kind.map(ConversationKind::as_str),
            page(limit),
            filter.queue_id,
            filter.tag.clone(),
            filter.from,
            filter.to,
            viewer
        ],
    )
    .await?;
    conversations_from(backend, rows)
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
            conversation_select(backend, "NULL")
        ),
        params![conversation_id, limit],
    )
    .await?;
    conversations_from(backend, rows)
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
            conversation_select(backend, "$1")
        ),
        params![agent_id],
    )
    .await?;
    conversations_from(backend, rows)
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
