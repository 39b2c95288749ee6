//! What must never enter the log: tokens, passwords, kept answers and the server's own keys,
//! and the rules about them (how a token is made and hashed, how long a session or a kept
//! answer lasts). They are stored in tables beside the log, behind the typed functions of
//! `store` ([`store::tokens`], [`store::credentials`], [`store::invitation_tokens`],
//! [`store::visitors`], [`store::kept_answers`], [`store::server_keys`]). A token is
//! 256 random bits handed out once; only its SHA-256 is stored, so a copy of the database opens
//! nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use domain::values::VisitorKey;
use rand::RngCore;
use sha2::{Digest, Sha256};
use store::error::StoreError;
use store::log::Backend;
use store::tokens::AgentToken;
use store::{credentials, invitation_tokens, kept_answers, server_keys, tokens, visitors};
use uuid::Uuid;

/// Creates the tables beside the log if they are missing (see [`store::beside_log`]).
pub use store::beside_log::migrate;
pub use store::invitation_tokens::InvitationToken;
pub use store::tokens::Device;

/// An agent's session lasts this long after its last use.
pub const AGENT_TOKEN_IDLE_SECONDS: i64 = 30 * 24 * 3600;
/// `last_used_at` is written at most this often, so reads stay reads.
const TOUCH_EVERY_SECONDS: i64 = 60;

pub async fn set_password_hash(
    backend: &Backend,
    agent_id: Uuid,
    hash: &str,
) -> Result<(), StoreError> {
    credentials::set_password_hash(backend, agent_id, hash).await
}

/// Keeps the password of an account being created; `false` when it has one already (then
/// nothing is written: no path replaces the password of an account that has one).
pub async fn insert_password_hash(
    backend: &Backend,
    agent_id: Uuid,
    hash: &str,
) -> Result<bool, StoreError> {
    credentials::insert_password_hash(backend, agent_id, hash).await
}

/// A claim whose account still has no password this long after it was made was cut short (a
/// crash between the claim and the password): far longer than any creation takes, whose
/// hashing waits at most seconds.
pub const CLAIM_ABANDONED_SECONDS: i64 = 600;

/// Claims `agent_id` for the account being created, before its password is hashed: `true` for
/// the one caller who gets it. Another claim of the id is refused while it is fresh or its
/// account has a password, so two creations with one email never both proceed; a claim
/// abandoned by a crash (old, and no password kept) can be taken again.
pub async fn claim_account(backend: &Backend, agent_id: Uuid) -> Result<bool, StoreError> {
    let now = Utc::now().timestamp();
    credentials::claim_account(backend, agent_id, now, now - CLAIM_ABANDONED_SECONDS).await
}

/// Gives a claim back when its creation stopped before anything was written (the hashing was
/// refused), so the person can try again at once.
pub async fn release_claim(backend: &Backend, agent_id: Uuid) -> Result<(), StoreError> {
    credentials::release_claim(backend, agent_id).await
}

pub async fn password_hash(
    backend: &Backend,
    agent_id: Uuid,
) -> Result<Option<String>, StoreError> {
    credentials::password_hash(backend, agent_id).await
}

/// Hands out a new session token for `agent_id`, opened from `device`; `ends_at` (epoch
/// seconds) ends it then however it is used.
pub async fn issue_agent_token(
    backend: &Backend,
    agent_id: Uuid,
    device: &Device,
    ends_at: Option<i64>,
) -> Result<String, StoreError> {
    let token = new_token();
    let now = Utc::now().timestamp();
    tokens::insert_agent_token(backend, &hash_token(&token), agent_id, device, ends_at, now)
        .await?;
    Ok(token)
}

/// One of an agent's live sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// What the session is known by in the API: derived from its token's hash, and opening
    /// nothing.
    pub session_id: String,
    pub token_hash: String,
    pub device: Device,
    pub created_at: i64,
    pub last_used_at: i64,
    pub ends_at: Option<i64>,
}

/// The public id of the session whose token hashes to `token_hash`.
pub fn session_id(token_hash: &str) -> String {
    hash_token(&format!("session:{token_hash}"))[..24].to_owned()
}

/// The agent's live sessions, the latest used first.
pub async fn sessions_of(backend: &Backend, agent_id: Uuid) -> Result<Vec<Session>, StoreError> {
    let now = Utc::now().timestamp();
    let stored =
        tokens::sessions_of(backend, agent_id, now - AGENT_TOKEN_IDLE_SECONDS, now).await?;
    Ok(stored
        .into_iter()
        .map(|session| Session {
            session_id: session_id(&session.token_hash),
            token_hash: session.token_hash,
            device: session.device,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            ends_at: session.ends_at,
        })
        .collect())
}

/// Hands out the token of a customer's conversation.
pub async fn issue_customer_token(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<String, StoreError> {
    let token = new_token();
    let now = Utc::now().timestamp();
    tokens::insert_customer_token(backend, &hash_token(&token), conversation_id, now).await?;
    Ok(token)
}

/// Remembers the visitor a customer's conversation came from, for a block.
pub async fn remember_visitor(
    backend: &Backend,
    conversation_id: Uuid,
    visitor: &VisitorKey,
) -> Result<(), StoreError> {
    visitors::remember(backend, conversation_id, visitor.as_str()).await
}

/// The visitor a customer's conversation came from, when it was remembered.
pub async fn visitor_of(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<Option<VisitorKey>, StoreError> {
    let found = visitors::visitor_of(backend, conversation_id).await?;
    Ok(found.and_then(|key| VisitorKey::parse(key).ok()))
}

/// Forgets the keyed hash of the address a conversation's customer joined from (an erasure).
pub async fn forget_visitor(backend: &Backend, conversation_id: Uuid) -> Result<(), StoreError> {
    visitors::forget(backend, conversation_id).await
}

/// Ends every token of a customer's conversation (a block) and says which, so that their
/// sockets can be closed.
pub async fn revoke_customer_tokens(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<Vec<String>, StoreError> {
    tokens::revoke_customer_tokens(backend, conversation_id).await
}

/// Whether an agent's session, last used at `last_used_at` and ending at `ends_at`, is live at
/// `now`.
fn session_live(now: i64, last_used_at: i64, ends_at: Option<i64>) -> bool {
    now - last_used_at <= AGENT_TOKEN_IDLE_SECONDS && ends_at.is_none_or(|end| end > now)
}

/// Whether an agent's session, found by its token's hash, is live now (an idle one expires
/// here; the other ends, such as a removal from every organization, are the caller's to check,
/// since they need the read models). Notes the use of a live one, for the idle expiry.
pub async fn session_in_use(backend: &Backend, token_hash: &str, session: &AgentToken) -> bool {
    let now = Utc::now().timestamp();
    if !session_live(now, session.last_used_at, session.ends_at) {
        return false;
    }
    // Noting the use is bookkeeping for the idle expiry: a store that cannot take the write
    // now (a full disk, the write lock held elsewhere) does not refuse a live session, whose
    // reads go on; a later use notes it.
    if now - session.last_used_at > TOUCH_EVERY_SECONDS {
        if let Err(error) = tokens::touch_agent_token(backend, token_hash, now).await {
            tracing::warn!(%error, "cannot note a session's use now; a later use will");
        }
    }
    true
}

/// The conversation a customer's token, known by its hash, opens (its conversation's end is
/// the caller's to check).
pub async fn customer_of(backend: &Backend, token_hash: &str) -> Result<Option<Uuid>, StoreError> {
    tokens::customer_token(backend, token_hash).await
}

/// Whether a token, known by its hash, is still live: an agent's session not revoked nor idle
/// for 30 days, or a customer's token.
pub async fn token_hash_alive(backend: &Backend, token_hash: &str) -> Result<bool, StoreError> {
    if let Some(session) = tokens::agent_token(backend, token_hash).await? {
        let now = Utc::now().timestamp();
        return Ok(session_live(now, session.last_used_at, session.ends_at));
    }
    Ok(tokens::customer_token(backend, token_hash).await?.is_some())
}

/// Ends one session (logout).
pub async fn revoke_token_hash(backend: &Backend, token_hash: &str) -> Result<(), StoreError> {
    tokens::revoke_agent_token(backend, token_hash).await
}

/// Ends every session of an agent but `keep` (a password change keeps the one that made it).
pub async fn revoke_agent_tokens(
    backend: &Backend,
    agent_id: Uuid,
    keep: Option<&str>,
) -> Result<(), StoreError> {
    tokens::revoke_agent_tokens(backend, agent_id, keep).await
}

/// How long a kept answer answers its key (API.md: a key is kept 24 hours).
pub const RESPONSE_KEPT_SECONDS: i64 = 24 * 3600;

/// A response kept under an idempotency key and not yet expired: `(request_hash, status,
/// body)`, the body as `keep_response` was given it (sealed by the caller).
pub async fn find_response(
    backend: &Backend,
    key: &str,
) -> Result<Option<(String, u16, String)>, StoreError> {
    let kept_since = Utc::now().timestamp() - RESPONSE_KEPT_SECONDS;
    let found = kept_answers::find(backend, key, kept_since).await?;
    Ok(found.map(|kept| (kept.request_hash, kept.status, kept.body)))
}

/// Keeps a response under its idempotency key; the first one kept wins while it lasts.
pub async fn keep_response(
    backend: &Backend,
    key: &str,
    request_hash: &str,
    status: u16,
    body: &str,
) -> Result<(), StoreError> {
    let now = Utc::now().timestamp();
    let expired_before = now - RESPONSE_KEPT_SECONDS;
    kept_answers::keep(
        backend,
        key,
        request_hash,
        status,
        body,
        now,
        expired_before,
    )
    .await
}

/// Notes that the answer kept under `key` is about `conversation_id` (for its erasure).
pub async fn keep_response_subject(
    backend: &Backend,
    key: &str,
    conversation_id: Uuid,
) -> Result<(), StoreError> {
    kept_answers::keep_subject(backend, key, conversation_id).await
}

/// Forgets every kept answer noted as about `conversation_id` (its customer was erased); how
/// many.
pub async fn forget_responses_of(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<u64, StoreError> {
    kept_answers::forget_of(backend, conversation_id).await
}

/// Forgets the responses whose 24 hours are over, as of `now` (epoch seconds).
pub async fn prune_responses(backend: &Backend, now: i64) -> Result<u64, StoreError> {
    kept_answers::prune(backend, now - RESPONSE_KEPT_SECONDS).await
}

/// The key that signs attachments' URLs: 32 random bytes made by the first server that asks
/// and kept, so every later one (and every process of a deployment) signs alike.
pub async fn url_signing_key(backend: &Backend) -> Result<[u8; 32], StoreError> {
    server_key(backend, "url_signing").await
}

/// The secret under which accounts' ids are derived from emails (`domain::ids::account_id`):
/// made by the first server that asks and kept, so an email's id is the same in every process
/// of a deployment and after a restart, and nobody without this table can compute it.
pub async fn account_id_secret(backend: &Backend) -> Result<Uuid, StoreError> {
    let key = server_key(backend, "account_ids").await?;
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&key[..16]);
    Ok(Uuid::from_bytes(bytes))
}

/// The secret under which verified customers' references are derived from their sites' user
/// ids (`domain::ids::customer_ref`): kept, so a returning customer is the same customer on
/// every process of a deployment and after a restart, and nobody without it can compute one.
pub async fn customer_ref_secret(backend: &Backend) -> Result<Uuid, StoreError> {
    let key = server_key(backend, "customer_refs").await?;
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&key[..16]);
    Ok(Uuid::from_bytes(bytes))
}

/// The secret visitors' keys are made under (`client::VisitorKeys`): kept, so a block holds
/// across restarts and on every process of a deployment.
pub async fn visitor_key_secret(backend: &Backend) -> Result<[u8; 32], StoreError> {
    server_key(backend, "visitor_keys").await
}

/// The seed of the Ed25519 key that signs webhook deliveries (`webhooks::Signer`): kept here,
/// never in the log, so every process of a deployment signs with the key it publishes.
pub async fn webhook_signing_seed(backend: &Backend) -> Result<[u8; 32], StoreError> {
    server_key(backend, "webhook_signing").await
}

/// The server key `name`: 32 random bytes made by the first server that asks and kept.
async fn server_key(backend: &Backend, name: &str) -> Result<[u8; 32], StoreError> {
    let mut fresh = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    server_keys::key_or_keep(backend, name, fresh).await
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

pub async fn store_invitation_token(
    backend: &Backend,
    token: &str,
    invitation: &InvitationToken,
) -> Result<(), StoreError> {
    invitation_tokens::insert(backend, &hash_token(token), invitation).await
}

/// Ends the token of a withdrawn invitation.
pub async fn delete_invitation_tokens(
    backend: &Backend,
    invitation_id: Uuid,
) -> Result<(), StoreError> {
    invitation_tokens::delete_of(backend, invitation_id).await
}

/// The invitation behind `token`, if there is one.
pub async fn find_invitation_token(
    backend: &Backend,
    token: &str,
) -> Result<Option<InvitationToken>, StoreError> {
    invitation_tokens::find(backend, &hash_token(token)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

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
    async fn a_session_with_an_end_ends_then_however_it_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        let backend = store.backend();
        migrate(backend).await.unwrap();
        let agent = Uuid::new_v4();
        let device = Device::default();
        let later = Utc::now().timestamp() + 3600;
        let open = issue_agent_token(backend, agent, &device, Some(later))
            .await
            .unwrap();
        let ended = issue_agent_token(backend, agent, &device, Some(later - 7200))
            .await
            .unwrap();
        let endless = issue_agent_token(backend, agent, &device, None)
            .await
            .unwrap();
        for (token, alive) in [(&open, true), (&ended, false), (&endless, true)] {
            assert_eq!(
                token_hash_alive(backend, &hash_token(token)).await.unwrap(),
                alive
            );
        }
        let listed = sessions_of(backend, agent).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|session| session.ends_at == Some(later)));
    }

    #[tokio::test]
    async fn the_url_signing_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        migrate(store.backend()).await.unwrap();
        let first = url_signing_key(store.backend()).await.unwrap();
        let again = url_signing_key(store.backend()).await.unwrap();
        assert_eq!(first, again);
        assert_ne!(first, [0u8; 32]);
        let secret = account_id_secret(store.backend()).await.unwrap();
        assert_eq!(secret, account_id_secret(store.backend()).await.unwrap());
        assert_ne!(secret.as_bytes()[..], first[..16], "a key of its own");
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
