//! Single sign-on's secrets, beside the log and never in it: an organization's client secret
//! at its provider, and each sign-in under way between its two legs (its `state` only hashed,
//! with its nonce and PKCE verifier), taken once.

use uuid::Uuid;

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 2] = [
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

pub async fn set_client_secret(
    backend: &Backend,
    organization_id: Uuid,
    secret: &str,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO sso_client_secrets (organization_id, client_secret) VALUES ($1, $2)
               ON CONFLICT (organization_id) DO UPDATE SET client_secret = excluded.client_secret";
    dialect::execute(backend, sql, params![organization_id, secret]).await?;
    Ok(())
}

pub async fn client_secret(
    backend: &Backend,
    organization_id: Uuid,
) -> Result<Option<String>, StoreError> {
    let sql = "SELECT client_secret FROM sso_client_secrets WHERE organization_id = $1";
    let row: Option<(String,)> =
        dialect::fetch_optional(backend, sql, params![organization_id]).await?;
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

/// Keeps a sign-in under its state's hash until `expires_at`, forgetting those expired by
/// `now`.
pub async fn begin(
    backend: &Backend,
    state_hash: &str,
    sign_in: &SignIn,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let prune = "DELETE FROM sso_sign_ins WHERE expires_at < $1";
    dialect::execute(backend, prune, params![now]).await?;
    let sql = "INSERT INTO sso_sign_ins
               (state_hash, organization_id, nonce, verifier, redirect_uri, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6)";
    let params = params![
        state_hash,
        sign_in.organization_id,
        &sign_in.nonce,
        &sign_in.verifier,
        &sign_in.redirect_uri,
        expires_at,
    ];
    dialect::execute(backend, sql, params).await?;
    Ok(())
}

/// Takes the sign-in of a state's hash once, with when it expires: a replayed or unknown state
/// finds nothing.
pub async fn take(
    backend: &Backend,
    state_hash: &str,
) -> Result<Option<(SignIn, i64)>, StoreError> {
    let sql = "DELETE FROM sso_sign_ins WHERE state_hash = $1
               RETURNING organization_id, nonce, verifier, redirect_uri, expires_at";
    let row: Option<(String, String, String, String, i64)> =
        dialect::fetch_optional(backend, sql, params![state_hash]).await?;
    Ok(row.and_then(
        |(organization, nonce, verifier, redirect_uri, expires_at)| {
            let sign_in = SignIn {
                organization_id: organization.parse().ok()?,
                nonce,
                verifier,
                redirect_uri,
            };
            Some((sign_in, expires_at))
        },
    ))
}
