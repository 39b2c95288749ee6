//! Attachments: uploading a file to a conversation, and serving it through its signed URL.
//!
//! An upload is read as a stream and refused (413) as soon as it passes 10 MiB, so a large
//! body never sits in memory whole. Its type is sniffed from the bytes (`blobs::sniff`), its
//! bytes are kept durably, and only then is `UploadAttachment` run: the log never names bytes
//! that are not there. The domain holds the limits (10 MiB a file, 100 MiB a conversation) and
//! refuses an attachment of another conversation in a message (422).
//!
//! A signed URL needs no token. A wrong, tampered or expired one is 404, as an unknown id is:
//! a guess learns nothing. What is served can never run in our origin: raster images inline,
//! everything else as a download, always `nosniff` and a CSP that allows nothing and sandboxes.

use std::sync::Arc;

use crate::routes::conversations::wire::{Attachment, UploadRequest};
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use domain::conversation::{
    AttachmentRef, Conversation as ConversationStream, ConversationCommand, ConversationError,
    ConversationEvent, ATTACHMENT_MAX_BYTES,
};
use domain::values::FileName;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::access;
use crate::auth::Caller;
use crate::blobs::{self, BlobError};
use crate::error::ApiError;
use crate::extract::path_id;
use crate::idempotency::IdempotencyKey;
use crate::limits;
use crate::openapi::{Route, Routes};
use crate::state::AppState;
use crate::workflow::{self, context};

/// The largest upload body: one file of 10 MiB and room for its multipart framing. Above it
/// axum's own limit answers, and the route maps that to 413 as well.
pub const UPLOAD_BODY_LIMIT: usize = 11 * 1024 * 1024;

/// What an attachment is served with, whatever it is: no sniffing, no scripts, no plugins, no
/// same-origin rights even if a browser did render it.
pub const ATTACHMENT_CSP: &str = "default-src 'none'; sandbox";

pub fn routes() -> Routes {
    Routes::new("conversations")
        .route(
            Route::post("/v1/conversations/{c}/attachments", upload)
                .id("upload")
                .summary("Upload a file")
                .describe(
                    "Multipart with one file part. 413 over 10 MiB, or over 100 MiB for the \
                     conversation.",
                )
                .body_as::<UploadRequest>("multipart/form-data")
                .returns::<Attachment>(201, "The attachment, with a signed URL.")
                .map_handler(|upload| upload.layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT))),
        )
        .route(
            Route::get("/v1/attachments/{id}", download)
                .id("attachment")
                .summary("An attachment's file, by its signed URL")
                .public()
                .describe(
                    "The URL an upload or a message gives; it needs no token and expires in 1 \
                     hour (404 after). Raster images inline, everything else as a download; \
                     always `nosniff` and a sandboxing CSP.",
                )
                .query(
                    "expires",
                    json!({"type": "string"}),
                    "Part of the signed URL.",
                )
                .query("sig", json!({"type": "string"}), "Part of the signed URL.")
                .returns_as(
                    200,
                    "The file.",
                    "*/*",
                    json!({"type": "string", "contentMediaType": "application/octet-stream"}),
                ),
        )
}

// ---- uploading ----

/// The one file of an upload, as sent.
struct Upload {
    file_name: String,
    bytes: Vec<u8>,
}

fn body_too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "an upload is at most {UPLOAD_BODY_LIMIT} bytes with its framing"
    ))
}

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        body_too_large()
    } else if crate::edge::is_body_deadline(&error) {
        ApiError::RequestTimeout
    } else {
        ApiError::BadRequest(format!(
            "the multipart body is malformed: {}",
            error.body_text()
        ))
    }
}

fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "an attachment is at most {ATTACHMENT_MAX_BYTES} bytes"
    ))
}

/// Reads the parts of the body and keeps the one file (a part with a file name); other parts
/// are skipped. A second file, or none, is 400; a file over the limit is 413 the moment its
/// limit + 1st byte arrives.
async fn read_one_file(multipart: &mut Multipart) -> Result<Upload, ApiError> {
    let limit = usize::try_from(ATTACHMENT_MAX_BYTES).unwrap_or(usize::MAX);
    let mut upload: Option<Upload> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            continue;
        };
        if upload.is_some() {
            return Err(ApiError::BadRequest("an upload carries one file".into()));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > limit {
                drop(field);
                drain(multipart).await;
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        upload = Some(Upload { file_name, bytes });
    }
    upload.ok_or_else(|| ApiError::BadRequest("the upload has no file part".into()))
}

/// Reads what is left of a refused body (at most the route's body limit), so the client, still
/// sending, reads our 413 instead of a reset connection.
async fn drain(multipart: &mut Multipart) {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

fn blob_error(error: BlobError) -> ApiError {
    ApiError::Unavailable(error.to_string())
}

/// An attachment as the contract shows it, with a URL good for an hour.
fn attachment_view(state: &AppState, attachment: &AttachmentRef) -> Attachment {
    Attachment {
        attachment_id: attachment.attachment_id,
        name: attachment.name.as_str().to_owned(),
        size: attachment.size,
        content_type: attachment.content_type.clone(),
        url: state
            .signer
            .url(attachment.attachment_id, Utc::now().timestamp()),
    }
}

async fn upload(
    State(state): State<AppState>,
    Path(c): Path<String>,
    caller: Caller,
    key: Option<Extension<IdempotencyKey>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<impl IntoResponse, ApiError> {
    // Who may upload, how often, and whether the conversation still takes files are settled
    // before a byte of the body is read (the conversation's stream decides again at the end).
    limits::customer_command(&state, &caller).await?;
    let conversation = access::conversation(&state, &caller, path_id(&c)?).await?;
    if conversation.ended_at.is_some() {
        return Err(ApiError::refused(&ConversationError::ConversationEnded));
    }
    // A body announced as too large is refused before it is read, so the client, which may
    // wait for an answer before sending, hears 413 rather than a closed connection. A body
    // that does not announce its length meets the same limit while it streams.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > UPLOAD_BODY_LIMIT as u64) {
        return Err(body_too_large());
    }
    let mut multipart =
        multipart.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let upload = read_one_file(&mut multipart).await?;
    if upload.bytes.is_empty() {
        return Err(ApiError::Invalid("the file is empty".into()));
    }
    let name = FileName::parse(blobs::clean_file_name(&upload.file_name))
        .map_err(|error| ApiError::Invalid(error.to_string()))?;
    let bytes = Arc::new(upload.bytes);
    let (sha256, content_type) = {
        let bytes = Arc::clone(&bytes);
        tokio::task::spawn_blocking(move || (blobs::sha256_hex(&bytes), blobs::sniff(&bytes)))
            .await
            .map_err(|error| ApiError::Internal(format!("reading an upload: {error}")))?
    };
    let attachment = AttachmentRef {
        attachment_id: Uuid::new_v4(),
        name,
        size: u64::try_from(bytes.len()).map_err(|_| too_large())?,
        content_type: content_type.to_owned(),
        sha256,
    };
    let id = attachment.attachment_id;
    state.blobs.put(id, bytes).await.map_err(blob_error)?;
    let command = ConversationCommand::UploadAttachment {
        attachment,
        by: super::conversations::author_of(&state, &caller, &conversation).await?,
    };
    let ctx = context(Some(&caller), key.as_deref());
    let executed =
        match workflow::run::<ConversationStream>(&state, conversation.id, command, &ctx).await {
            Ok(executed) => executed,
            Err(error) => {
                // A refusal appended nothing: the bytes name nothing and go. When the store
                // failed the event may be in, so they stay (an orphan at worst).
                if error.status().is_client_error() {
                    forget(&state, id).await;
                }
                return Err(error);
            }
        };
    // A retry under the same Idempotency-Key gets the first upload's event back: answer with
    // that attachment and drop this request's copy of the bytes.
    let uploaded = executed
        .typed
        .iter()
        .find_map(|event| match event {
            ConversationEvent::AttachmentUploaded { attachment, .. } => Some(attachment),
            _ => None,
        })
        .ok_or_else(|| ApiError::Internal("an upload without its event".into()))?;
    if uploaded.attachment_id != id {
        forget(&state, id).await;
    }
    Ok((StatusCode::CREATED, Json(attachment_view(&state, uploaded))))
}

async fn forget(state: &AppState, id: Uuid) {
    if let Err(error) = state.blobs.delete(id).await {
        tracing::warn!(%id, %error, "could not delete the bytes of a refused upload");
    }
}

// ---- serving ----

#[derive(Deserialize)]
struct Signature {
    expires: Option<String>,
    sig: Option<String>,
}

/// `GET /v1/attachments/{id}?expires=…&sig=…`: the file, to whoever holds a live URL.
async fn download(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    signature: Result<Query<Signature>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(&raw_id)?;
    let Ok(Query(signature)) = signature else {
        return Err(ApiError::NotFound);
    };
    let (Some(expires), Some(sig)) = (signature.expires, signature.sig) else {
        return Err(ApiError::NotFound);
    };
    let expires: i64 = expires.parse().map_err(|_| ApiError::NotFound)?;
    let now = Utc::now().timestamp();
    if !state.signer.verify(id, expires, &sig, now) {
        return Err(ApiError::NotFound);
    }
    let attachment = projections::messages::read::attachment(state.backend(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // Its customer was erased: the bytes are gone, and so is the file.
    if attachment.name == domain::values::ERASED {
        return Err(ApiError::NotFound);
    }
    let bytes = state
        .blobs
        .get(id)
        .await
        .map_err(blob_error)?
        .ok_or_else(|| ApiError::Internal(format!("the bytes of attachment {id} are missing")))?;
    let bytes = tokio::task::spawn_blocking(move || {
        let matches = blobs::sha256_hex(&bytes) == attachment.sha256;
        (bytes, matches)
    })
    .await
    .map_err(|error| ApiError::Internal(format!("reading an attachment: {error}")))?;
    let (bytes, matches) = bytes;
    if !matches {
        return Err(ApiError::Internal(format!(
            "the bytes of attachment {id} differ from their SHA-256"
        )));
    }
    let inline = blobs::is_raster_image(&attachment.content_type);
    let disposition = blobs::content_disposition(inline, &attachment.name);
    let disposition = HeaderValue::from_str(&disposition)
        .map_err(|error| ApiError::Internal(format!("a Content-Disposition: {error}")))?;
    // A browser may keep it while the URL works, and no longer.
    let cache = format!("private, max-age={}", (expires - now).max(0));
    let cache = HeaderValue::from_str(&cache)
        .map_err(|error| ApiError::Internal(format!("a Cache-Control: {error}")))?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(blobs::served_type(&attachment.content_type)),
    );
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(ATTACHMENT_CSP),
    );
    headers.insert(header::CACHE_CONTROL, cache);
    Ok(response)
}
