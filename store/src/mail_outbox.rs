//! The messages waiting to be delivered, in a table beside the log (never in it: their links
//! carry secrets). A message is claimed by one sender at a time, on any number of nodes, by a
//! compare-and-set of `claimed_until`; it is deleted once delivered, or when its
//! `deliver_before` has passed.

use crate::dialect::{self, params};
use crate::error::StoreError;
use crate::log::Backend;

pub(crate) const SCHEMA: [&str; 2] = [
    // `body` holds the message's links (secrets) until it is delivered, then the row goes.
    "CREATE TABLE IF NOT EXISTS mail_outbox (
        mail_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        recipient TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        deliver_before BIGINT NOT NULL,
        attempts BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        claimed_until BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (next_attempt_at)",
];

/// A rendered message to queue (times in epoch seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail<'a> {
    pub mail_id: &'a str,
    pub kind: &'a str,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// When it is queued, and due.
    pub created_at: i64,
    pub deliver_before: i64,
}

/// A message to deliver, as the sender takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub mail_id: String,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    pub deliver_before: i64,
}

/// Queues a message, due at once.
pub async fn queue(backend: &Backend, mail: &NewMail<'_>) -> Result<(), StoreError> {
    let sql = "INSERT INTO mail_outbox (mail_id, kind, recipient, subject, body, created_at,
               deliver_before, attempts, next_attempt_at, claimed_until)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $6, 0)";
    let params = params![
        mail.mail_id,
        mail.kind,
        mail.recipient,
        mail.subject,
        mail.body,
        mail.created_at,
        mail.deliver_before,
    ];
    dialect::execute(backend, sql, params).await?;
    Ok(())
}

/// Up to `limit` messages due at `now`, each now claimed by this caller alone until
/// `claimed_until`: another process that read the same row loses the compare-and-set. Messages
/// past `deliver_before` are dropped first; their number comes back beside the claimed ones.
pub async fn claim(
    backend: &Backend,
    now: i64,
    limit: i64,
    claimed_until: i64,
) -> Result<(Vec<Outgoing>, u64), StoreError> {
    let expired = "DELETE FROM mail_outbox WHERE deliver_before <= $1";
    let dropped = dialect::execute(backend, expired, params![now]).await?;
    let due = "SELECT mail_id FROM mail_outbox WHERE next_attempt_at <= $1 AND claimed_until <= $1
               ORDER BY next_attempt_at LIMIT $2";
    let ids: Vec<(String,)> = dialect::fetch_all(backend, due, params![now, limit]).await?;
    let take = "UPDATE mail_outbox SET claimed_until = $1, attempts = attempts + 1
                WHERE mail_id = $2 AND claimed_until <= $3
                RETURNING mail_id, kind, recipient, subject, body, attempts, deliver_before";
    let mut claimed = Vec::new();
    for (mail_id,) in ids {
        type Row = (String, String, String, String, String, i64, i64);
        let params = params![claimed_until, mail_id, now];
        let row: Option<Row> = dialect::fetch_optional(backend, take, params).await?;
        if let Some((mail_id, kind, recipient, subject, body, attempts, deliver_before)) = row {
            claimed.push(Outgoing {
                mail_id,
                kind,
                recipient,
                subject,
                body,
                attempts,
                deliver_before,
            });
        }
    }
    Ok((claimed, dropped))
}

/// The message was delivered: it (and the link it carried) is forgotten.
pub async fn delivered(backend: &Backend, mail_id: &str) -> Result<(), StoreError> {
    let sql = "DELETE FROM mail_outbox WHERE mail_id = $1";
    dialect::execute(backend, sql, params![mail_id]).await?;
    Ok(())
}

/// The message could not be delivered now: it is due again at `next_attempt_at`.
pub async fn retry(
    backend: &Backend,
    mail_id: &str,
    next_attempt_at: i64,
) -> Result<(), StoreError> {
    let sql = "UPDATE mail_outbox SET next_attempt_at = $1, claimed_until = 0 WHERE mail_id = $2";
    dialect::execute(backend, sql, params![next_attempt_at, mail_id]).await?;
    Ok(())
}

/// The earliest time a queued message is due, if any is queued.
pub async fn next_due(backend: &Backend) -> Result<Option<i64>, StoreError> {
    let sql = "SELECT MIN(CASE WHEN claimed_until > next_attempt_at THEN claimed_until
               ELSE next_attempt_at END) FROM mail_outbox";
    let (due,): (Option<i64>,) = dialect::fetch_one(backend, sql, &[]).await?;
    Ok(due)
}
