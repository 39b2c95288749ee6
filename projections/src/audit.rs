//! `audit`: who changed what in each organization, and when — members and roles, invitations,
//! queues and their settings and handlers, sign-in rules, single sign-on, webhooks, blocks and
//! the organization's canned responses — one row per event, read from the log like every read
//! model, for operators (`GET /v1/orgs/{org}/audit`). Customers' conversations are not here
//! (their history is the conversations' own), except their erasure (`CustomerErased`, whose
//! subject is the conversation) and the organization's `RetentionSet`.
//!
//! Who acted is the event's stored actor (the caller the gateway authenticated: an agent, or
//! `anonymous` for the command line and Jono's own work), so every change has one even where
//! the event itself does not name it. The row keeps the event's fields (`details`) as they are
//! in the log, minus the organization, and the id of the thing acted on (`subject`).
//!
//! The query beside the table answers the console's filters: by type, by actor, by subject and
//! by time, paged by position; the route renders it as JSON or CSV.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Event;
use serde::Serialize;
use serde_json::Value;
use store::event::StoredEvent;
use store::log::Backend;
use uuid::Uuid;

use crate::database::{fetch_all, micros, Param, Tx};
use crate::params;
use crate::reading::{QueryError, MAX_PAGE};
use crate::runtime::{Index, Projection, ProjectionError, Table};

pub struct Audit;

/// The events an audit shows.
pub const AUDITED: [&str; 25] = domain::event_types![
    "OrganizationCreated",
    "InvitationCreated",
    "InvitationAccepted",
    "InvitationRevoked",
    "MemberAdded",
    "MemberRoleChanged",
    "MemberRemoved",
    "MemberSessionsEnded",
    "TwoFactorRequirementSet",
    "SsoConfigured",
    "WebhookEndpointAdded",
    "WebhookEndpointRemoved",
    "CustomerBlocked",
    "CustomerBlockLifted",
    "QueueCreated",
    "QueueOpened",
    "QueueClosed",
    "QueueSettingsChanged",
    "QueueHandlerAdded",
    "QueueHandlerRemoved",
    "CannedResponseCreated",
    "CannedResponseChanged",
    "CannedResponseDeleted",
    "CustomerErased",
    "RetentionSet",
];

/// The fields that name what an event acted on, in the order they are looked for: the first
/// found is the row's `subject`, a second one (a queue's handler, an invitation's new member)
/// is kept beside it, so that either finds the row.
const SUBJECTS: [&str; 6] = [
    "queue_id",
    "agent_id",
    "endpoint_id",
    "block_id",
    "invitation_id",
    "response_id",
];

const TABLES: &[Table] = &[Table {
    name: "rm_audit",
    columns: "position BIGINT PRIMARY KEY, at BIGINT NOT NULL, organization_id TEXT NOT NULL, \
              type TEXT NOT NULL, actor_kind TEXT NOT NULL, actor_id TEXT, subject TEXT, \
              also_subject TEXT, details TEXT NOT NULL",
    indexes: &[Index {
        name: "rm_audit_by_org",
        columns: "organization_id, position",
        unique: false,
        lookup: false,
    }],
    full_text: None,
}];

#[async_trait]
impl Projection for Audit {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&AUDITED)
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        event: &StoredEvent,
        decoded: &Event,
    ) -> Result<(), ProjectionError> {
        // From the decoded event: a rebuild reads the log without keeping the stored JSON.
        let payload = decoded
            .payload()
            .map_err(|error| ProjectionError::Invalid(error.to_string()))?;
        let Value::Object(mut details) = payload else {
            return Ok(());
        };
        // An organization's canned response names it in its scope; a personal one belongs to
        // no organization and is not audited.
        let scoped = details
            .get("scope")
            .and_then(|scope| scope.get("organization_id"))
            .cloned();
        let Some(organization_id) = details
            .remove("organization_id")
            .or(scoped)
            .and_then(|id| id.as_str().map(str::to_owned))
        else {
            return Ok(());
        };
        details.remove("type");
        let mut subjects = SUBJECTS
            .iter()
            .filter_map(|field| details.get(*field).and_then(Value::as_str))
            .map(str::to_owned);
        let (subject, also_subject) = (subjects.next(), subjects.next());
        // An erasure acts on the conversation (its queue beside it).
        let (subject, also_subject) = match details.get("conversation_id").and_then(Value::as_str) {
            Some(conversation) if event.event_type == "CustomerErased" => {
                (Some(conversation.to_owned()), subject)
            }
            _ => (subject, also_subject),
        };
        let (actor_kind, actor_id) = actor(event.actor.as_ref());
        let details = serde_json::to_string(&details)
            .map_err(|error| ProjectionError::Invalid(error.to_string()))?;
        tx.execute(
            "INSERT INTO rm_audit{s} (position, at, organization_id, type, actor_kind, actor_id,
             subject, also_subject, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            params![
                event.position,
                micros(event.recorded_at),
                organization_id,
                event.event_type.as_str(),
                actor_kind,
                actor_id,
                subject,
                also_subject,
                details
            ],
        )
        .await?;
        Ok(())
    }
}

/// The stored actor as `(kind, id)`: `agent` with its id, or `system` for the command line and
/// Jono's own work (an event stored without one, or by an anonymous caller).
fn actor(stored: Option<&Value>) -> (String, Option<String>) {
    let kind = stored.and_then(|a| a.get("kind")).and_then(Value::as_str);
    let id = stored
        .and_then(|a| a.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (kind, id) {
        (Some("agent"), Some(id)) => ("agent".into(), Some(id)),
        (Some("customer"), Some(id)) => ("customer".into(), Some(id)),
        _ => ("system".into(), None),
    }
}

/// One change, as the audit shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub position: i64,
    pub at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    /// `agent`, `customer` or `system`.
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    /// The id of what was acted on: a member, a queue, an endpoint, an invitation, a block.
    pub subject: Option<Uuid>,
    /// The event's own fields, as in the log.
    pub details: Value,
}

/// What to show of an organization's audit.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only these event types; empty: all.
    pub types: Vec<String>,
    pub actor: Option<Uuid>,
    pub subject: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Newest first: the page ends before `after` instead of starting after it.
    pub newest_first: bool,
}

/// Adds `template` to `sql` with each `?` the placeholder of `value`, bound next.
fn clause(sql: &mut String, bound: &mut Vec<Param>, template: &str, value: Param) {
    bound.push(value);
    sql.push_str(&template.replace('?', &format!("${}", bound.len())));
}

/// An organization's changes after the position `after` (oldest first), or before it when
/// newest first (`None`: from the start, or from the end), at most `limit`.
pub async fn entries(
    backend: &Backend,
    organization_id: Uuid,
    filter: &AuditFilter,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, QueryError> {
    let (cursor, order) = if filter.newest_first {
        (
            after.unwrap_or(i64::MAX),
            "position < $2 ORDER BY position DESC",
        )
    } else {
        (after.unwrap_or(0), "position > $2 ORDER BY position")
    };
    let mut sql = String::from(
        "SELECT position, at, type, actor_kind, actor_id, subject, details FROM rm_audit
         WHERE organization_id = $1",
    );
    let mut bound: Vec<Param> = vec![organization_id.into(), cursor.into()];
    if let Some(actor) = filter.actor {
        clause(&mut sql, &mut bound, " AND actor_id = ?", actor.into());
    }
    if let Some(subject) = filter.subject {
        let either = " AND (subject = ? OR also_subject = ?)";
        clause(&mut sql, &mut bound, either, subject.into());
    }
    if let Some(from) = filter.from {
        clause(&mut sql, &mut bound, " AND at >= ?", micros(from).into());
    }
    if let Some(to) = filter.to {
        clause(&mut sql, &mut bound, " AND at < ?", micros(to).into());
    }
    if !filter.types.is_empty() {
        let mut placeholders = Vec::new();
        for kind in &filter.types {
            bound.push(kind.as_str().into());
            placeholders.push(format!("${}", bound.len()));
        }
        sql.push_str(&format!(" AND type IN ({})", placeholders.join(", ")));
    }
    bound.push(limit.clamp(1, MAX_PAGE).into());
    let (filtered, ordered) = order
        .split_once(" ORDER BY ")
        .unwrap_or((order, "position"));
    sql.push_str(&format!(
        " AND {filtered} ORDER BY {ordered} LIMIT ${}",
        bound.len()
    ));
    type Row = (
        i64,
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
    );
    let rows: Vec<Row> = fetch_all(backend, &sql, &bound).await?;
    rows.into_iter()
        .map(
            |(position, at, kind, actor_kind, actor_id, subject, details)| {
                Ok(AuditEntry {
                    position,
                    at: crate::reading::time(at)?,
                    kind,
                    actor_kind,
                    actor_id: actor_id.as_deref().map(crate::reading::id).transpose()?,
                    // A subject that is not an id (none today) is shown as absent.
                    subject: subject.and_then(|text| Uuid::parse_str(&text).ok()),
                    details: serde_json::from_str(&details)
                        .map_err(|e| QueryError::Corrupt(format!("details: {e}")))?,
                })
            },
        )
        .collect()
}
