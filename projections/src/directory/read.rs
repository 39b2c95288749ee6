//! What the HTTP layer asks of the directory read model's tables (accounts, organizations,
//! memberships, invitations, blocks, single sign-on and retention): each function answers one
//! question of API.md from the `rm_` tables alone (never the log, but for [`agent_sessions`]),
//! as plain serializable structs. Authorization is the caller's: these functions say what is,
//! not who may see it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::values::Role;
use serde::Serialize;
use store::log::Backend;
use uuid::Uuid;

use crate::database::{fetch_all, fetch_few, fetch_optional};
use crate::params;
use crate::reading::{id, named, opt_id, time, QueryError, Result};
use crate::runtime::Dialect;

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
    pub role: Role,
}

/// The organizations `agent_id` is a member of, oldest membership first.
pub async fn memberships_of(backend: &Backend, agent_id: Uuid) -> Result<Vec<Membership>> {
    let rows: Vec<(String, String, String)> = fetch_few(
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
                role: named(&role)?,
            })
        })
        .collect()
}

/// The role of `agent_id` in the organization; `None` for a non-member.
pub async fn role_of(
    backend: &Backend,
    organization_id: Uuid,
    agent_id: Uuid,
) -> Result<Option<Role>> {
    let row: Option<(String,)> = fetch_optional(
        backend,
        "SELECT role FROM rm_memberships WHERE organization_id = $1 AND agent_id = $2",
        params![organization_id, agent_id],
    )
    .await?;
    row.map(|(role,)| named(&role)).transpose()
}

/// A member's standing in an organization: what an access check asks on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub role: Role,
    /// The organization requires its members to have a second factor.
    pub two_factor_required: bool,
}

/// `agent_id`'s standing in each of its organizations, in one read: what an agent's request is
/// checked against once (the token works while there is one; each access check of the request
/// then answers from it instead of reading its organization's row again).
pub async fn standings_of(backend: &Backend, agent_id: Uuid) -> Result<Vec<(Uuid, Standing)>> {
    let rows: Vec<(String, String, Option<i64>)> = fetch_few(
        backend,
        "SELECT m.organization_id, m.role, s.two_factor_required FROM rm_memberships m
         LEFT JOIN rm_org_sign_in s ON s.organization_id = m.organization_id
         WHERE m.agent_id = $1 ORDER BY m.position",
        params![agent_id],
    )
    .await?;
    rows.into_iter()
        .map(|(organization_id, role, required)| {
            Ok((
                id(&organization_id)?,
                Standing {
                    role: named(&role)?,
                    two_factor_required: required.is_some_and(|required| required != 0),
                },
            ))
        })
        .collect()
}

/// An agent's session found by its token's hash, with what its request is checked against:
/// [`agent_sessions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSession {
    pub token: store::tokens::AgentToken,
    /// The agent's display name (`None`: no account row yet).
    pub name: Option<String>,
    /// Its standing in each of its organizations, as [`standings_of`] reads them.
    pub standings: Vec<(Uuid, Standing)>,
    /// The log's position of the last event of any of those organizations' streams (0 for
    /// none): the standings hold every change answered before a request once the read models
    /// have reached it.
    pub organizations_changed: i64,
}

/// The sessions of tokens' hashes (those of concurrent requests: see `store::gathered`), each
/// with its agent's name and standings, in one statement, by hash; a hash of no session is
/// absent. An agent's request asks this once, where it used to ask four questions (the
/// session, the standings, each organization's last position in the log, the name its
/// messages carry). It reads the token tables of `store::tokens` and the log's organization
/// streams (`organization_type`, the stream's `aggregate_type`) beside this read model's
/// tables, which every backend's reads see together (SQLite's readers attach the read models'
/// file).
pub async fn agent_sessions(
    backend: &Backend,
    token_hashes: &[String],
    organization_type: &str,
) -> Result<HashMap<String, AgentSession>> {
    type SessionRow = (
        String,
        String,
        i64,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    let hashes = Dialect::of(backend).each_of("$1");
    let rows: Vec<SessionRow> = fetch_few(
        backend,
        &format!(
            "SELECT t.token_hash, t.agent_id, t.last_used_at, d.ends_at, a.name,
                    m.organization_id, m.role, s.two_factor_required,
                    (SELECT e.position FROM events e
                     WHERE e.aggregate_type = $2 AND e.aggregate_id = m.organization_id
                     ORDER BY e.sequence DESC LIMIT 1)
             FROM agent_tokens t
             LEFT JOIN agent_token_devices d ON d.token_hash = t.token_hash
             LEFT JOIN rm_accounts a ON a.agent_id = t.agent_id
             LEFT JOIN rm_memberships m ON m.agent_id = t.agent_id
             LEFT JOIN rm_org_sign_in s ON s.organization_id = m.organization_id
             WHERE t.token_hash IN ({hashes}) ORDER BY t.token_hash, m.position"
        ),
        params![
            serde_json::Value::from(token_hashes.to_vec()).to_string(),
            organization_type
        ],
    )
    .await?;
    let mut sessions: HashMap<String, AgentSession> = HashMap::new();
    for (hash, agent_id, last_used_at, ends_at, name, organization_id, role, required, changed) in
        rows
    {
        let session = match sessions.entry(hash) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(AgentSession {
                token: store::tokens::AgentToken {
                    agent_id: id(&agent_id)?,
                    last_used_at,
                    ends_at,
                },
                name,
                standings: Vec::new(),
                organizations_changed: 0,
            }),
        };
        let (Some(organization_id), Some(role)) = (organization_id, role) else {
            continue;
        };
        session.standings.push((
            id(&organization_id)?,
            Standing {
                role: named(&role)?,
                two_factor_required: required.is_some_and(|required| required != 0),
            },
        ));
        session.organizations_changed = session.organizations_changed.max(changed.unwrap_or(0));
    }
    Ok(sessions)
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
    pub role: Role,
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
                role: named(&role)?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub role: Role,
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
                role: named(&role)?,
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
                role: named(&role)?,
                expires_at: time(expires_at)?,
                invited_by: opt_id(invited_by.as_deref())?,
                accepted: accepted != 0,
                accepted_by: opt_id(accepted_by.as_deref())?,
            })
        },
    )
    .transpose()
}
