//! What must never enter the log lives here, in tables of its own next to it: hashes of
//! invitation tokens (and, with the HTTP contract, of session tokens and passwords, and the
//! device and address each session was opened from). A token is
//! 256 random bits handed out once; only its SHA-256 is stored, so a copy of the database opens
//! nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::values::VisitorKey;
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
pub(crate) use on_pool;

const SCHEMA: [&str; 13] = [
    "CREATE TABLE IF NOT EXISTS invitation_tokens (
        token_hash TEXT PRIMARY KEY,
        invitation_id TEXT NOT NULL,
        organization_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    // An account's argon2id hash (a PHC string with its own salt and parameters).
    "CREATE TABLE IF NOT EXISTS credentials (
        agent_id TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL
    )",
    // Who is creating an account (`claim_account`): the first INSERT of an id wins on both
    // backends, so one email has one account however many sign-ups and acceptances race.
    "CREATE TABLE IF NOT EXISTS account_claims (
        agent_id TEXT PRIMARY KEY,
        claimed_at BIGINT NOT NULL
    )",
    // An agent's session; it lasts 30 days from its last use.
    "CREATE TABLE IF NOT EXISTS agent_tokens (
        token_hash TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_used_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS agent_tokens_by_agent ON agent_tokens (agent_id)",
    // Where a session was opened: the browser's User-Agent and the client address, shown to
    // its agent in its list of sessions. A session opened before this table has no row.
    // `ends_at`: a session that ends then however it is used (one opened through an
    // organization's identity provider, so that a person removed there is out by then).
    "CREATE TABLE IF NOT EXISTS agent_token_devices (
        token_hash TEXT PRIMARY KEY,
        user_agent TEXT,
        address TEXT,
        ends_at BIGINT
    )",
    // A customer's token opens its own conversation only.
    "CREATE TABLE IF NOT EXISTS customer_tokens (
        token_hash TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
    // The keyed hash of the address a customer joined from (`client::VisitorKeys`), kept as
    // long as its token, so that an agent can block that visitor; never in the log.
    "CREATE TABLE IF NOT EXISTS customer_visitors (
        conversation_id TEXT PRIMARY KEY,
        visitor_key TEXT NOT NULL
    )",
    // Idempotency keys of commands that the log alone cannot answer (the response is kept).
    "CREATE TABLE IF NOT EXISTS idempotent_responses (
        key TEXT PRIMARY KEY,
        request_hash TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
    // Which conversation a kept answer is about (the customer's own requests, and agents'
    // under `/v1/conversations/{c}/`), so that an erasure forgets it with the conversation.
    "CREATE TABLE IF NOT EXISTS idempotent_response_subjects (
        key TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS idempotent_response_subjects_by_conversation
        ON idempotent_response_subjects (conversation_id)",
    // Keys the server made for itself, hex: `url_signing` signs attachments' URLs,
    // `account_ids` is the secret accounts' ids are derived under. Kept so that a URL handed
    // out survives a restart and every process of a deployment agrees.
    "CREATE TABLE IF NOT EXISTS server_keys (
        name TEXT PRIMARY KEY,
        key_hex TEXT NOT NULL
    )",
    // The bytes of attachments when they live in the database (Postgres; `blobs`).
    "CREATE TABLE IF NOT EXISTS attachment_blobs (
        attachment_id TEXT PRIMARY KEY,
        bytes BYTEA NOT NULL
    )",
];

/// Creates the tables if they are missing.
pub async fn migrate(backend: &Backend) -> Result<(), sqlx::Error> {
    for statement in SCHEMA {
        on_pool!(backend, pool => sqlx::query(statement).execute(pool).await.map(|_| ()))?;
    }
    // Answers kept before they were sealed hold secrets in plain text (an invitation's token),
    // under keys scoped to a token that no caller's key matches any more: nothing to keep.
    // (`sealed:` and `sealed2:` are both sealed; only answers kept before sealing are not.)
    let unsealed = "DELETE FROM idempotent_responses WHERE body NOT LIKE 'sealed%'";
    on_pool!(backend, pool => sqlx::query(unsealed).execute(pool).await.map(|_| ()))?;
    crate::second_factor::migrate(backend).await?;
    crate::mail::outbox::migrate(backend).await?;
    crate::mail::links::migrate(backend).await?;
    crate::webhooks::table::migrate(backend).await?;
    crate::identity::migrate(backend).await?;
    crate::sso_secrets::migrate(backend).await
}

/// Whose a bearer token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    Agent { agent_id: Uuid },
    Customer { conversation_id: Uuid },
}

/// An agent's session lasts this long after its last use.
pub const AGENT_TOKEN_IDLE_SECONDS: i64 = 30 * 24 * 3600;
/// `last_used_at` is written at most this often, so reads stay reads.
const TOUCH_EVERY_SECONDS: i64 = 60;

pub async fn set_password_hash(
    backend: &Backend,
    agent_id: Uuid,
    hash: &str,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO credentials (agent_id, password_hash) VALUES ($1, $2)
               ON CONFLICT (agent_id) DO UPDATE SET password_hash = excluded.password_hash";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(agent_id.to_string())
        .bind(hash)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Keeps the password of an account being created; `false` when it has one already (then
/// nothing is written: no path replaces the password of an account that has one).
pub async fn insert_password_hash(
    backend: &Backend,
    agent_id: Uuid,
    hash: &str,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO credentials (agent_id, password_hash) VALUES ($1, $2)
               ON CONFLICT (agent_id) DO NOTHING";
    let inserted = on_pool!(backend, pool => sqlx::query(sql)
        .bind(agent_id.to_string())
        .bind(hash)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(inserted == 1)
}

/// A claim whose account still has no password this long after it was made was cut short (a
/// crash between the claim and the password): far longer than any creation takes, whose
/// hashing waits at most seconds.
pub const CLAIM_ABANDONED_SECONDS: i64 = 600;

/// Claims `agent_id` for the account being created, before its password is hashed: `true` for
/// the one caller who gets it. Another claim of the id is refused while it is fresh or its
/// account has a password, so two creations with one email never both proceed; a claim
/// abandoned by a crash (old, and no password kept) can be taken again.
pub async fn claim_account(backend: &Backend, agent_id: Uuid) -> Result<bool, sqlx::Error> {
    let now = Utc::now().timestamp();
    let insert = "INSERT INTO account_claims (agent_id, claimed_at) VALUES ($1, $2)
                  ON CONFLICT (agent_id) DO NOTHING";
    let inserted = on_pool!(backend, pool => sqlx::query(insert)
        .bind(agent_id.to_string())
        .bind(now)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    if inserted == 1 {
        return Ok(true);
    }
    let retake = "UPDATE account_claims SET claimed_at = $1
                  WHERE agent_id = $2 AND claimed_at < $3
                  AND NOT EXISTS (SELECT 1 FROM credentials WHERE credentials.agent_id = $2)";
    let retaken = on_pool!(backend, pool => sqlx::query(retake)
        .bind(now)
        .bind(agent_id.to_string())
        .bind(now - CLAIM_ABANDONED_SECONDS)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(retaken == 1)
}

/// Gives a claim back when its creation stopped before anything was written (the hashing was
/// refused), so the person can try again at once.
pub async fn release_claim(backend: &Backend, agent_id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM account_claims WHERE agent_id = $1
               AND NOT EXISTS (SELECT 1 FROM credentials WHERE credentials.agent_id = $1)";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(agent_id.to_string())
        .execute(pool)
        .await
        .map(|_| ()))
}

pub async fn password_hash(
    backend: &Backend,
    agent_id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    let sql = "SELECT password_hash FROM credentials WHERE agent_id = $1";
    let row: Option<(String,)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(agent_id.to_string())
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(|(hash,)| hash))
}

/// Where a session is opened from, as its agent sees it in its list of sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub user_agent: Option<String>,
    pub address: Option<String>,
}

/// Hands out a new session token for `agent_id`, opened from `device`; `ends_at` (epoch
/// seconds) ends it then however it is used.
pub async fn issue_agent_token(
    backend: &Backend,
    agent_id: Uuid,
    device: &Device,
    ends_at: Option<i64>,
) -> Result<String, sqlx::Error> {
    let token = new_token();
    let hash = hash_token(&token);
    let now = Utc::now().timestamp();
    let sql = "INSERT INTO agent_tokens (token_hash, agent_id, created_at, last_used_at)
               VALUES ($1, $2, $3, $4)";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(&hash)
        .bind(agent_id.to_string())
        .bind(now)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))?;
    let sql = "INSERT INTO agent_token_devices (token_hash, user_agent, address, ends_at)
               VALUES ($1, $2, $3, $4)";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(&hash)
        .bind(device.user_agent.as_deref())
        .bind(device.address.as_deref())
        .bind(ends_at)
        .execute(pool)
        .await
        .map(|_| ()))?;
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
pub async fn sessions_of(backend: &Backend, agent_id: Uuid) -> Result<Vec<Session>, sqlx::Error> {
    let sql = "SELECT t.token_hash, t.created_at, t.last_used_at, d.user_agent, d.address,
               d.ends_at
               FROM agent_tokens t LEFT JOIN agent_token_devices d ON d.token_hash = t.token_hash
               WHERE t.agent_id = $1 AND t.last_used_at >= $2
               AND (d.ends_at IS NULL OR d.ends_at > $3)
               ORDER BY t.last_used_at DESC, t.created_at DESC";
    type Row = (
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let now = Utc::now().timestamp();
    let rows: Vec<Row> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(agent_id.to_string())
        .bind(now - AGENT_TOKEN_IDLE_SECONDS)
        .bind(now)
        .fetch_all(pool)
        .await)?;
    Ok(rows
        .into_iter()
        .map(
            |(token_hash, created_at, last_used_at, user_agent, address, ends_at)| Session {
                session_id: session_id(&token_hash),
                token_hash,
                device: Device {
                    user_agent,
                    address,
                },
                created_at,
                last_used_at,
                ends_at,
            },
        )
        .collect())
}

/// Hands out the token of a customer's conversation.
pub async fn issue_customer_token(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<String, sqlx::Error> {
    let token = new_token();
    let sql =
        "INSERT INTO customer_tokens (token_hash, conversation_id, created_at) VALUES ($1, $2, $3)";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(hash_token(&token))
        .bind(conversation_id.to_string())
        .bind(Utc::now().timestamp())
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(token)
}

/// Remembers the visitor a customer's conversation came from, for a block.
pub async fn remember_visitor(
    backend: &Backend,
    conversation_id: Uuid,
    visitor: &VisitorKey,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO customer_visitors (conversation_id, visitor_key) VALUES ($1, $2)
               ON CONFLICT (conversation_id) DO NOTHING";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(conversation_id.to_string())
        .bind(visitor.as_str())
        .execute(pool)
        .await
        .map(|_| ()))
}

/// The visitor a customer's conversation came from, when it was remembered.
pub async fn visitor_of(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<Option<VisitorKey>, sqlx::Error> {
    let sql = "SELECT visitor_key FROM customer_visitors WHERE conversation_id = $1";
    let found: Option<(String,)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(conversation_id.to_string())
        .fetch_optional(pool)
        .await)?;
    Ok(found.and_then(|(key,)| VisitorKey::parse(key).ok()))
}

/// Forgets the keyed hash of the address a conversation's customer joined from (an erasure).
pub async fn forget_visitor(backend: &Backend, conversation_id: Uuid) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM customer_visitors WHERE conversation_id = $1";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(conversation_id.to_string())
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Ends every token of a customer's conversation (a block) and says which, so that their
/// sockets can be closed.
pub async fn revoke_customer_tokens(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = "DELETE FROM customer_tokens WHERE conversation_id = $1 RETURNING token_hash";
    let revoked: Vec<(String,)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(conversation_id.to_string())
        .fetch_all(pool)
        .await)?;
    Ok(revoked.into_iter().map(|(hash,)| hash).collect())
}

/// Whose `token` is, if it is a live one. An agent's idle session expires here; the other
/// ends (removal from every organization, a customer's conversation ended a day ago) are the
/// caller's to check, since they need the read models.
pub async fn resolve_token(
    backend: &Backend,
    token: &str,
) -> Result<Option<(Bearer, String)>, sqlx::Error> {
    let hash = hash_token(token);
    let now = Utc::now().timestamp();
    let sql = "SELECT t.agent_id, t.last_used_at, d.ends_at FROM agent_tokens t
               LEFT JOIN agent_token_devices d ON d.token_hash = t.token_hash
               WHERE t.token_hash = $1";
    let agent: Option<(String, i64, Option<i64>)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(&hash)
        .fetch_optional(pool)
        .await)?;
    if let Some((agent_id, last_used_at, ends_at)) = agent {
        let Ok(agent_id) = agent_id.parse() else {
            return Ok(None);
        };
        if now - last_used_at > AGENT_TOKEN_IDLE_SECONDS || ends_at.is_some_and(|end| end <= now) {
            return Ok(None);
        }
        if now - last_used_at > TOUCH_EVERY_SECONDS {
            let touch = "UPDATE agent_tokens SET last_used_at = $1 WHERE token_hash = $2";
            on_pool!(backend, pool => sqlx::query(touch).bind(now).bind(&hash).execute(pool).await.map(|_| ()))?;
        }
        return Ok(Some((Bearer::Agent { agent_id }, hash)));
    }
    let sql = "SELECT conversation_id FROM customer_tokens WHERE token_hash = $1";
    let customer: Option<(String,)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(&hash)
        .fetch_optional(pool)
        .await)?;
    Ok(customer
        .and_then(|(id,)| id.parse().ok())
        .map(|conversation_id| (Bearer::Customer { conversation_id }, hash)))
}

/// Whether a token, known by its hash, is still live: an agent's session not revoked nor idle
/// for 30 days, or a customer's token.
pub async fn token_hash_alive(backend: &Backend, token_hash: &str) -> Result<bool, sqlx::Error> {
    let sql = "SELECT t.last_used_at, d.ends_at FROM agent_tokens t
               LEFT JOIN agent_token_devices d ON d.token_hash = t.token_hash
               WHERE t.token_hash = $1";
    let agent: Option<(i64, Option<i64>)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(token_hash)
        .fetch_optional(pool)
        .await)?;
    if let Some((last_used_at, ends_at)) = agent {
        let now = Utc::now().timestamp();
        return Ok(
            now - last_used_at <= AGENT_TOKEN_IDLE_SECONDS && ends_at.is_none_or(|end| end > now)
        );
    }
    let sql = "SELECT conversation_id FROM customer_tokens WHERE token_hash = $1";
    let customer: Option<(String,)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(token_hash)
        .fetch_optional(pool)
        .await)?;
    Ok(customer.is_some())
}

/// Ends one session (logout).
pub async fn revoke_token_hash(backend: &Backend, token_hash: &str) -> Result<(), sqlx::Error> {
    for sql in [
        "DELETE FROM agent_tokens WHERE token_hash = $1",
        "DELETE FROM agent_token_devices WHERE token_hash = $1",
    ] {
        on_pool!(backend, pool => sqlx::query(sql).bind(token_hash).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

/// Ends every session of an agent but `keep` (a password change keeps the one that made it).
pub async fn revoke_agent_tokens(
    backend: &Backend,
    agent_id: Uuid,
    keep: Option<&str>,
) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM agent_tokens WHERE agent_id = $1 AND token_hash <> $2
               RETURNING token_hash";
    let revoked: Vec<(String,)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(agent_id.to_string())
        .bind(keep.unwrap_or(""))
        .fetch_all(pool)
        .await)?;
    let devices = "DELETE FROM agent_token_devices WHERE token_hash = $1";
    for (hash,) in revoked {
        on_pool!(backend, pool => sqlx::query(devices).bind(&hash).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
}

/// How long a kept answer answers its key (API.md: a key is kept 24 hours).
pub const RESPONSE_KEPT_SECONDS: i64 = 24 * 3600;

/// A response kept under an idempotency key and not yet expired: `(request_hash, status,
/// body)`, the body as `keep_response` was given it (sealed by the caller).
pub async fn find_response(
    backend: &Backend,
    key: &str,
) -> Result<Option<(String, u16, String)>, sqlx::Error> {
    let sql = "SELECT request_hash, status, body FROM idempotent_responses
               WHERE key = $1 AND created_at >= $2";
    let row: Option<(String, i32, String)> = on_pool!(backend, pool => sqlx::query_as(sql)
        .bind(key)
        .bind(Utc::now().timestamp() - RESPONSE_KEPT_SECONDS)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(|(hash, status, body)| (hash, u16::try_from(status).unwrap_or(500), body)))
}

/// Keeps a response under its idempotency key; the first one kept wins while it lasts.
pub async fn keep_response(
    backend: &Backend,
    key: &str,
    request_hash: &str,
    status: u16,
    body: &str,
) -> Result<(), sqlx::Error> {
    let now = Utc::now().timestamp();
    let sql = "INSERT INTO idempotent_responses (key, request_hash, status, body, created_at)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET
               request_hash = excluded.request_hash, status = excluded.status,
               body = excluded.body, created_at = excluded.created_at
               WHERE idempotent_responses.created_at < $6";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(key)
        .bind(request_hash)
        .bind(i32::from(status))
        .bind(body)
        .bind(now)
        .bind(now - RESPONSE_KEPT_SECONDS)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Notes that the answer kept under `key` is about `conversation_id` (for its erasure).
pub async fn keep_response_subject(
    backend: &Backend,
    key: &str,
    conversation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO idempotent_response_subjects (key, conversation_id) VALUES ($1, $2)
               ON CONFLICT (key) DO UPDATE SET conversation_id = excluded.conversation_id";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(key)
        .bind(conversation_id.to_string())
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Forgets every kept answer noted as about `conversation_id` (its customer was erased); how
/// many.
pub async fn forget_responses_of(
    backend: &Backend,
    conversation_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let forget = "DELETE FROM idempotent_responses WHERE key IN
                  (SELECT key FROM idempotent_response_subjects WHERE conversation_id = $1)";
    let forgotten = on_pool!(backend, pool => sqlx::query(forget)
        .bind(conversation_id.to_string())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    let notes = "DELETE FROM idempotent_response_subjects WHERE conversation_id = $1";
    on_pool!(backend, pool => sqlx::query(notes)
        .bind(conversation_id.to_string())
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(forgotten)
}

/// Forgets the responses whose 24 hours are over, as of `now` (epoch seconds).
pub async fn prune_responses(backend: &Backend, now: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM idempotent_responses WHERE created_at < $1";
    let pruned = on_pool!(backend, pool => sqlx::query(sql)
        .bind(now - RESPONSE_KEPT_SECONDS)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    let notes = "DELETE FROM idempotent_response_subjects
                 WHERE key NOT IN (SELECT key FROM idempotent_responses)";
    on_pool!(backend, pool => sqlx::query(notes).execute(pool).await.map(|_| ()))?;
    Ok(pruned)
}

/// The key that signs attachments' URLs: 32 random bytes made by the first server that asks
/// and kept, so every later one (and every process of a deployment) signs alike.
pub async fn url_signing_key(backend: &Backend) -> Result<[u8; 32], sqlx::Error> {
    server_key(backend, "url_signing").await
}

/// The secret under which accounts' ids are derived from emails (`domain::ids::account_id`):
/// made by the first server that asks and kept, so an email's id is the same in every process
/// of a deployment and after a restart, and nobody without this table can compute it.
pub async fn account_id_secret(backend: &Backend) -> Result<Uuid, sqlx::Error> {
    let key = server_key(backend, "account_ids").await?;
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&key[..16]);
    Ok(Uuid::from_bytes(bytes))
}

/// The secret under which verified customers' references are derived from their sites' user
/// ids (`domain::ids::customer_ref`): kept, so a returning customer is the same customer on
/// every process of a deployment and after a restart, and nobody without it can compute one.
pub async fn customer_ref_secret(backend: &Backend) -> Result<Uuid, sqlx::Error> {
    let key = server_key(backend, "customer_refs").await?;
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&key[..16]);
    Ok(Uuid::from_bytes(bytes))
}

/// The secret visitors' keys are made under (`client::VisitorKeys`): kept, so a block holds
/// across restarts and on every process of a deployment.
pub async fn visitor_key_secret(backend: &Backend) -> Result<[u8; 32], sqlx::Error> {
    server_key(backend, "visitor_keys").await
}

/// The seed of the Ed25519 key that signs webhook deliveries (`webhooks::Signer`): kept here,
/// never in the log, so every process of a deployment signs with the key it publishes.
pub async fn webhook_signing_seed(backend: &Backend) -> Result<[u8; 32], sqlx::Error> {
    server_key(backend, "webhook_signing").await
}

/// The server key `name`: 32 random bytes made by the first server that asks and kept.
async fn server_key(backend: &Backend, name: &str) -> Result<[u8; 32], sqlx::Error> {
    let mut fresh = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    let fresh_hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
    // Two servers starting at once both insert; the first wins and both read it back.
    let insert = "INSERT INTO server_keys (name, key_hex) VALUES ($1, $2)
                  ON CONFLICT (name) DO NOTHING";
    on_pool!(backend, pool => sqlx::query(insert)
        .bind(name)
        .bind(&fresh_hex)
        .execute(pool)
        .await
        .map(|_| ()))?;
    let select = "SELECT key_hex FROM server_keys WHERE name = $1";
    let (key_hex,): (String,) = on_pool!(backend, pool => sqlx::query_as(select)
        .bind(name)
        .fetch_one(pool)
        .await)?;
    let mut key = [0u8; 32];
    let parsed = (0..32).all(|i| {
        key_hex
            .get(2 * i..2 * i + 2)
            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            .map(|byte| key[i] = byte)
            .is_some()
    });
    if !parsed || key_hex.len() != 64 {
        return Err(sqlx::Error::Decode(
            format!("server_keys.{name} is not 32 bytes of hex").into(),
        ));
    }
    Ok(key)
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
/// Ends the token of a withdrawn invitation.
pub async fn delete_invitation_tokens(
    backend: &Backend,
    invitation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM invitation_tokens WHERE invitation_id = $1";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(invitation_id.to_string())
        .execute(pool)
        .await
        .map(|_| ()))
}

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
                resolve_token(backend, token).await.unwrap().is_some(),
                alive
            );
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
    async fn an_account_is_claimed_once_and_a_password_is_never_replaced_by_a_creation() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        let backend = store.backend();
        migrate(backend).await.unwrap();
        let agent_id = Uuid::new_v4();
        assert!(claim_account(backend, agent_id).await.unwrap());
        assert!(!claim_account(backend, agent_id).await.unwrap());
        // Given back before anything was written, it can be claimed again.
        release_claim(backend, agent_id).await.unwrap();
        assert!(claim_account(backend, agent_id).await.unwrap());
        assert!(insert_password_hash(backend, agent_id, "first")
            .await
            .unwrap());
        assert!(!insert_password_hash(backend, agent_id, "second")
            .await
            .unwrap());
        assert_eq!(
            password_hash(backend, agent_id).await.unwrap().as_deref(),
            Some("first")
        );
        // Once the account has its password the claim is never given back nor taken again,
        // however old it grows.
        release_claim(backend, agent_id).await.unwrap();
        let age = "UPDATE account_claims SET claimed_at = 0";
        on_pool!(backend, pool => sqlx::query(age).execute(pool).await.map(|_| ())).unwrap();
        assert!(!claim_account(backend, agent_id).await.unwrap());
        // An abandoned claim (old, no password) can be taken again.
        let abandoned = Uuid::new_v4();
        assert!(claim_account(backend, abandoned).await.unwrap());
        on_pool!(backend, pool => sqlx::query(age).execute(pool).await.map(|_| ())).unwrap();
        assert!(claim_account(backend, abandoned).await.unwrap());
        assert!(!claim_account(backend, abandoned).await.unwrap());
    }

    #[tokio::test]
    async fn a_kept_answer_answers_for_24_hours_then_is_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        let backend = store.backend();
        migrate(backend).await.unwrap();
        keep_response(backend, "k", "h", 201, "sealed:first")
            .await
            .unwrap();
        keep_response(backend, "k", "h2", 201, "sealed:second")
            .await
            .unwrap();
        let found = find_response(backend, "k").await.unwrap();
        assert_eq!(found, Some(("h".into(), 201, "sealed:first".into())));
        let now = Utc::now().timestamp();
        assert_eq!(prune_responses(backend, now).await.unwrap(), 0);
        // A day and a second later it answers no more, and is pruned.
        let age = "UPDATE idempotent_responses SET created_at = created_at - 86401";
        on_pool!(backend, pool => sqlx::query(age).execute(pool).await.map(|_| ())).unwrap();
        assert_eq!(find_response(backend, "k").await.unwrap(), None);
        assert_eq!(prune_responses(backend, now).await.unwrap(), 1);
        assert_eq!(find_response(backend, "k").await.unwrap(), None);
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
