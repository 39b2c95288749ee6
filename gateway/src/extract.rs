//! Request bodies and paging parameters, parsed with API.md's statuses: a body that is not
//! UTF-8 JSON, or has the wrong types, is 400; a value that is well-formed but invalid is 422
//! (from the domain's value types); a body over the limit is 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ApiError;

/// The largest JSON body any route takes (a message is 10,000 characters, metadata 16 KiB;
/// this leaves room for escapes and the rest of the object).
pub const JSON_BODY_LIMIT: usize = 256 * 1024;

/// A JSON body of type `T`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_failure)?;
        parse_json(&bytes).map(Body)
    }
}

/// Why a body could not be read: over the limit (413), not there by the body deadline (408),
/// or cut off (400).
pub fn body_failure(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    use std::error::Error as _;
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge("the request body is too large".into());
    }
    let mut source = rejection.source();
    while let Some(error) = source {
        if crate::edge::is_body_deadline(error) {
            return ApiError::RequestTimeout;
        }
        source = error.source();
    }
    ApiError::BadRequest("the request body could not be read".into())
}

/// Parses a JSON body; an empty body reads as `{}` so that optional-only bodies may be omitted.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.len() > JSON_BODY_LIMIT {
        return Err(ApiError::TooLarge(format!(
            "a JSON body is at most {JSON_BODY_LIMIT} bytes"
        )));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8".into()))?;
    let text = if text.trim().is_empty() { "{}" } else { text };
    // Every body is an object; serde would otherwise read a struct from an array, field by
    // field in order.
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_str(text).map_err(|error| {
        ApiError::BadRequest(format!(
            "the body is not valid JSON of the expected shape: {error}"
        ))
    })
}

/// `?after=…&limit=…`: the cursor stays a string until the route knows what it is.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub after: Option<String>,
    pub limit: Option<String>,
}

/// A page request: a parsed cursor and a limit (default 100, at most 1,000).
#[derive(Debug, Clone, Copy)]
pub struct Page<C> {
    pub after: Option<C>,
    pub limit: usize,
}

pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1_000;

impl PageQuery {
    pub fn parse<C: std::str::FromStr>(&self) -> Result<Page<C>, ApiError> {
        let after = match self.after.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(
                raw.parse()
                    .map_err(|_| ApiError::BadRequest(format!("{raw:?} is not a cursor here")))?,
            ),
        };
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_PAGE,
            Some(raw) => {
                let limit: i64 = raw
                    .parse()
                    .map_err(|_| ApiError::BadRequest(format!("{raw:?} is not a limit")))?;
                if limit < 1 {
                    return Err(ApiError::BadRequest("limit is at least 1".into()));
                }
                usize::try_from(limit).unwrap_or(MAX_PAGE).min(MAX_PAGE)
            }
        };
        Ok(Page { after, limit })
    }
}

impl Page<uuid::Uuid> {
    /// This page of `items` (oldest first), whose cursor is an item's id: the items after the
    /// one with id `after` (none when no item has it), at most `limit` of them.
    pub fn of<T>(&self, items: Vec<T>, id: impl Fn(&T) -> uuid::Uuid) -> Vec<T> {
        let start = match self.after {
            None => 0,
            Some(after) => items
                .iter()
                .position(|item| id(item) == after)
                .map_or(items.len(), |i| i + 1),
        };
        items.into_iter().skip(start).take(self.limit).collect()
    }
}

/// The query string, with a malformed one answered 400.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Params(value))
            .map_err(|error| ApiError::BadRequest(error.body_text()))
    }
}

/// A path segment that must be a UUID; anything else is unknown (404), as an id that is not
/// there would be.
pub fn path_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// An RFC 3339 time (any offset) or a bare date for its midnight UTC; empty is absent.
pub fn time(
    field: &str,
    raw: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let Some(text) = raw.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Some(time.with_timezone(&chrono::Utc)));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| Some(midnight.and_utc()))
        .ok_or_else(|| ApiError::BadRequest(format!("{field}: {text:?} is not an RFC 3339 time")))
}
