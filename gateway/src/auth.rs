//! Who is calling. A bearer token (header `Authorization: Bearer …`, or `?token=` on a read
//! where a browser cannot set headers) is an agent's session or a customer's conversation token; only
//! their SHA-256 is stored (`secrets`). Passwords are argon2id, hashed off the async threads a
//! few at a time (`hashing`).
//!
//! An agent's token works while the agent belongs to at least one organization: removal from
//! the last one ends it at once. A customer's token works until 24 hours after its conversation
//! ended.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::Method;
use chrono::{Duration, Utc};
use projections::conversations::read::Conversation;
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::access;
use crate::consistency;
use crate::error::ApiError;
use crate::secrets;
use crate::state::AppState;

/// How long a customer's token outlives its conversation.
pub const CUSTOMER_TOKEN_AFTER_END: Duration = Duration::hours(24);

/// An agent, authenticated.
#[derive(Debug, Clone)]
pub struct AgentCaller {
    pub agent_id: Uuid,
    /// The session's token hash: logout ends this one.
    pub token_hash: String,
    /// Its standing in each of its organizations, read when this request was authenticated:
    /// this request's access checks answer from them (`access::member`). None for a caller kept
    /// beyond its request ([`Caller::kept`]), whose checks read them again each time.
    pub standings: access::Standings,
    /// Its display name, read with its standings (the name its messages carry). None for a
    /// caller kept beyond its request, whose name is read again when it is needed.
    pub name: Option<Arc<str>>,
}

/// The name of an agent without an account row.
pub const UNNAMED_AGENT: &str = "Agent";

/// A customer, authenticated: it may open only `conversation_id`.
#[derive(Debug, Clone)]
pub struct CustomerCaller {
    pub conversation_id: Uuid,
    pub token_hash: String,
    /// Its conversation as the token's check read it (`None` if the read models did not show
    /// it yet): the request's access check answers from it instead of reading it again.
    pub conversation: Option<Arc<Conversation>>,
}

/// Either kind of caller.
#[derive(Debug, Clone)]
pub enum Caller {
    Agent(AgentCaller),
    Customer(CustomerCaller),
}

impl Caller {
    /// This caller, to keep beyond its request (a WebSocket session): without the standings
    /// or the conversation its request read, so that a later check sees a removal, a changed
    /// role or a conversation's change made since.
    pub fn kept(self) -> Caller {
        match self {
            Caller::Agent(agent) => Caller::Agent(AgentCaller {
                standings: access::Standings::default(),
                name: None,
                ..agent
            }),
            Caller::Customer(customer) => Caller::Customer(CustomerCaller {
                conversation: None,
                ..customer
            }),
        }
    }

    /// Scopes idempotency keys and rate limits to one caller.
    pub fn key(&self) -> &str {
        match self {
            Caller::Agent(agent) => &agent.token_hash,
            Caller::Customer(customer) => &customer.token_hash,
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    // A token in the query string is for what cannot set a header: the WebSocket and browsers'
    // downloads, which are reads. A command must carry it in `Authorization`.
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        return None;
    }
    let query = parts.uri.query()?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token=").map(str::to_owned))
}

/// Resolves a token to a live caller, or `None`.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Option<Caller>, ApiError> {
    let token_hash = secrets::hash_token(token);
    // Noted before the session is read: see `access::standings`.
    let reached = consistency::reached(state);
    if let Some(session) = state.sessions.get(token_hash.clone()).await? {
        if !secrets::session_in_use(state.backend(), &token_hash, &session.token).await {
            return Ok(None);
        }
        let agent_id = session.token.agent_id;
        let name = session
            .name
            .clone()
            .unwrap_or_else(|| UNNAMED_AGENT.to_owned());
        let Some(standings) = access::standings(state, reached, session).await? else {
            return Ok(None);
        };
        return Ok(Some(Caller::Agent(AgentCaller {
            agent_id,
            token_hash,
            standings,
            name: Some(name.into()),
        })));
    }
    let Some(conversation_id) = secrets::customer_of(state.backend(), &token_hash).await? else {
        return Ok(None);
    };
    crate::sweeper::saw_customer(conversation_id);
    let conversation = state.conversations.get(conversation_id).await?;
    // A token handed out at join is live before the read model shows the conversation.
    if let Some(ended_at) = conversation.as_ref().and_then(|c| c.ended_at) {
        if Utc::now() - ended_at > CUSTOMER_TOKEN_AFTER_END {
            return Ok(None);
        }
    }
    Ok(Some(Caller::Customer(CustomerCaller {
        conversation_id,
        token_hash,
        conversation: conversation.map(Arc::new),
    })))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let caller = authenticate(state, &token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Agent(agent) => Ok(agent),
            // A customer's token opens nothing of an agent's.
            Caller::Customer(_) => Err(ApiError::Forbidden("this needs an agent's token".into())),
        }
    }
}

/// A caller who may also be anonymous (joining a queue, reading a queue's public face).
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if bearer(parts).is_none() {
            return Ok(MaybeCaller(None));
        }
        Caller::from_request_parts(parts, state)
            .await
            .map(|caller| MaybeCaller(Some(caller)))
    }
}

/// At most this many argon2 computations run at once: each holds 19 MiB, so their number,
/// not the number of requests, bounds the memory that sign-ups, logins and password changes
/// take (API.md, Limits: whatever `JONO_RATE_LIMITS` says).
const HASHING_AT_ONCE: usize = 2;
/// At most this many more wait for a turn; beyond them a request is refused at once with 503
/// and `Retry-After`, holding nothing.
const HASHING_QUEUE: usize = 8;
/// A request waits this long for its turn at most, then is refused the same way.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The turns of password hashing in this process.
struct HashingTurns {
    /// Running or waiting.
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

static HASHING: LazyLock<HashingTurns> = LazyLock::new(|| HashingTurns {
    admitted: Arc::new(Semaphore::new(HASHING_AT_ONCE + HASHING_QUEUE)),
    running: Arc::new(Semaphore::new(HASHING_AT_ONCE)),
});

/// Runs `work` (an argon2 computation) on a blocking thread when its turn comes, or refuses
/// with `ApiError::Busy`. The turn is held by the thread, not the request, so a client that
/// hangs up cannot make room for more computations than the bound.
async fn hashing<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let admitted = Arc::clone(&HASHING.admitted)
        .try_acquire_owned()
        .map_err(|_| ApiError::Busy)?;
    let running = tokio::time::timeout(HASHING_WAIT, Arc::clone(&HASHING.running).acquire_owned())
        .await
        .map_err(|_| ApiError::Busy)?
        .map_err(|_| ApiError::Busy)?;
    tokio::task::spawn_blocking(move || {
        let done = work();
        drop((running, admitted));
        done
    })
    .await
    .map_err(|error| ApiError::Internal(format!("{what}: {error}")))
}

/// Hashes a password with argon2id and a fresh salt.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    hashing("hashing a password", move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| ApiError::Internal(format!("hashing a password: {error}")))
    })
    .await?
}

/// A hash of nothing in particular, so an unknown email costs as much time as a known one.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2Z5qFtr1ns5dE2kb5qCCTNd0Gsf5Bf4F2bl3Ys1LCKc";

/// Whether `password` matches `hash` (or, with no hash, spends the same time and says no).
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, ApiError> {
    hashing("checking a password", move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && known
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong horse battery".into(), Some(hash))
            .await
            .unwrap());
        assert!(!verify_password("anything at all".into(), None)
            .await
            .unwrap());
    }
}
