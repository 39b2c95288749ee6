//! Single sign-on's secrets, in tables of their own beside `secrets`' and never in the log: an
//! organization's client secret at its provider, and each sign-in under way between its two
//! legs (its `state` only hashed, with its nonce and PKCE verifier), taken once.

use chrono::Utc;
use store::log::Backend;
use uuid::Uuid;

use crate::secrets::{hash_token, on_pool};

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS sso_client_secrets (
        organization_id TEXT PRIMARY KEY,
        client_secret TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS sso_sign_ins (
        state_hash TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL,
        nonce TEXT NOT NULL,
        verifier TEXT NOT NULL,
        redirect_uri TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
];

/// How long a sign-in may take at the provider.
pub const SIGN_IN_SECONDS: i64 = 600;

pub async fn migrate(backend: &Backend) -> Result<(), sqlx::Error> {
    for statement in SCHEMA {
        on_pool!(backend, pool => sqlx::query(statement).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

pub async fn set_client_secret(
    backend: &Backend,
    organization_id: Uuid,
    secret: &str,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO sso_client_secrets (organization_id, client_secret) VALUES ($1, $2)
               ON CONFLICT (organization_id) DO UPDATE SET client_secret = excluded.client_secret";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(organization_id.to_string())
        .bind(secret)
        .execute(pool)
        .await
        .map(|_| ()))
}

pub async fn client_secret(
    backend: &Backend,
    organization_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    let sql = "SELECT client_secret FROM sso_client_secrets WHERE organization_id = $1";
    let row: Option<(String,)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(organization_id.to_string())
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(|(secret,)| secret))
}

/// A sign-in under way, as its first leg left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub organization_id: Uuid,
    pub nonce: String,
    pub verifier: String,
    pub redirect_uri: String,
}

pub async fn begin(backend: &Backend, state: &str, sign_in: &SignIn) -> Result<(), sqlx::Error> {
    let now = Utc::now().timestamp();
    let prune = "DELETE FROM sso_sign_ins WHERE expires_at < $1";
    on_pool!(backend, pool => sqlx::query(prune).bind(now).execute(pool).await.map(|_| ()))?;
    let sql = "INSERT INTO sso_sign_ins
               (state_hash, organization_id, nonce, verifier, redirect_uri, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6)";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(hash_token(state))
        .bind(sign_in.organization_id.to_string())
        .bind(&sign_in.nonce)
        .bind(&sign_in.verifier)
        .bind(&sign_in.redirect_uri)
        .bind(now + SIGN_IN_SECONDS)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Takes the sign-in of `state` once: a replayed or unknown state finds nothing.
pub async fn take(backend: &Backend, state: &str) -> Result<Option<SignIn>, sqlx::Error> {
    let sql = "DELETE FROM sso_sign_ins WHERE state_hash = $1
               RETURNING organization_id, nonce, verifier, redirect_uri, expires_at";
    let row: Option<(String, String, String, String, i64)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(hash_token(state))
        .fetch_optional(pool)
        .await)?;
    Ok(row.and_then(
        |(organization, nonce, verifier, redirect_uri, expires_at)| {
            (expires_at >= Utc::now().timestamp()).then_some(())?;
            Some(SignIn {
                organization_id: organization.parse().ok()?,
                nonce,
                verifier,
                redirect_uri,
            })
        },
    ))
}
