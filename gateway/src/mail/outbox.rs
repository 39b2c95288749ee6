//! The messages waiting to be delivered, in a table beside the log (never in it: their links
//! carry secrets). A route queues a rendered message ([`queue`]); the sender claims the due ones
//! ([`claim`]: one process per message, on any number of nodes, by a compare-and-set of
//! `claimed_until`), deletes each once the SMTP server took it ([`delivered`]), or puts it back
//! with a later `next_attempt_at` ([`retry`]). A message whose `deliver_before` has passed is
//! dropped (its link no longer works).

use chrono::{DateTime, Utc};
use store::log::Backend;
use uuid::Uuid;

use super::Mail;
use crate::secrets::on_pool;

const SCHEMA: [&str; 2] = [
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

/// Creates the table if it is missing.
pub async fn migrate(backend: &Backend) -> Result<(), sqlx::Error> {
    for statement in SCHEMA {
        on_pool!(backend, pool => sqlx::query(statement).execute(pool).await.map(|_| ()))?;
    }
    Ok(())
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

/// Queues `mail` for `recipient`, due at once.
pub async fn queue(
    backend: &Backend,
    recipient: &str,
    mail: &Mail,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (subject, body) = mail.render();
    let sql = "INSERT INTO mail_outbox (mail_id, kind, recipient, subject, body, created_at,
               deliver_before, attempts, next_attempt_at, claimed_until)
               VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $6, 0)";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(Uuid::new_v4().to_string())
        .bind(mail.kind())
        .bind(recipient)
        .bind(subject)
        .bind(body)
        .bind(now.timestamp())
        .bind(mail.deliver_before(now).timestamp())
        .execute(pool)
        .await
        .map(|_| ()))
}

/// How long a claim keeps a message from other senders: longer than a delivery may take.
pub const CLAIM_SECONDS: i64 = 120;

/// Up to `limit` due messages, each now claimed by this caller alone: another process that read
/// the same row loses the compare-and-set on `claimed_until`. Messages past `deliver_before`
/// are dropped first; their number comes back beside the claimed ones.
pub async fn claim(
    backend: &Backend,
    now: i64,
    limit: i64,
) -> Result<(Vec<Outgoing>, u64), sqlx::Error> {
    let expired = "DELETE FROM mail_outbox WHERE deliver_before <= $1";
    let dropped = on_pool!(backend, pool => sqlx::query(expired)
        .bind(now)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    let due = "SELECT mail_id FROM mail_outbox WHERE next_attempt_at <= $1 AND claimed_until <= $1
               ORDER BY next_attempt_at LIMIT $2";
    let ids: Vec<(String,)> = on_pool!(backend, pool => sqlx::query_as(due)
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
    let take = "UPDATE mail_outbox SET claimed_until = $1, attempts = attempts + 1
                WHERE mail_id = $2 AND claimed_until <= $3
                RETURNING mail_id, kind, recipient, subject, body, attempts, deliver_before";
    let mut claimed = Vec::new();
    for (mail_id,) in ids {
        type Row = (String, String, String, String, String, i64, i64);
        let row: Option<Row> = on_pool!(backend, pool => sqlx::query_as(take)
            .bind(now + CLAIM_SECONDS)
            .bind(&mail_id)
            .bind(now)
            .fetch_optional(pool)
            .await)?;
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

/// The SMTP server took the message: it (and the link it carried) is forgotten.
pub async fn delivered(backend: &Backend, mail_id: &str) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM mail_outbox WHERE mail_id = $1";
    on_pool!(backend, pool => sqlx::query(sql).bind(mail_id).execute(pool).await.map(|_| ()))
}

/// The message could not be delivered now: it is due again at `next_attempt_at`.
pub async fn retry(
    backend: &Backend,
    mail_id: &str,
    next_attempt_at: i64,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE mail_outbox SET next_attempt_at = $1, claimed_until = 0 WHERE mail_id = $2";
    on_pool!(backend, pool => sqlx::query(sql)
        .bind(next_attempt_at)
        .bind(mail_id)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// The earliest time a queued message is due, if any is queued: when the sender looks next.
pub async fn next_due(backend: &Backend) -> Result<Option<i64>, sqlx::Error> {
    let sql = "SELECT MIN(CASE WHEN claimed_until > next_attempt_at THEN claimed_until
               ELSE next_attempt_at END) FROM mail_outbox";
    let (due,): (Option<i64>,) =
        on_pool!(backend, pool => sqlx::query_as(sql).fetch_one(pool).await)?;
    Ok(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_is_claimed_once_retried_later_and_forgotten_when_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        let backend = store.backend();
        migrate(backend).await.unwrap();
        let now = Utc::now();
        let mail = Mail::PasswordReset {
            link: "https://jono.test/reset/secret".into(),
            minutes: 30,
        };
        queue(backend, "a@example.com", &mail, now).await.unwrap();
        let t = now.timestamp();
        let (first, dropped) = claim(backend, t, 10).await.unwrap();
        assert_eq!((first.len(), dropped), (1, 0));
        assert_eq!(first[0].attempts, 1);
        assert!(first[0].body.contains("https://jono.test/reset/secret"));
        // Claimed: nobody else gets it meanwhile.
        assert!(claim(backend, t, 10).await.unwrap().0.is_empty());
        retry(backend, &first[0].mail_id, t + 5).await.unwrap();
        assert!(claim(backend, t + 4, 10).await.unwrap().0.is_empty());
        assert_eq!(next_due(backend).await.unwrap(), Some(t + 5));
        let (again, _) = claim(backend, t + 5, 10).await.unwrap();
        assert_eq!(again[0].attempts, 2);
        delivered(backend, &again[0].mail_id).await.unwrap();
        assert_eq!(next_due(backend).await.unwrap(), None);
        // A message whose link has expired is dropped, not sent.
        queue(backend, "b@example.com", &mail, now).await.unwrap();
        let (late, dropped) = claim(backend, t + 31 * 60, 10).await.unwrap();
        assert_eq!((late.len(), dropped), (0, 1));
    }
}
