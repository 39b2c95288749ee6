//! The messages waiting to be delivered, in a table beside the log (never in it: their links
//! carry secrets; [`store::mail_outbox`]). A route queues a rendered message ([`queue`]); the
//! sender claims the due ones ([`claim`]: one process per message, on any number of nodes, by a
//! compare-and-set of `claimed_until`), deletes each once the SMTP server took it
//! ([`delivered`]), or puts it back with a later `next_attempt_at` ([`retry`]). A message whose
//! `deliver_before` has passed is dropped (its link no longer works).

use chrono::{DateTime, Utc};
use store::error::StoreError;
use store::log::Backend;
use store::mail_outbox::{self as stored, NewMail};
use uuid::Uuid;

use super::Mail;

pub use store::mail_outbox::{delivered, next_due, retry, Outgoing};

/// Queues `mail` for `recipient`, due at once.
pub async fn queue(
    backend: &Backend,
    recipient: &str,
    mail: &Mail,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (subject, body) = mail.render();
    let mail_id = Uuid::new_v4().to_string();
    let new = NewMail {
        mail_id: &mail_id,
        kind: mail.kind(),
        recipient,
        subject: &subject,
        body: &body,
        created_at: now.timestamp(),
        deliver_before: mail.deliver_before(now).timestamp(),
    };
    stored::queue(backend, &new).await
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
) -> Result<(Vec<Outgoing>, u64), StoreError> {
    stored::claim(backend, now, limit, now + CLAIM_SECONDS).await
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
        crate::secrets::migrate(backend).await.unwrap();
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
