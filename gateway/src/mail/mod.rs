//! Email, when the deployment sets `JONO_SMTP_URL` (README, Email): invitations, address
//! confirmations, password resets and customers' transcripts.
//!
//! - [`Mailer`]: the settings (the SMTP URL in lettre's form, the sender, the public URL the
//!   links point at) and the wake-up of the sender.
//! - [`Mail`]: every kind of message Jono sends, rendered to a subject and a plain-text body. A
//!   new kind (the answer to a left message) is one more variant and its text.
//! - [`links`]: the secrets of emailed links (confirmations, resets), kept as hashes.
//! - [`outbox`]: the table the messages wait in until they are delivered, beside the log.
//! - [`sender`]: the background task that delivers them, retrying with back-off.
//!
//! Why a table and not a follower of the log: the links carry secrets (an invitation's token, a
//! reset's), which never enter the log (invariant 9); only their hashes are kept
//! (`crate::secrets`). A route puts the rendered message in the outbox and answers at once; the
//! sender delivers it and deletes the row, so a link stays in the database only until it is
//! sent (and never past its own expiry). Sending never holds up a command's answer.

pub mod links;
pub mod outbox;
pub mod sender;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use tokio::sync::Notify;

use crate::plain;

/// The SMTP settings of `jono serve`.
#[derive(Debug)]
pub struct Mailer {
    /// `JONO_SMTP_URL`, in lettre's form: `smtp://host:port` (plain, or STARTTLS when the server
    /// offers it with `?tls=opportunistic`; `?tls=required` insists), `smtps://user:pass@host`
    /// (TLS from the first byte). Checked at start.
    pub url: String,
    /// `JONO_MAIL_FROM`: the sender, `Name <address>` or `address`.
    pub from: Mailbox,
    /// `JONO_PUBLIC_URL`, without its trailing `/`: where the links in messages point. Never
    /// the request's `Host`, which a caller chooses (a reset link must not lead elsewhere).
    pub public_url: String,
    /// Woken when a message is queued, so the sender need not wait for its next look.
    pub wake: Notify,
}

impl Mailer {
    /// Checks the three settings; a mistake is one line for `jono serve` to print.
    pub fn new(url: &str, from: Option<&str>, public_url: Option<&str>) -> Result<Self, String> {
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|error| format!("JONO_SMTP_URL is not an SMTP URL lettre takes: {error}"))?;
        let from = from
            .filter(|from| !from.trim().is_empty())
            .ok_or("JONO_MAIL_FROM is needed with JONO_SMTP_URL: the sender of Jono's email")?;
        let from: Mailbox = from
            .trim()
            .parse()
            .map_err(|error| format!("JONO_MAIL_FROM is not an address: {error}"))?;
        let public_url = public_url
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
            .ok_or(
                "JONO_PUBLIC_URL (http:// or https://) is needed with JONO_SMTP_URL: \
                 the links in Jono's email point there",
            )?;
        Ok(Self {
            url: url.to_owned(),
            from,
            public_url,
            wake: Notify::new(),
        })
    }

    /// `path` (from `/`) under the public URL.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }
}

/// What the deployment's email is, in the state every route shares: `None` without
/// `JONO_SMTP_URL`, and then every path works as it did before email.
pub type MailSettings = Option<Arc<Mailer>>;

/// A message Jono sends. Each variant carries what its text needs; secrets in links are
/// rendered here and kept only in the outbox's row until it is delivered.
#[derive(Debug, Clone)]
pub enum Mail {
    /// An invitation to join an organization (`POST /v1/orgs/{org}/invitations`).
    Invitation {
        organization: String,
        role: String,
        link: String,
        expires_at: DateTime<Utc>,
    },
    /// A new account's link to confirm its address.
    ConfirmAddress { name: String, link: String },
    /// A password reset's link.
    PasswordReset { link: String, minutes: i64 },
    /// A customer's transcript: its lines, already plain text (notes never among them).
    Transcript {
        organization: String,
        transcript: String,
    },
    /// An agent's answer to a message the customer left (`left_message`).
    Answer {
        organization: String,
        agent: String,
        answer: String,
        /// The customer's own words, quoted below the answer.
        left: String,
    },
}

impl Mail {
    /// The kind, as the outbox and the logs name it (never personal data).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invitation { .. } => "invitation",
            Self::ConfirmAddress { .. } => "confirm-address",
            Self::PasswordReset { .. } => "password-reset",
            Self::Transcript { .. } => "transcript",
            Self::Answer { .. } => "answer",
        }
    }

    /// Until when delivering it is worth trying: a link's own life, or a day.
    pub fn deliver_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Invitation { expires_at, .. } => *expires_at,
            Self::ConfirmAddress { .. } => now + chrono::Duration::seconds(CONFIRM_SECONDS),
            Self::PasswordReset { minutes, .. } => now + chrono::Duration::minutes(*minutes),
            Self::Transcript { .. } | Self::Answer { .. } => now + chrono::Duration::days(1),
        }
    }

    /// The subject and the plain-text body.
    pub fn render(&self) -> (String, String) {
        match self {
            Self::Invitation {
                organization,
                role,
                link,
                expires_at,
            } => {
                let organization = plain::one_line(organization);
                (
                    format!("You are invited to join {organization} on Jono"),
                    format!(
                        "Hello,\n\nyou are invited to join {organization} on Jono as {role}.\n\n\
                         Accept the invitation here:\n{link}\n\n\
                         The link works until {} UTC. If you did not expect it, ignore this \
                         message.\n",
                        expires_at.format("%Y-%m-%d %H:%M")
                    ),
                )
            }
            Self::ConfirmAddress { name, link } => (
                "Confirm your email address for Jono".to_owned(),
                format!(
                    "Hello {},\n\nconfirm that this address is yours by opening this link:\n\
                     {link}\n\nThe link works once, for {} hours. Until the address is \
                     confirmed your account cannot join an organization by invitation.\n\n\
                     If you did not sign up to Jono, ignore this message.\n",
                    plain::one_line(name),
                    CONFIRM_SECONDS / 3600
                ),
            ),
            Self::PasswordReset { link, minutes } => (
                "Reset your Jono password".to_owned(),
                format!(
                    "Hello,\n\nsomeone (we hope you) asked to reset the password of the Jono \
                     account of this address. Choose a new password here:\n{link}\n\n\
                     The link works once, for {minutes} minutes; your other sessions end when \
                     the password changes. If you did not ask for it, ignore this message: \
                     your password stays as it is.\n"
                ),
            ),
            Self::Transcript {
                organization,
                transcript,
            } => {
                let organization = plain::one_line(organization);
                (
                    format!("Your conversation with {organization}"),
                    format!(
                        "Hello,\n\nhere is the transcript of your conversation with \
                         {organization}, as you asked.\n\n{transcript}"
                    ),
                )
            }
            Self::Answer {
                organization,
                agent,
                answer,
                left,
            } => {
                let organization = plain::one_line(organization);
                let quoted: String = left.lines().map(|line| format!("> {line}\n")).collect();
                (
                    format!("Re: your message to {organization}"),
                    format!(
                        "Hello,\n\n{} of {organization} answered the message you left:\n\n\
                         {answer}\n\nYou wrote:\n{quoted}",
                        plain::one_line(agent)
                    ),
                )
            }
        }
    }
}

/// Queues `mail` for `recipient` and wakes the sender; the caller answers at once.
pub async fn queue(
    state: &crate::state::AppState,
    mailer: &Mailer,
    recipient: &str,
    mail: &Mail,
) -> Result<(), store::error::StoreError> {
    outbox::queue(state.backend(), recipient, mail, Utc::now()).await?;
    mailer.wake.notify_one();
    Ok(())
}

/// How long an address confirmation's link works: 2 days.
pub const CONFIRM_SECONDS: i64 = 48 * 3600;
