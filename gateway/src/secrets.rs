//! What must never enter the log lives here, in tables of its own next to it: hashes of
//! invitation tokens (and, with the HTTP contract, of session tokens and passwords). A token is
//! 256 random bits handed out once; only its SHA-256 is stored, so a copy of the database opens
//! nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use store::log::Backend;
use uuid::Uuid;

/// Runs the same sqlx expression against whichever pool the store has. The SQL is written once
/// in the dialect both understand: `$1`… placeholders in order, TEXT ids, BIGINT epoch seconds.
macro_rules! on_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

const SCHEMA: [&str; 1] = ["CREATE TABLE IF NOT EXISTS invitation_tokens (
        token_hash TEXT PRIMARY KEY,
        invitation_id TEXT NOT NULL,
        organization_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )"];

/// Creates the tables if they are missing.
pub async fn migrate(backend: &Backend) -> Result<(), sqlx::Error> {
    for statement in SCHEMA {
        on_pool!(backend, pool => sqlx::query(statement).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

/// A fresh secret token, URL-safe.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored in place of a token.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An invitation a token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationToken {
    pub invitation_id: Uuid,
    pub organization_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

pub async fn store_invitation_token(
    backend: &Backend,
    token: &str,
    invitation: &InvitationToken,
) -> Result<(), sqlx::Error> {
    let sql =
        "INSERT INTO invitation_tokens (token_hash, invitation_id, organization_id, expires_at)
               VALUES ($1, $2, $3, $4)";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(hash_token(token))
        .bind(invitation.invitation_id.to_string())
        .bind(invitation.organization_id.to_string())
        .bind(invitation.expires_at.timestamp())
        .execute(pool)
        .await
        .map(|_| ()))
}

/// The invitation behind `token`, if there is one.
pub async fn find_invitation_token(
    backend: &Backend,
    token: &str,
) -> Result<Option<InvitationToken>, sqlx::Error> {
    let sql = "SELECT invitation_id, organization_id, expires_at FROM invitation_tokens
               WHERE token_hash = $1";
    let row: Option<(String, String, i64)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(hash_token(token))
        .fetch_optional(pool)
        .await)?;
    Ok(row.and_then(|(invitation, organization, expires)| {
        Some(InvitationToken {
            invitation_id: invitation.parse().ok()?,
            organization_id: organization.parse().ok()?,
            expires_at: DateTime::from_timestamp(expires, 0)?,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert!(!hash_token(&a).contains(&a));
    }

    #[tokio::test]
    async fn an_invitation_token_opens_its_invitation_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        migrate(store.backend()).await.unwrap();
        let token = new_token();
        let invitation = InvitationToken {
            invitation_id: Uuid::new_v4(),
            organization_id: Uuid::new_v4(),
            expires_at: DateTime::from_timestamp(2_000_000_000, 0).unwrap(),
        };
        store_invitation_token(store.backend(), &token, &invitation)
            .await
            .unwrap();
        let found = find_invitation_token(store.backend(), &token)
            .await
            .unwrap();
        assert_eq!(found, Some(invitation));
        assert_eq!(
            find_invitation_token(store.backend(), &new_token())
                .await
                .unwrap(),
            None
        );
    }
}
