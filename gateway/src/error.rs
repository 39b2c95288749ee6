//! The one error type at the edge (STYLE.md habit 6). Every refusal becomes
//! `application/problem+json` (RFC 9457) with the status API.md gives it; a 5xx logs its detail
//! and never returns it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{ErrorKind, Refusal};
use schemars::JsonSchema;
use serde::Serialize;
use store::command::CommandError;

/// An error, as every route writes it (RFC 9457).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Problem {
    /// `about:blank`: the status says what kind of error it is.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for a person to read. A 5xx never says more than that it happened.
    pub detail: String,
}

impl Problem {
    /// The problem of `status`, with `detail`.
    pub fn new(status: StatusCode, detail: String) -> Self {
        Self {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
        }
    }

    /// Its JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is needed")]
    Unauthorized,
    /// A login whose email and password do not make a pair: 401, saying so.
    #[error("the email or the password is not right")]
    WrongCredentials,
    /// A sign-in step refused (a login's wrong or expired second step): 401, saying why.
    #[error("{0}")]
    SignInRefused(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("too many requests")]
    RateLimited { retry_after_seconds: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// A service the request needed (an identity provider) did not answer as it should: 502.
    #[error("{0}")]
    Upstream(String),
    /// Too much memory-hungry work at once (password hashing): 503 with `Retry-After`, whatever
    /// `JONO_RATE_LIMITS` says.
    #[error("the server is busy; try again shortly")]
    Busy,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::WrongCredentials | Self::SignInRefused(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The domain's refusal, mapped by its kind.
    pub fn refused(refusal: &impl Refusal) -> Self {
        let detail = refusal.to_string();
        match refusal.kind() {
            ErrorKind::Invalid => Self::Invalid(detail),
            ErrorKind::Conflict => Self::Conflict(detail),
            ErrorKind::NotFound => Self::NotFound,
            ErrorKind::Forbidden => Self::Forbidden(detail),
            ErrorKind::TooLarge => Self::TooLarge(detail),
        }
    }
}

impl<E: Refusal> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        Self::from_command(error, |refusal| Self::refused(&refusal))
    }
}

impl ApiError {
    /// A command's failure; `refused` answers the domain's refusal.
    pub fn from_command<E>(error: CommandError<E>, refused: impl FnOnce(E) -> Self) -> Self {
        match error {
            CommandError::Rejected(refusal) => refused(refusal),
            CommandError::Unavailable(reason) => Self::Unavailable(reason),
            CommandError::IdempotencyMismatch => {
                Self::Invalid("this Idempotency-Key was used for a different request".to_owned())
            }
            CommandError::Conflict => {
                Self::Unavailable("too much contention on one stream; try again".to_owned())
            }
            CommandError::Corrupt(reason) => Self::Internal(reason),
        }
    }
}

/// A well-formed value the rules refuse: 422 with the reason.
pub fn invalid(error: impl std::fmt::Display) -> ApiError {
    ApiError::Invalid(error.to_string())
}

/// A value the domain would not take: 413 for one over its size limit (metadata's 16 KiB),
/// 422 for the rest.
impl From<domain::values::InvalidValue> for ApiError {
    fn from(error: domain::values::InvalidValue) -> Self {
        match error {
            domain::values::InvalidValue::TooLarge { .. } => Self::TooLarge(error.to_string()),
            other => Self::Invalid(other.to_string()),
        }
    }
}

impl From<store::error::StoreError> for ApiError {
    fn from(error: store::error::StoreError) -> Self {
        match error {
            store::error::StoreError::Corrupt(reason) => Self::Internal(reason),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "something went wrong on our side; it has been logged".to_owned()
            }
            Self::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                "the store is unavailable; try again shortly".to_owned()
            }
            other => other.to_string(),
        };
        let body = Problem::new(status, detail).to_json();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            Self::RateLimited {
                retry_after_seconds,
            } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_seconds.max(1)),
                );
            }
            Self::Unavailable(_) | Self::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<projections::QueryError> for ApiError {
    fn from(error: projections::QueryError) -> Self {
        match error {
            projections::QueryError::Sql(error) => {
                Self::Unavailable(store::error::StoreError::from(error).to_string())
            }
            projections::QueryError::Corrupt(reason) => Self::Internal(reason),
        }
    }
}

/// A read that several requests joined (`store::gathered`): each answers its failure.
impl From<store::gathered::Unread<projections::QueryError>> for ApiError {
    fn from(unread: store::gathered::Unread<projections::QueryError>) -> Self {
        match unread {
            store::gathered::Unread::Failed(error) => match &*error {
                projections::QueryError::Sql(error) => Self::Unavailable(error.to_string()),
                projections::QueryError::Corrupt(reason) => Self::Internal(reason.clone()),
            },
            store::gathered::Unread::Lost => Self::Internal("a gathered read panicked".into()),
        }
    }
}
