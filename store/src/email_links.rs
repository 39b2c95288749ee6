//! The secrets emailed links carry, beside the log and never in it: only a token's hash, with
//! its purpose, its account and when it expires. A link is taken by the statement that deletes
//! it, so two uses race to one winner.

use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS email_links (
        token_hash TEXT PRIMARY KEY,
        purpose TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS email_links_by_agent ON email_links (agent_id, purpose)",
];

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    ConfirmAddress,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmAddress => "confirm-address",
            Self::ResetPassword => "reset-password",
        }
    }
}

/// Keeps a new link (by its token's hash) of `agent_id` until `expires_at`: the account's
/// earlier link of this purpose is forgotten, and so are the links of anyone expired by `now`.
pub async fn issue(
    backend: &Backend,
    token_hash: &str,
    purpose: Purpose,
    agent_id: Uuid,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let expired = "DELETE FROM email_links WHERE expires_at <= $1";
    dialect::execute(backend, expired, params![now]).await?;
    let earlier = "DELETE FROM email_links WHERE agent_id = $1 AND purpose = $2";
    dialect::execute(backend, earlier, params![agent_id, purpose.as_str()]).await?;
    let insert = "INSERT INTO email_links (token_hash, purpose, agent_id, expires_at)
                  VALUES ($1, $2, $3, $4)";
    let params = params![token_hash, purpose.as_str(), agent_id, expires_at];
    dialect::execute(backend, insert, params).await?;
    Ok(())
}

/// The account a link of `purpose` live at `now` belongs to, leaving the link as it is.
pub async fn peek(
    backend: &Backend,
    token_hash: &str,
    purpose: Purpose,
    now: i64,
) -> Result<Option<Uuid>, StoreError> {
    let sql = "SELECT agent_id FROM email_links
               WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3";
    let params = params![token_hash, purpose.as_str(), now];
    let row: Option<(String,)> = dialect::fetch_optional(backend, sql, params).await?;
    Ok(row.and_then(|(agent,)| agent.parse().ok()))
}

/// Takes a link of `purpose`: the account it belongs to and when it expires, and from now on
/// it is gone.
pub async fn take(
    backend: &Backend,
    token_hash: &str,
    purpose: Purpose,
) -> Result<Option<(Uuid, i64)>, StoreError> {
    let sql = "DELETE FROM email_links WHERE token_hash = $1 AND purpose = $2
               RETURNING agent_id, expires_at";
    let params = params![token_hash, purpose.as_str()];
    let row: Option<(String, i64)> = dialect::fetch_optional(backend, sql, params).await?;
    Ok(row.and_then(|(agent, expires_at)| Some((agent.parse().ok()?, expires_at))))
}
