//! `Idempotency-Key` (API.md, Conventions; invariant 9). A command retried with the same key
//! by the same caller returns its first answer and appends nothing; the same key with another
//! body is 422. Two layers make that hold:
//!
//! - the key (scoped to the caller's token, hashed with the request) goes with the command into
//!   the log, in the same transaction as its events, so even a crash right after the commit
//!   cannot let a retry append twice — the command layer hands back the first events instead;
//! - the first response is kept (`secrets::keep_response`), sealed (`Seal`), for 24 hours, so a
//!   retry gets it byte for byte, including what the events alone cannot say (an invitation's
//!   token).
//!
//! A keyed command is authenticated before anything else: a key belongs to its caller (the
//! agent, or the customer's conversation), and a request without a valid token is 401 before
//! its body is read or any kept answer looked up.
//!
//! Sign-up, login (both its steps), joining a queue and accepting an invitation take no key;
//! nor do the emailed links' calls of people without a token (a password reset, asking for
//! one, an address confirmation).

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};
use store::log::IdempotencyRecord;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::secrets;
use crate::state::AppState;

/// The largest request a key is checked for (an attachment and its multipart framing).
const BODY_LIMIT: usize = 11 * 1024 * 1024;
/// Responses above this are not kept (none of the contract's are).
const RESPONSE_LIMIT: usize = 1024 * 1024;
/// The longest key taken.
const KEY_LIMIT: usize = 255;

/// The key of the request being served, for its command.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub IdempotencyRecord);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn exempt(path: &str) -> bool {
    path == "/v1/signup"
        || path == "/v1/login"
        || path == "/v1/login/two-factor"
        || path == "/v1/password-reset"
        || path == "/v1/password-reset/request"
        || path == "/v1/email-confirmation"
        // A customer's doors: anyone, each time a new conversation (a join, a left message).
        || (path.starts_with("/v1/queues/") && (path.ends_with("/join") || path.ends_with("/messages")))
        || (path.starts_with("/v1/invitations/") && path.ends_with("/accept"))
}

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_command = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::DELETE
    );
    let key = request
        .headers()
        .get("idempotency-key")
        .map(|value| value.as_bytes().to_vec());
    let (Some(key), true) = (key, is_command) else {
        return next.run(request).await;
    };
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    match keyed(state, key, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn keyed(
    state: AppState,
    key: Vec<u8>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if key.is_empty() || key.len() > KEY_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "an Idempotency-Key has 1 to {KEY_LIMIT} bytes"
        )));
    }
    let (mut parts, body) = request.into_parts();
    // Authentication first (invariant 13): nobody without a valid token gets a kept answer or
    // has a body buffered. The caller found is kept in the request for its handler.
    let caller = Caller::from_request_parts(&mut parts, &state).await?;
    // A key belongs to the caller (the agent, or the customer's conversation), however and
    // with whichever of its tokens it arrived, and to nobody else.
    let owner = match &caller {
        Caller::Agent(agent) => format!("agent:{}", agent.agent_id),
        Caller::Customer(customer) => format!("conversation:{}", customer.conversation_id),
    };
    // The conversation the answer is about, if any, noted beside it so that an erasure of
    // its customer forgets it (`erasure::after_erased`).
    let subject = match &caller {
        Caller::Customer(customer) => Some(customer.conversation_id),
        Caller::Agent(_) => conversation_of_path(parts.uri.path()),
    };
    let bytes = to_bytes(body, BODY_LIMIT).await.map_err(|error| {
        if crate::edge::is_body_deadline(&error) {
            ApiError::RequestTimeout
        } else {
            ApiError::TooLarge("the request body is too large".into())
        }
    })?;
    let scoped = hex(&Sha256::new()
        .chain_update(&owner)
        .chain_update(b"\0")
        .chain_update(&key)
        .finalize());
    let seal = Seal::new(&owner, &key);
    let request_hash = hex(&Sha256::new()
        .chain_update(parts.method.as_str())
        .chain_update(b"\0")
        .chain_update(parts.uri.path())
        .chain_update(b"\0")
        .chain_update(&bytes)
        .finalize());
    let kept = secrets::find_response(state.backend(), &scoped)
        .await?
        // Kept before answers were sealed with an AEAD (at most 24 hours ago): not opened; the
        // request runs again and the command layer answers from the events its key appended.
        .filter(|(_, _, body)| !body.starts_with(LEGACY_SEALED));
    if let Some((first_hash, status, body)) = kept {
        if first_hash != request_hash {
            return Err(ApiError::Invalid(
                "this Idempotency-Key was used for a different request".into(),
            ));
        }
        return Ok(replay(status, seal.open(&body)?));
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    let record = IdempotencyRecord {
        key: scoped.clone(),
        request_hash: request_hash.clone(),
    };
    request.extensions_mut().insert(IdempotencyKey(record));
    let response = next.run(request).await;
    if !response.status().is_success() {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, RESPONSE_LIMIT)
        .await
        .map_err(|_| ApiError::Internal("a response too large to keep".into()))?;
    secrets::keep_response(
        state.backend(),
        &scoped,
        &request_hash,
        parts.status.as_u16(),
        &seal.close(&bytes)?,
    )
    .await?;
    if let Some(conversation_id) = subject {
        secrets::keep_response_subject(state.backend(), &scoped, conversation_id).await?;
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// The conversation of a path under `/v1/conversations/{c}`.
fn conversation_of_path(path: &str) -> Option<uuid::Uuid> {
    path.strip_prefix("/v1/conversations/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// A kept answer is sealed under a key made from its caller and its Idempotency-Key, which is
/// stored only hashed: a copy of the database reads no secret from it (an invitation's token),
/// while the caller who retries with the key opens it. Sealing is ChaCha20-Poly1305 (RFC 8439,
/// the RustCrypto crate) with a random nonce, so a kept answer that was altered does not open.
struct Seal([u8; 32]);

/// What a sealed answer starts with: `sealed2:` and then base64 of the nonce and the
/// ciphertext with its tag.
const SEALED: &str = "sealed2:";
const NONCE: usize = 12;
/// What answers kept by earlier versions start with.
const LEGACY_SEALED: &str = "sealed:";

impl Seal {
    fn new(owner: &str, key: &[u8]) -> Self {
        Seal(
            Sha256::new()
                .chain_update(b"seal\0")
                .chain_update(owner)
                .chain_update(b"\0")
                .chain_update(key)
                .finalize()
                .into(),
        )
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    fn close(&self, plain: &[u8]) -> Result<String, ApiError> {
        let mut nonce = [0u8; NONCE];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), plain)
            .map_err(|_| ApiError::Internal("an answer that cannot be sealed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(format!("{SEALED}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    fn open(&self, sealed: &str) -> Result<String, ApiError> {
        let corrupt = || ApiError::Internal("a kept answer that does not open".into());
        let encoded = sealed.strip_prefix(SEALED).ok_or_else(corrupt)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| corrupt())?;
        if bytes.len() < NONCE {
            return Err(corrupt());
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let plain = self
            .cipher()
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    // As the first answer: JSON when it had a body, no content type when it had none (a
    // `String` body would otherwise say text/plain).
    let mut response = if body.is_empty() {
        status.into_response()
    } else {
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    response
        .headers_mut()
        .insert("idempotent-replay", HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_under_a_conversations_path_is_about_it() {
        let id = uuid::Uuid::from_u128(7);
        assert_eq!(
            conversation_of_path(&format!("/v1/conversations/{id}/messages")),
            Some(id)
        );
        assert_eq!(
            conversation_of_path(&format!("/v1/conversations/{id}")),
            Some(id)
        );
        assert_eq!(
            conversation_of_path("/v1/conversations/not-an-id/end"),
            None
        );
        assert_eq!(conversation_of_path(&format!("/v1/queues/{id}/pick")), None);
    }

    #[test]
    fn a_sealed_answer_opens_only_with_its_key_and_unaltered() {
        let seal = Seal::new("agent:1", b"key-1");
        let sealed = seal.close(b"{\"token\":\"secret\"}").unwrap();
        assert!(sealed.starts_with(SEALED));
        assert!(!sealed.contains("secret"));
        assert_eq!(seal.open(&sealed).unwrap(), "{\"token\":\"secret\"}");
        // Two seals of one answer differ (a fresh nonce each).
        assert_ne!(sealed, seal.close(b"{\"token\":\"secret\"}").unwrap());
        assert!(Seal::new("agent:2", b"key-1").open(&sealed).is_err());
        assert!(Seal::new("agent:1", b"key-2").open(&sealed).is_err());
        let mut bytes = URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix(SEALED).unwrap())
            .unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = format!("{SEALED}{}", URL_SAFE_NO_PAD.encode(bytes));
        assert!(seal.open(&altered).is_err(), "an altered answer opened");
    }
}
