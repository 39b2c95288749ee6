//! The audit view (issue 17, item 3): who changed what in an organization, and when, read from
//! the log through the `audit` read model — members and roles, invitations, queues and their
//! settings, sign-in rules, single sign-on, webhooks, blocks, canned responses. Operators only.
//!
//! `GET /v1/orgs/{org}/audit` filters by `type` (one or more, comma-separated), `actor` (an
//! agent), `subject` (what was acted on), `from` and `to`, pages by `after` (a position; with
//! `order=desc`, newest first, the page ends before it), and
//! answers JSON or, with `format=csv`, a CSV file of the same rows (an export for a spreadsheet
//! or an auditor; one page of at most 1,000 rows, the next from `after`).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::values::Role;
use projections::audit::{self, AuditFilter, AUDITED};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::access;
use crate::auth::AgentCaller;
use crate::error::ApiError;
use crate::extract::{path_id, PageQuery, Params};
use crate::openapi::{time_schema, uuid_schema, Route, Routes};
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new("organizations").route(
        Route::get("/v1/orgs/{org}/audit", audit_log)
            .id("audit")
            .summary("Who changed what, and when")
            .describe(
                "Operators (403 for an agent). The organization's changes read from the log, \
                     oldest first: members and roles, invitations, queues and their settings and \
                     handlers, sign-in rules, single sign-on, webhooks, blocks, canned responses. \
                     Filters combine; `format=csv` answers the same rows as a CSV file (fields \
                     quoted; a value that starts like a spreadsheet formula is prefixed with \
                     `'`). 422 for a type that is not audited.",
            )
            .query(
                "type",
                json!({"type": "string"}),
                "Only these event types, comma-separated.",
            )
            .query("actor", uuid_schema(), "Only what this agent did.")
            .query(
                "subject",
                uuid_schema(),
                "Only what was done to this member, queue, endpoint, invitation or block.",
            )
            .query("from", time_schema(), "From this time (inclusive).")
            .query("to", time_schema(), "Before this time.")
            .query(
                "format",
                json!({"enum": ["json", "csv"]}),
                "`json` (the default) or `csv`.",
            )
            .query(
                "order",
                json!({"enum": ["asc", "desc"]}),
                "`asc` (the default: oldest first, the page starts after `after`) or `desc` \
                     (newest first, the page ends before `after`).",
            )
            .paged("the last item's `position`")
            .returns::<Vec<AuditItem>>(
                200,
                "A page of changes: JSON, or with `format=csv` the same rows as CSV.",
            )
            .or_as("text/csv", json!({"type": "string"})),
    )
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    actor: Option<String>,
    subject: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
    limit: Option<String>,
    format: Option<String>,
    order: Option<String>,
}

/// One change of an organization, as the audit shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditItem {
    /// The event's place in the log: the cursor of this list.
    pub position: i64,
    pub at: DateTime<Utc>,
    /// The event's type (`MemberRoleChanged`, `QueueSettingsChanged`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Who acted: `agent`, or `system` (the command line, Jono's own work).
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    /// The acting agent's name now, when it has an account.
    pub actor_name: Option<String>,
    /// What was acted on: a member, a queue, a webhook endpoint, an invitation, a block.
    pub subject: Option<Uuid>,
    /// The event's fields as the log holds them (without the organization).
    pub details: Value,
}

async fn audit_log(
    State(state): State<AppState>,
    Path(org): Path<String>,
    agent: AgentCaller,
    Params(query): Params<AuditQuery>,
) -> Result<Response, ApiError> {
    let organization_id = path_id(&org)?;
    access::at_least(&state, &agent, organization_id, Role::Operator).await?;
    let page = PageQuery {
        after: query.after.clone(),
        limit: query.limit.clone(),
    }
    .parse::<i64>()?;
    let id = |raw: Option<&str>, field: &str| match raw {
        None | Some("") => Ok(None),
        Some(raw) => raw
            .parse::<Uuid>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{field} {raw:?} is not an id"))),
    };
    let types: Vec<String> = query
        .kind
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|kind| !kind.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = types.iter().find(|kind| !AUDITED.contains(&kind.as_str())) {
        return Err(ApiError::Invalid(format!(
            "type {unknown:?} is not audited; the audited types are {}",
            AUDITED.join(", ")
        )));
    }
    let csv = match query.format.as_deref() {
        None | Some("") | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "format {other:?} is not json or csv"
            )))
        }
    };
    let newest_first = match query.order.as_deref() {
        None | Some("") | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "order {other:?} is not asc or desc"
            )))
        }
    };
    let filter = AuditFilter {
        newest_first,
        types,
        actor: id(query.actor.as_deref(), "actor")?,
        subject: id(query.subject.as_deref(), "subject")?,
        from: crate::extract::time("from", query.from.as_deref())?,
        to: crate::extract::time("to", query.to.as_deref())?,
    };
    let limit = i64::try_from(page.limit).unwrap_or(projections::MAX_PAGE);
    let entries =
        audit::entries(state.backend(), organization_id, &filter, page.after, limit).await?;
    let mut names: HashMap<Uuid, Option<String>> = HashMap::new();
    let mut items = Vec::with_capacity(entries.len());
    for entry in entries {
        let actor_name = match entry.actor_id {
            Some(actor) if entry.actor_kind == "agent" => match names.get(&actor) {
                Some(name) => name.clone(),
                None => {
                    let name = projections::directory::read::account(state.backend(), actor)
                        .await?
                        .map(|account| account.name);
                    names.insert(actor, name.clone());
                    name
                }
            },
            _ => None,
        };
        items.push(AuditItem {
            position: entry.position,
            at: entry.at,
            kind: entry.kind,
            actor_kind: entry.actor_kind,
            actor_id: entry.actor_id,
            actor_name,
            subject: entry.subject,
            details: entry.details,
        });
    }
    if !csv {
        return Ok(Json(items).into_response());
    }
    let disposition = format!("attachment; filename=\"audit-{organization_id}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        to_csv(&items),
    )
        .into_response())
}

/// RFC 4180: a header line, then one line per item; every field quoted, quotes doubled. A
/// field that a spreadsheet would take for a formula (`=`, `+`, `-`, `@` first) is prefixed with
/// `'`, so an exported value never runs as one.
fn to_csv(items: &[AuditItem]) -> String {
    let mut out =
        String::from("position,at,type,actor_kind,actor_id,actor_name,subject,details\r\n");
    for item in items {
        let fields = [
            item.position.to_string(),
            item.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            item.kind.clone(),
            item.actor_kind.clone(),
            item.actor_id.map(|id| id.to_string()).unwrap_or_default(),
            item.actor_name.clone().unwrap_or_default(),
            item.subject.map(|id| id.to_string()).unwrap_or_default(),
            item.details.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|field| quoted(field)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn quoted(field: &str) -> String {
    let safe = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    format!("\"{}\"", safe.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(quoted("plain"), "\"plain\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quoted("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
        assert_eq!(quoted("-1"), "\"'-1\"");
        assert_eq!(quoted("a,b\nc"), "\"a,b\nc\"");
    }
}
