//! The outbox relay (invariant 6; API.md, JetStream): every committed event, at least once and
//! in log order, to the JetStream stream `JONO_EVENTS`, on `jono.events.{organization}.{type}`,
//! with `Nats-Msg-Id` = its position (so JetStream drops a repeat within its window) and the
//! body of an agent's WebSocket `event` frame (`ws::full_body`).
//!
//! Every `jono serve` configured with NATS creates or verifies the stream (`/readyz` waits for
//! it); only the holder of the lease `jono-outbox` publishes. The holder follows the log from its
//! checkpoint, waits for each publication's ack before the next, and moves the checkpoint (through
//! the lease's connection) only past what JetStream acknowledged. While NATS is away it retries
//! with back-off; commands never wait on it: they only append to the log.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream, Context};
use serde_json::Value;
use store::event::StoredEvent;
use store::follow::{pause, Follower};
use store::lease::Lease;
use store::log::EventStore;
use tokio::sync::watch;
use uuid::Uuid;

use crate::metrics::Metrics;

/// The stream API.md names.
pub const STREAM: &str = "JONO_EVENTS";
/// The subjects of its messages.
const SUBJECTS: &str = "jono.events.>";
/// The lease of the one publishing process.
const LEASE: &str = "jono-outbox";
/// The holder's checkpoint: the last position JetStream acknowledged.
const CHECKPOINT: &str = "outbox:jetstream";
/// Events read from the log at a time; the checkpoint moves once per batch.
const BATCH: usize = 500;
/// How often a process without the lease tries to take it.
const LEASE_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries while NATS or the store is away.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// `jono.events.{organization_id}.{type}`, with `_` for an event of no organization.
pub fn subject(event: &StoredEvent) -> String {
    let organization = event
        .payload
        .get("organization_id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse::<Uuid>().ok())
        .map_or_else(|| "_".to_owned(), |id| id.to_string());
    format!("jono.events.{organization}.{}", event.event_type)
}

/// Connects to NATS at `url` (in the background: an absent server is retried, not fatal),
/// ensures the stream, then relays `store` under the lease until `shutdown`, reporting into
/// `metrics`. `jono serve` and `jono project` both run it; the lease picks one publisher.
pub async fn run(
    store: EventStore,
    metrics: Arc<Metrics>,
    url: String,
    max_age: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    metrics.nats_configured.set(1);
    let events = metrics.clone();
    let client = match async_nats::ConnectOptions::new()
        .name("jono-outbox")
        .event_callback(move |event| {
            let metrics = events.clone();
            async move {
                match event {
                    async_nats::Event::Connected => metrics.nats_connected.set(1),
                    async_nats::Event::Disconnected => metrics.nats_connected.set(0),
                    _ => {}
                }
            }
        })
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .connect(url.as_str())
        .await
    {
        Ok(client) => client,
        Err(error) => {
            // Only a malformed address gets here; `jono serve` checked it at start.
            tracing::error!(%error, "the outbox relay cannot use the NATS address");
            return;
        }
    };
    let jetstream = jetstream::new(client);
    let mut backoff = Backoff::default();
    loop {
        let ensured = tokio::select! {
            ensured = ensure_stream(&jetstream, max_age) => ensured,
            // A request NATS may never answer must not hold up a stop.
            _ = shutdown.changed() => return,
        };
        match ensured {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, "cannot create or verify the JetStream stream {STREAM}; retrying");
                if backoff.wait(&mut shutdown).await {
                    return;
                }
            }
        }
    }
    metrics.outbox_stream_ready.store(true, Ordering::Relaxed);
    tracing::info!(stream = STREAM, "the JetStream stream exists");
    loop {
        if *shutdown.borrow() {
            return;
        }
        match store.try_lease(LEASE).await {
            Ok(Some(lease)) => {
                tracing::info!("this process publishes the log to JetStream");
                metrics.outbox_holder.set(1);
                relay(&store, &metrics, &jetstream, lease, &mut shutdown).await;
                metrics.outbox_holder.set(0);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot try the outbox lease; retrying"),
        }
        if pause(&mut shutdown, LEASE_RETRY).await {
            return;
        }
    }
}

/// Creates the stream, or finds it as it is (an operator may have tuned its limits), keeping
/// messages for `max_age` at most: JetStream's copies carry personal fields opened, so this age
/// is erasure's horizon there (an erased customer's messages leave the stream by then). A
/// stream found keeping them longer, or forever, is brought down to it.
async fn ensure_stream(jetstream: &Context, max_age: Duration) -> Result<(), String> {
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![SUBJECTS.to_owned()],
        max_age,
        ..Default::default()
    };
    let found = jetstream
        .get_or_create_stream(config.clone())
        .await
        .map_err(|error| error.to_string())?;
    let kept = found.cached_info().config.max_age;
    if kept.is_zero() || kept > max_age {
        let mut lowered = found.cached_info().config.clone();
        lowered.max_age = max_age;
        jetstream
            .update_stream(lowered)
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(
            ?max_age,
            "the JetStream stream keeps events no longer than this now"
        );
    }
    Ok(())
}

/// Publishes the log from the checkpoint while the lease holds; returns when it is lost (to try
/// again) or at shutdown.
async fn relay(
    store: &EventStore,
    metrics: &Metrics,
    jetstream: &Context,
    mut lease: Lease,
    shutdown: &mut watch::Receiver<bool>,
) {
    let position = match store.get_checkpoint(CHECKPOINT).await {
        Ok(position) => position.unwrap_or(0),
        Err(error) => {
            tracing::warn!(%error, "the outbox relay cannot read its checkpoint");
            return;
        }
    };
    metrics.outbox_position.set(position);
    let mut feed = Follower::new("outbox relay", store, position)
        .batch(BATCH)
        .idle(MAX_BACKOFF);
    let mut backoff = Backoff::default();
    while let Some(batch) = feed.next_batch(shutdown).await {
        if batch.is_empty() {
            metrics.outbox_lag.set(0);
            // Idle: make sure the lease is still ours (a lost connection lost it).
            if !lease.held().await {
                tracing::warn!("the outbox lease was lost");
                return;
            }
            continue;
        }
        for event in &batch {
            // In log order: the next only once JetStream acknowledged this one.
            let mut failing = false;
            loop {
                let error = tokio::select! {
                    published = publish(jetstream, event) => match published {
                        Ok(()) => break,
                        Err(error) => error,
                    },
                    // An ack NATS may never send must not hold up a stop.
                    _ = shutdown.changed() => return,
                };
                if !failing {
                    tracing::warn!(position = event.position, %error, "cannot publish to JetStream; retrying");
                    failing = true;
                }
                if backoff.wait(shutdown).await {
                    return;
                }
            }
            if failing {
                tracing::info!(position = event.position, "publishing to JetStream again");
            }
            backoff = Backoff::default();
            metrics.outbox_position.set(event.position);
        }
        let position = feed.position();
        if let Err(error) = lease.set_checkpoint(CHECKPOINT, position).await {
            tracing::warn!(%error, "the outbox relay lost its lease (cannot save its checkpoint)");
            return;
        }
        if let Ok(head) = store.head().await {
            metrics.outbox_lag.set(head.saturating_sub(position).max(0));
        }
    }
}

/// One event to JetStream, answered once the stream has stored it.
async fn publish(jetstream: &Context, event: &StoredEvent) -> Result<(), String> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        event.position.to_string(),
    );
    let body = serde_json::to_vec(&crate::ws::full_body(event)).map_err(|e| e.to_string())?;
    let ack = jetstream
        .publish_with_headers(subject(event), headers, body.into())
        .await
        .map_err(|error| error.to_string())?;
    ack.await.map(|_| ()).map_err(|error| error.to_string())
}

/// Doubling waits from 100 ms up to [`MAX_BACKOFF`].
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(100))
    }
}

impl Backoff {
    /// Waits the current delay and doubles it; true when shutdown came first.
    async fn wait(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let delay = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        pause(shutdown, delay).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: Value) -> StoredEvent {
        StoredEvent {
            position: 7,
            event_id: Uuid::new_v4(),
            aggregate_type: "Conversation".into(),
            aggregate_id: "c".into(),
            sequence: 1,
            event_type: "MessageSent".into(),
            event_version: "1".into(),
            payload,
            actor: None,
            recorded_at: chrono::Utc::now(),
            idempotency_key: None,
        }
    }

    #[test]
    fn the_subject_names_the_organization_or_none() {
        let org = Uuid::new_v4();
        let with = event(serde_json::json!({ "organization_id": org.to_string() }));
        assert_eq!(subject(&with), format!("jono.events.{org}.MessageSent"));
        assert_eq!(
            subject(&event(serde_json::json!({}))),
            "jono.events._.MessageSent"
        );
        // Nothing that is not an id can add a token or a wildcard to the subject.
        let odd = event(serde_json::json!({ "organization_id": "a.>" }));
        assert_eq!(subject(&odd), "jono.events._.MessageSent");
    }
}
