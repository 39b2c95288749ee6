//! `Idempotency-Key` (API.md, Conventions; invariant 9). A command retried with the same key
//! by the same caller returns its first answer and appends nothing; the same key with another
//! body is 422. Two layers make that hold:
//!
//! - the key (scoped to the caller's token, hashed with the request) goes with the command into
//!   the log, in the same transaction as its events, so even a crash right after the commit
//!   cannot let a retry append twice — the command layer hands back the first events instead;
//! - the first response is kept (`secrets::keep_response`), so a retry gets it byte for byte,
//!   including what the events alone cannot say (an invitation's token).
//!
//! Sign-up, login, joining a queue and accepting an invitation take no key.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use store::log::IdempotencyRecord;

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
        || (path.starts_with("/v1/queues/") && path.ends_with("/join"))
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
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT).await.map_err(|error| {
        if crate::edge::is_body_deadline(&error) {
            ApiError::RequestTimeout
        } else {
            ApiError::TooLarge("the request body is too large".into())
        }
    })?;
    // The caller is its token; a request without one fails authentication in its handler.
    let caller = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|value| secrets::hash_token(&String::from_utf8_lossy(value.as_bytes())))
        .unwrap_or_default();
    let scoped = hex(&Sha256::new()
        .chain_update(caller)
        .chain_update(b"\0")
        .chain_update(&key)
        .finalize());
    let request_hash = hex(&Sha256::new()
        .chain_update(parts.method.as_str())
        .chain_update(b"\0")
        .chain_update(parts.uri.path())
        .chain_update(b"\0")
        .chain_update(&bytes)
        .finalize());
    if let Some((first_hash, status, body)) =
        secrets::find_response(state.backend(), &scoped).await?
    {
        if first_hash != request_hash {
            return Err(ApiError::Invalid(
                "this Idempotency-Key was used for a different request".into(),
            ));
        }
        return Ok(replay(status, body));
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
    let text = String::from_utf8_lossy(&bytes).into_owned();
    secrets::keep_response(
        state.backend(),
        &scoped,
        &request_hash,
        parts.status.as_u16(),
        &text,
    )
    .await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
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
