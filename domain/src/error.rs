//! What kind of refusal a business rule is. Each aggregate has its own error enum, one variant
//! per rule (STYLE.md habit 3); `kind()` tells the gateway which status answers it, so the
//! mapping to HTTP is written once, in the gateway's `error.rs`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The value is well-formed but invalid (HTTP 422).
    Invalid,
    /// The state forbids it: closed, nobody waiting, ended, taken (HTTP 409).
    Conflict,
    /// It does not exist, or the caller may not know that it does (HTTP 404).
    NotFound,
    /// The caller is known but not allowed (HTTP 403).
    Forbidden,
    /// Over a size limit (HTTP 413).
    TooLarge,
}

/// Implemented by every aggregate's error enum.
pub trait Refusal: std::error::Error {
    fn kind(&self) -> ErrorKind;
}
