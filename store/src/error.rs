//! The store's errors: one type for opening and reading, one for appending.

use std::path::PathBuf;

/// Opening or reading the store failed. The `Display` is one line meant for an operator, and
/// never contains a password from a database URL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the data directory {}: {reason}", path.display())]
    DataDir { path: PathBuf, reason: String },
    #[error("the database URL is not valid: {0}")]
    BadDatabaseUrl(String),
    #[error("cannot reach Postgres at {at}: {reason}")]
    PostgresUnreachable { at: String, reason: String },
    #[error("cannot prepare the event store schema: {0}")]
    Migration(String),
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    #[error("a stored event is unreadable: {0}")]
    Corrupt(String),
}

/// Why an append was refused. Nothing of a refused request is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// A stream's current version is not the expected one; the command layer reloads and retries.
    #[error("a stream moved on since it was read")]
    Conflict,
    /// The idempotency key is already recorded (by an earlier or a concurrent request).
    #[error("the idempotency key is already recorded")]
    DuplicateIdempotencyKey,
    /// The store cannot take writes now (down, disk full, read-only); the gateway answers 503.
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    /// The request contradicts itself (an event for a stream without an expected version,
    /// sequences that are not contiguous, a reused event id): a bug in the caller.
    #[error("invalid append request: {0}")]
    Invalid(String),
}

/// A short, lower-case reason for an IO error, without the "(os error N)" noise.
pub(crate) fn describe_io(error: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match error.kind() {
        K::PermissionDenied => "permission denied".into(),
        K::NotFound => "not found".into(),
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::TimedOut => "timed out".into(),
        K::AlreadyExists => "a file is in the way".into(),
        K::NotADirectory => "not a directory".into(),
        K::ReadOnlyFilesystem => "read-only file system".into(),
        K::StorageFull => "no space left on device".into(),
        _ => error.to_string(),
    }
}

/// Turns a sqlx error met while serving (not while opening) into a short reason.
pub(crate) fn describe_sqlx(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) => describe_io(io),
        sqlx::Error::PoolTimedOut => "no database connection available in time".into(),
        sqlx::Error::PoolClosed => "the connection pool is closed".into(),
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Unavailable(describe_sqlx(&error))
    }
}
