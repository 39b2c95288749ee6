//! The secrets emailed links carry: an address confirmation's and a password reset's token.
//! As every token of `crate::secrets`, 256 random bits handed out once (in the message) of which
//! only the SHA-256 is kept, here and never in the log. A link works once ([`take`] deletes its
//! row in the statement that reads it, so two uses race to one winner) and until it expires; a
//! new link of the same purpose for the same account replaces the one before.

use chrono::Utc;
use store::log::Backend;
use uuid::Uuid;

use crate::secrets::{hash_token, new_token, on_pool};

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS email_links (
        token_hash TEXT PRIMARY KEY,
        purpose TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS email_links_by_agent ON email_links (agent_id, purpose)",
];

/// Creates the table if it is missing.
pub async fn migrate(backend: &Backend) -> Result<(), sqlx::Error> {
    for statement in SCHEMA {
        on_pool!(backend, pool => sqlx::query(statement).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

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

/// A new link's token for `agent_id`, working for `seconds`; the account's earlier link of
/// this purpose stops working, and expired links of anyone are forgotten.
pub async fn issue(
    backend: &Backend,
    purpose: Purpose,
    agent_id: Uuid,
    seconds: i64,
) -> Result<String, sqlx::Error> {
    let now = Utc::now().timestamp();
    let expired = "DELETE FROM email_links WHERE expires_at <= $1";
    on_pool!(backend, pool => sqlx::query(expired).bind(now).execute(pool).await.map(|_| ()))?;
    let earlier = "DELETE FROM email_links WHERE agent_id = $1 AND purpose = $2";
    on_pool!(backend, pool => sqlx::query(earlier)
        .bind(agent_id.to_string())
        .bind(purpose.as_str())
        .execute(pool)
        .await
        .map(|_| ()))?;
    let token = new_token();
    let insert = "INSERT INTO email_links (token_hash, purpose, agent_id, expires_at)
                  VALUES ($1, $2, $3, $4)";
    on_pool!(backend, pool => sqlx::query(insert)
        .bind(hash_token(&token))
        .bind(purpose.as_str())
        .bind(agent_id.to_string())
        .bind(now + seconds)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(token)
}

/// The account a live link of `purpose` belongs to, leaving the link as it is.
pub async fn peek(
    backend: &Backend,
    purpose: Purpose,
    token: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = "SELECT agent_id FROM email_links
               WHERE token_hash = $1 AND purpose = $2 AND expires_at > $3";
    let row: Option<(String,)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(hash_token(token))
        .bind(purpose.as_str())
        .bind(Utc::now().timestamp())
        .fetch_optional(pool)
        .await)?;
    Ok(row.and_then(|(agent,)| agent.parse().ok()))
}

/// Uses a link: the account it belongs to if it is live, and from now on it works no more.
pub async fn take(
    backend: &Backend,
    purpose: Purpose,
    token: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let sql = "DELETE FROM email_links WHERE token_hash = $1 AND purpose = $2
               RETURNING agent_id, expires_at";
    let row: Option<(String, i64)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(hash_token(token))
        .bind(purpose.as_str())
        .fetch_optional(pool)
        .await)?;
    let now = Utc::now().timestamp();
    Ok(row
        .filter(|(_, expires_at)| *expires_at > now)
        .and_then(|(agent, _)| agent.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_link_works_once_for_its_purpose_and_a_new_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        let backend = store.backend();
        migrate(backend).await.unwrap();
        let agent = Uuid::new_v4();
        let first = issue(backend, Purpose::ResetPassword, agent, 60)
            .await
            .unwrap();
        assert_eq!(
            peek(backend, Purpose::ConfirmAddress, &first)
                .await
                .unwrap(),
            None,
            "a reset's link confirms nothing"
        );
        let second = issue(backend, Purpose::ResetPassword, agent, 60)
            .await
            .unwrap();
        assert_eq!(
            take(backend, Purpose::ResetPassword, &first).await.unwrap(),
            None
        );
        assert_eq!(
            peek(backend, Purpose::ResetPassword, &second)
                .await
                .unwrap(),
            Some(agent)
        );
        assert_eq!(
            take(backend, Purpose::ResetPassword, &second)
                .await
                .unwrap(),
            Some(agent)
        );
        assert_eq!(
            take(backend, Purpose::ResetPassword, &second)
                .await
                .unwrap(),
            None
        );
        // An expired link opens nothing.
        let late = issue(backend, Purpose::ConfirmAddress, agent, 0)
            .await
            .unwrap();
        assert_eq!(
            peek(backend, Purpose::ConfirmAddress, &late).await.unwrap(),
            None
        );
        assert_eq!(
            take(backend, Purpose::ConfirmAddress, &late).await.unwrap(),
            None
        );
    }
}
