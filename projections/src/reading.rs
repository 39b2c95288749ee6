//! Reading the read models' rows back: the error of a read-model question, and the decoding
//! of the ids, times and JSON the projections store as text and integers, and the page size.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A read-model query failed, or a row did not hold what the projection writes.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("a read model holds an unreadable value: {0}")]
    Corrupt(String),
}

pub(crate) type Result<T> = std::result::Result<T, QueryError>;

pub(crate) fn id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| QueryError::Corrupt(format!("id {text:?}: {e}")))
}

pub(crate) fn opt_id(text: Option<&str>) -> Result<Option<Uuid>> {
    text.map(id).transpose()
}

pub(crate) fn time(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| QueryError::Corrupt(format!("time {micros}")))
}

pub(crate) fn opt_time(micros: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    micros.map(time).transpose()
}

/// A domain enum from the text a projection wrote of it (the enum's serde name): unknown text
/// is a corrupt row.
pub(crate) fn named<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|e| QueryError::Corrupt(format!("{text:?}: {e}")))
}

pub(crate) fn json(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| QueryError::Corrupt(format!("json: {e}")))
}

/// The most rows one page holds (API.md: a larger `limit` is treated as 1,000).
pub const MAX_PAGE: i64 = 1_000;

pub(crate) fn page(limit: i64) -> i64 {
    limit.clamp(1, MAX_PAGE)
}
