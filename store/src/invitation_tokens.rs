//! The tokens of invitations, beside the log and never in it: only a token's hash is kept (the
//! gateway hashes it), with the invitation it opens until when.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 1] = ["CREATE TABLE IF NOT EXISTS invitation_tokens (
        token_hash TEXT PRIMARY KEY,
        invitation_id TEXT NOT NULL,
        organization_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )"];

/// An invitation a token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationToken {
    pub invitation_id: Uuid,
    pub organization_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(
    backend: &Backend,
    token_hash: &str,
    invitation: &InvitationToken,
) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO invitation_tokens (token_hash, invitation_id, organization_id, expires_at)
               VALUES ($1, $2, $3, $4)";
    let expires_at = invitation.expires_at.timestamp();
    let (invitation_id, organization_id) = (invitation.invitation_id, invitation.organization_id);
    dialect::execute(
        backend,
        sql,
        params![token_hash, invitation_id, organization_id, expires_at],
    )
    .await?;
    Ok(())
}

/// Ends the tokens of an invitation.
pub async fn delete_of(backend: &Backend, invitation_id: Uuid) -> Result<(), StoreError> {
    let sql = "DELETE FROM invitation_tokens WHERE invitation_id = $1";
    dialect::execute(backend, sql, params![invitation_id]).await?;
    Ok(())
}

/// The invitation behind a token's hash, if there is one.
pub async fn find(
    backend: &Backend,
    token_hash: &str,
) -> Result<Option<InvitationToken>, StoreError> {
    let sql = "SELECT invitation_id, organization_id, expires_at FROM invitation_tokens
               WHERE token_hash = $1";
    let row: Option<(String, String, i64)> =
        dialect::fetch_optional(backend, sql, params![token_hash]).await?;
    Ok(row.and_then(|(invitation, organization, expires)| {
        Some(InvitationToken {
            invitation_id: invitation.parse().ok()?,
            organization_id: organization.parse().ok()?,
            expires_at: DateTime::from_timestamp(expires, 0)?,
        })
    }))
}
