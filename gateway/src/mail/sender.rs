//! Delivers the outbox's messages over SMTP, in the background of `jono serve` (every node runs
//! one; the outbox's claims keep two from sending one message). A message that cannot reach the
//! server, or that the server refuses for now (a 4xx reply), is tried again after a doubling wait
//! (1 s up to 5 minutes) until its link expires; one the server refuses for good (a 5xx reply:
//! no such mailbox, say) is dropped at once, as no retry can help. Every failure is logged with
//! the message's kind, never its address or body.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::watch;

use super::outbox::{self, Outgoing};
use super::Mailer;
use crate::state::AppState;

/// Messages claimed at a time.
const BATCH: i64 = 20;
/// The longest wait between two looks at the outbox: messages queued by another node are seen
/// within this.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// The longest wait before a failed message is tried again.
const MAX_BACKOFF_SECONDS: i64 = 300;

/// Delivers until `shutdown` changes.
pub async fn run(state: AppState, mailer: Arc<Mailer>, mut shutdown: watch::Receiver<bool>) {
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(&mailer.url) {
        Ok(builder) => builder.timeout(Some(Duration::from_secs(30))).build(),
        Err(error) => {
            // `jono serve` checked the URL at start; this cannot happen.
            tracing::error!(%error, "the SMTP URL is unusable; no email is sent");
            return;
        }
    };
    state.metrics.mail_configured.set(1);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = Utc::now().timestamp();
        let wait = match outbox::claim(state.backend(), now, BATCH).await {
            Ok((batch, dropped)) => {
                if dropped > 0 {
                    tracing::warn!(dropped, "undelivered email dropped: its link expired");
                    state.metrics.mail_dropped.inc_by(dropped);
                }
                let full = i64::try_from(batch.len()).unwrap_or(BATCH) >= BATCH;
                for message in batch {
                    deliver(&state, &transport, &mailer.from, message).await;
                }
                if full {
                    continue;
                }
                match outbox::next_due(state.backend()).await {
                    Ok(Some(due)) => Duration::from_secs(
                        u64::try_from(due - Utc::now().timestamp()).unwrap_or(0),
                    )
                    .clamp(Duration::from_millis(100), LOOK_EVERY),
                    _ => LOOK_EVERY,
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the email outbox; retrying");
                LOOK_EVERY
            }
        };
        tokio::select! {
            _ = mailer.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One message to the SMTP server: forgotten once taken, or due again after its back-off.
async fn deliver(
    state: &AppState,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    message: Outgoing,
) {
    let sent = match compose(from, &message) {
        Ok(email) => transport.send(email).await.map(|_| ()),
        Err(error) => {
            // An address the log took but SMTP cannot carry: no retry will help.
            tracing::error!(kind = %message.kind, %error, "an email cannot be written; dropped");
            state.metrics.mail_dropped.inc();
            if let Err(error) = outbox::delivered(state.backend(), &message.mail_id).await {
                tracing::warn!(%error, "cannot drop an unwritable email");
            }
            return;
        }
    };
    match sent {
        Ok(()) => {
            state.metrics.mail_sent.inc();
            tracing::info!(kind = %message.kind, attempts = message.attempts, "email sent");
            if let Err(error) = outbox::delivered(state.backend(), &message.mail_id).await {
                // Sent but still queued: it may be sent again once its claim runs out.
                tracing::warn!(%error, "an email was sent but stays in the outbox");
            }
        }
        Err(error) if error.is_permanent() => {
            state.metrics.mail_failures.inc();
            state.metrics.mail_dropped.inc();
            tracing::warn!(kind = %message.kind, %error, "the mail server refused an email for good; dropped");
            if let Err(error) = outbox::delivered(state.backend(), &message.mail_id).await {
                tracing::warn!(%error, "cannot drop a refused email (its claim runs out instead)");
            }
        }
        Err(error) => {
            state.metrics.mail_failures.inc();
            let delay = backoff_seconds(message.attempts);
            tracing::warn!(
                kind = %message.kind,
                attempts = message.attempts,
                retry_in_seconds = delay,
                %error,
                "cannot send an email; it will be tried again"
            );
            let next = Utc::now().timestamp() + delay;
            if let Err(error) = outbox::retry(state.backend(), &message.mail_id, next).await {
                tracing::warn!(%error, "cannot reschedule an email (its claim runs out instead)");
            }
        }
    }
}

/// The wait after the `attempts`-th failure: 1, 2, 4… seconds, at most five minutes.
pub fn backoff_seconds(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    2_i64.pow(exponent).min(MAX_BACKOFF_SECONDS)
}

fn compose(from: &Mailbox, message: &Outgoing) -> Result<Message, String> {
    let to: Mailbox = message
        .recipient
        .parse()
        .map_err(|error: lettre::address::AddressError| error.to_string())?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(message.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(message.body.clone())
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_by_doubling_up_to_five_minutes() {
        let waits: Vec<i64> = (1..=10).map(backoff_seconds).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(backoff_seconds(1_000), 300);
    }
}
