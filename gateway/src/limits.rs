//! Abuse limits (API.md, Limits): token buckets keyed by what they limit (a client address, an
//! email, a customer token). A refused request is answered 429 with `Retry-After`;
//! `JONO_RATE_LIMITS=off` switches them all off for load tests.
//!
//! Every limit holds across all nodes: with the embedded store there is one process and its
//! buckets are in memory; on Postgres the buckets are rows of the shared tables, taken in one
//! atomic statement whichever node asks (`store::cluster`), so two nodes together allow a limit
//! once, not twice. Should Postgres not answer, the node falls back to its own buckets (the
//! command that follows will most likely be refused with 503 anyway). The frames of a socket
//! (typing, signals) are limited per socket, which lives on one node: in memory
//! ([`enforce_socket`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// One limit: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub name: &'static str,
    pub per_second: f64,
    pub burst: f64,
}

/// Joins: 10 a minute per client address.
pub const JOINS: Rate = Rate {
    name: "join",
    per_second: 10.0 / 60.0,
    burst: 10.0,
};
/// Customer messages: 5 a second, bursts of 20, per customer token.
pub const CUSTOMER_MESSAGES: Rate = Rate {
    name: "customer-message",
    per_second: 5.0,
    burst: 20.0,
};
/// Every other customer command (metadata, live metadata, attachments, calls): 2 a second,
/// bursts of 10, per customer token.
pub const CUSTOMER_COMMANDS: Rate = Rate {
    name: "customer-command",
    per_second: 2.0,
    burst: 10.0,
};
/// Typing frames: 2 a second per socket.
pub const TYPING_FRAMES: Rate = Rate {
    name: "typing",
    per_second: 2.0,
    burst: 2.0,
};
/// Signal frames (a call's negotiation): 50 a second per socket.
pub const SIGNAL_FRAMES: Rate = Rate {
    name: "signal",
    per_second: 50.0,
    burst: 50.0,
};
/// Login attempts: 10 a minute per email and per address.
pub const LOGINS: Rate = Rate {
    name: "login",
    per_second: 10.0 / 60.0,
    burst: 10.0,
};
/// Sign-ups: 10 an hour per address.
pub const SIGNUPS: Rate = Rate {
    name: "signup",
    per_second: 10.0 / 3600.0,
    burst: 10.0,
};
/// Password changes: 10 an hour per account.
pub const PASSWORD_CHANGES: Rate = Rate {
    name: "password-change",
    per_second: 10.0 / 3600.0,
    burst: 10.0,
};

/// Codes of two-factor authentication (a login's second step, an enrolment's confirmation,
/// turning it off): 5 a minute per account and per address, so the million codes of a
/// 30-second window cannot be tried.
pub const TWO_FACTOR_CODES: Rate = Rate {
    name: "two-factor-code",
    per_second: 5.0 / 60.0,
    burst: 5.0,
};

/// Address confirmation links asked for again: 3 an hour per account.
pub const CONFIRMATION_LINKS: Rate = Rate {
    name: "confirmation-link",
    per_second: 3.0 / 3600.0,
    burst: 3.0,
};
/// Password resets asked for: 5 an hour per client address and per email (known or not).
pub const PASSWORD_RESETS: Rate = Rate {
    name: "password-reset",
    per_second: 5.0 / 3600.0,
    burst: 5.0,
};
/// Transcripts a customer has emailed: 3 an hour per conversation…
pub const TRANSCRIPT_EMAILS: Rate = Rate {
    name: "transcript-email",
    per_second: 3.0 / 3600.0,
    burst: 3.0,
};
/// …and 10 an hour per client address, so nobody mails strangers in bulk.
pub const TRANSCRIPT_EMAILS_PER_ADDRESS: Rate = Rate {
    name: "transcript-email-address",
    per_second: 10.0 / 3600.0,
    burst: 10.0,
};

/// Messages left when nobody could answer: 5 an hour per client address.
pub const LEFT_MESSAGES: Rate = Rate {
    name: "left-message",
    per_second: 5.0 / 3600.0,
    burst: 5.0,
};

/// Every limit, so `/metrics` shows each one's refusals from the start (at 0).
pub const ALL: [Rate; 14] = [
    JOINS,
    CUSTOMER_MESSAGES,
    CUSTOMER_COMMANDS,
    TYPING_FRAMES,
    SIGNAL_FRAMES,
    LOGINS,
    SIGNUPS,
    PASSWORD_CHANGES,
    TWO_FACTOR_CODES,
    CONFIRMATION_LINKS,
    PASSWORD_RESETS,
    TRANSCRIPT_EMAILS,
    TRANSCRIPT_EMAILS_PER_ADDRESS,
    LEFT_MESSAGES,
];

/// A customer's command other than a message (`CUSTOMER_COMMANDS`); agents are not limited.
pub async fn customer_command(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Customer(customer) => enforce(state, CUSTOMER_COMMANDS, &customer.token_hash).await,
        Caller::Agent(_) => Ok(()),
    }
}

/// Takes one request of `rate` for `key`, across every node, when the deployment's rate limits
/// are on; a refusal is 429 with `Retry-After`.
pub async fn enforce(state: &AppState, rate: Rate, key: &str) -> Result<(), ApiError> {
    if !state.settings.rate_limits {
        return Ok(());
    }
    let taken = match state.store.cluster() {
        None => state.limiter.take(rate, key),
        // Addresses and emails are personal data: the shared row is keyed by a digest.
        Some(cluster) => match cluster
            .take(
                rate.name,
                &crate::blobs::sha256_hex(key.as_bytes()),
                rate.per_second,
                rate.burst,
            )
            .await
        {
            Ok(taken) => taken,
            Err(error) => {
                tracing::warn!(%error, limit = rate.name, "the shared rate limit is unreachable; counting on this node");
                state.limiter.take(rate, key)
            }
        },
    };
    taken.map_err(|retry_after_seconds| refused(state, rate, retry_after_seconds))
}

/// Takes one frame of `rate` for the socket `session` of this process.
pub fn enforce_socket(state: &AppState, rate: Rate, session: u64) -> Result<(), ApiError> {
    if !state.settings.rate_limits {
        return Ok(());
    }
    state
        .limiter
        .take(rate, &format!("socket:{session}"))
        .map_err(|retry_after_seconds| refused(state, rate, retry_after_seconds))
}

/// A refusal of `rate`: counted in `/metrics`, answered 429.
fn refused(state: &AppState, rate: Rate, retry_after_seconds: u64) -> ApiError {
    state
        .metrics
        .rate_limited
        .with_label_values(&[rate.name])
        .inc();
    ApiError::RateLimited {
        retry_after_seconds,
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<(&'static str, String), Bucket>>,
}

/// Buckets idle this long are full again and can be forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);
const SWEEP_ABOVE: usize = 10_000;

impl Limiter {
    /// Takes one token for `key` under `rate`; `Err(seconds)` says when to try again.
    pub fn take(&self, rate: Rate, key: &str) -> Result<(), u64> {
        self.take_at(rate, key, Instant::now())
    }

    fn take_at(&self, rate: Rate, key: &str, now: Instant) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(()); // A poisoned lock must not lock everyone out.
        };
        if buckets.len() > SWEEP_ABOVE {
            buckets.retain(|_, bucket| now.duration_since(bucket.at) < FORGET_AFTER);
        }
        let bucket = buckets
            .entry((rate.name, key.to_owned()))
            .or_insert(Bucket {
                tokens: rate.burst,
                at: now,
            });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(rate.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate.per_second;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_refilled() {
        let limiter = Limiter::default();
        let start = Instant::now();
        for _ in 0..10 {
            assert!(limiter.take_at(JOINS, "1.2.3.4", start).is_ok());
        }
        let refused = limiter.take_at(JOINS, "1.2.3.4", start);
        assert_eq!(refused, Err(6), "one join every 6 seconds after the burst");
        // Another address has its own bucket.
        assert!(limiter.take_at(JOINS, "5.6.7.8", start).is_ok());
        // Six seconds later there is room for one more.
        let later = start + Duration::from_secs(6);
        assert!(limiter.take_at(JOINS, "1.2.3.4", later).is_ok());
        assert!(limiter.take_at(JOINS, "1.2.3.4", later).is_err());
    }

    #[test]
    fn customer_messages_allow_twenty_at_once_and_five_a_second() {
        let limiter = Limiter::default();
        let start = Instant::now();
        for _ in 0..20 {
            assert!(limiter.take_at(CUSTOMER_MESSAGES, "t", start).is_ok());
        }
        assert!(limiter.take_at(CUSTOMER_MESSAGES, "t", start).is_err());
        let later = start + Duration::from_secs(1);
        for _ in 0..5 {
            assert!(limiter.take_at(CUSTOMER_MESSAGES, "t", later).is_ok());
        }
        assert!(limiter.take_at(CUSTOMER_MESSAGES, "t", later).is_err());
    }
}
