//! Single sign-on's secrets, kept beside the log and never in it ([`store::sso_secrets`]): an
//! organization's client secret at its provider, and each sign-in under way between its two
//! legs (its `state` only hashed, with its nonce and PKCE verifier), taken once and within
//! [`SIGN_IN_SECONDS`].

use chrono::Utc;
use store::error::StoreError;
use store::log::Backend;
use store::sso_secrets as stored;

use crate::secrets::hash_token;

pub use store::sso_secrets::{client_secret, set_client_secret, SignIn};

/// How long a sign-in may take at the provider.
pub const SIGN_IN_SECONDS: i64 = 600;

pub async fn begin(backend: &Backend, state: &str, sign_in: &SignIn) -> Result<(), StoreError> {
    let now = Utc::now().timestamp();
    stored::begin(
        backend,
        &hash_token(state),
        sign_in,
        now,
        now + SIGN_IN_SECONDS,
    )
    .await
}

/// Takes the sign-in of `state` once: a replayed or unknown state finds nothing.
pub async fn take(backend: &Backend, state: &str) -> Result<Option<SignIn>, StoreError> {
    let taken = stored::take(backend, &hash_token(state)).await?;
    let now = Utc::now().timestamp();
    Ok(taken.and_then(|(sign_in, expires_at)| (expires_at >= now).then_some(sign_in)))
}
