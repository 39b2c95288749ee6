//! Webhooks (issue 17): the organization's events, delivered to the endpoints its operators
//! registered (`OrganizationEvent::WebhookEndpointAdded`), signed with the deployment's Ed25519
//! key (README, "Webhooks": the wire format, and how to verify it).
//!
//! One worker per deployment (on Postgres, the holder of the lease `jono-webhooks`; with the
//! embedded store, the one process) follows the log from its checkpoint, as the outbox relay
//! does. For each event it first notes what it must know in log order — endpoints added and
//! removed, conversations that are not customer conversations (whose messages are never
//! delivered) — then owes the event to each endpoint of its organization that asked for its
//! type (`store::webhook_deliveries::owe`, once per endpoint and position, so a repeat after a crash adds
//! nothing), and only then moves the checkpoint: nothing is lost across a restart, and a
//! delivery is at least once. Commands never wait on any of it: they only append to the log.
//!
//! Per endpoint, deliveries go in position order: only the first one owed is tried; a failed
//! one (any answer but 2xx, a time-out, a refused connection) is tried again after an
//! exponential back-off with jitter (from 1 s, at most [`MAX_DELAY`]), and once the next try
//! would fall past the horizon (`JONO_WEBHOOK_RETRY_HOURS`, 24 by default) counted from its
//! first attempt, it is parked. A parked or retrying delivery holds the later ones of its
//! endpoint until it is delivered (an operator's redelivery) or the endpoint is removed.
//! Endpoints are reached through `outbound` (public addresses only unless
//! `JONO_WEBHOOK_PRIVATE_NETWORKS`, the address connected to is the one checked, no redirects).

use std::collections::HashSet;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use domain::organization::WEBHOOK_EVENT_TYPES;
use ed25519_dalek::{Signer as _, SigningKey};
use futures::FutureExt as _;
use serde_json::{json, Value};
use store::event::StoredEvent;
use store::follow::{pause, Follower};
use store::lease::Lease;
use store::webhook_deliveries as table;
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::outbound;
use crate::state::AppState;

/// The lease of the one delivering process of a Postgres deployment.
const LEASE: &str = "jono-webhooks";
/// The worker's place in the log: every event up to it is owed to its endpoints.
pub const CHECKPOINT: &str = "webhooks";
/// How long events that owed nothing may go without the worker saving its place.
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Events read from the log at a time.
const BATCH: usize = 500;
/// How often a process without the lease tries to take it, and how often the holder looks
/// for deliveries that came due (or were redelivered by another node).
const TICK: Duration = Duration::from_secs(1);
/// The first retry comes after about this long.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// Retries are never further apart than this.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// At most this many deliveries in flight at once (to as many endpoints).
const IN_FLIGHT: usize = 32;
/// At most this much of a refusing endpoint's answer is read (shown to operators).
pub const RESPONSE_CAP: usize = 512;
/// The setting that lets endpoints be on loopback and private networks.
pub const PRIVATE_NETWORKS: &str = "JONO_WEBHOOK_PRIVATE_NETWORKS";

/// The worker's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `JONO_WEBHOOK_RETRY_HOURS` (default 24; fractions allowed): how long a delivery is
    /// retried, from its first attempt, before it is parked.
    pub horizon: Duration,
    /// `JONO_WEBHOOK_TIMEOUT_SECONDS` (default 10): an endpoint slower than this failed.
    pub timeout: Duration,
    /// `JONO_WEBHOOK_PRIVATE_NETWORKS`.
    pub private_networks: bool,
}

/// The default request time-out.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default horizon, in hours.
pub const DEFAULT_HORIZON_HOURS: f64 = 24.0;

impl Config {
    pub fn from_env(private_networks: bool) -> Self {
        let number = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|raw| raw.trim().parse::<f64>().ok())
                .filter(|value| value.is_finite() && *value > 0.0)
        };
        let hours = number("JONO_WEBHOOK_RETRY_HOURS").unwrap_or(DEFAULT_HORIZON_HOURS);
        let timeout = number("JONO_WEBHOOK_TIMEOUT_SECONDS")
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_TIMEOUT);
        Self {
            horizon: Duration::from_secs_f64(hours * 3600.0),
            timeout,
            private_networks,
        }
    }
}

/// The deployment's webhook key (its seed is `secrets::webhook_signing_seed`).
#[derive(Clone)]
pub struct Signer(SigningKey);

impl Signer {
    pub fn new(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// A key of this process only (tests of the router alone; `jono serve` sets the kept one).
    pub fn ephemeral() -> Self {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
        Self::new(seed)
    }

    /// The public key, 32 bytes.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The public key as PEM (SubjectPublicKeyInfo, RFC 8410), for tools that want one.
    pub fn public_key_pem(&self) -> String {
        // The DER of SubjectPublicKeyInfo { id-Ed25519 (1.3.101.112) } before the 32 bytes.
        const PREFIX: [u8; 12] = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        let mut der = PREFIX.to_vec();
        der.extend_from_slice(&self.public_key());
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        )
    }

    /// `Jono-Signature`'s value: `t=<unix seconds>,ed25519=<base64 of the signature of
    /// "<t>.<body>">`.
    pub fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(body);
        let signature = self.0.sign(&signed);
        format!(
            "t={timestamp},ed25519={}",
            STANDARD.encode(signature.to_bytes())
        )
    }
}

/// The body of a delivery: the event's position, type, time and organization, and its stored
/// fields as `data` (the log holds no secrets).
pub fn body(event: &StoredEvent) -> Value {
    let organization_id = event
        .payload
        .get("organization_id")
        .cloned()
        .unwrap_or(Value::Null);
    let mut data = event.payload.clone();
    if let Value::Object(map) = &mut data {
        // The stored enum tag repeats `event_type`.
        map.remove("type");
    }
    json!({
        "position": event.position,
        "event_type": event.event_type,
        "occurred_at": event.recorded_at,
        "organization_id": organization_id,
        "data": data,
    })
}

/// The wait before try `attempts + 1` after `attempts` failed ones: doubling from
/// [`FIRST_DELAY`], at most [`MAX_DELAY`], and between half and all of that (jitter, so that
/// endpoints that fail together do not retry together).
pub fn backoff(attempts: i64, jitter: f64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
    let full = FIRST_DELAY
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_DELAY);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Delivers until `shutdown` changes: with the embedded store at once, on Postgres while this
/// process holds the lease (trying to take it meanwhile).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let config = Config::from_env(state.settings.webhook_private_networks);
    let holder = &state.metrics.webhooks_holder;
    if state.store.cluster().is_none() {
        holder.set(1);
        work(&state, &config, None, &mut shutdown).await;
        return;
    }
    loop {
        match state.store.try_lease(LEASE).await {
            Ok(Some(lease)) => {
                tracing::info!("this process delivers the webhooks");
                holder.set(1);
                work(&state, &config, Some(lease), &mut shutdown).await;
                holder.set(0);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot try the webhooks' lease; retrying"),
        }
        if pause(&mut shutdown, TICK).await {
            return;
        }
    }
}

/// What one attempt came to.
struct Attempt {
    endpoint_id: String,
    position: i64,
    outcome: Result<(), String>,
}

/// Follows the log and delivers, until shutdown or the lease is lost.
async fn work(
    state: &AppState,
    config: &Config,
    mut lease: Option<Lease>,
    shutdown: &mut watch::Receiver<bool>,
) {
    let http = outbound::client(config.private_networks, config.timeout, PRIVATE_NETWORKS);
    let http = std::sync::Arc::new(http);
    let position = loop {
        match state.store.get_checkpoint(CHECKPOINT).await {
            Ok(position) => break position.unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, "the webhooks cannot read their checkpoint; retrying");
                if pause(shutdown, TICK).await {
                    return;
                }
            }
        }
    };
    let mut feed = Follower::new("webhooks", &state.store, position)
        .batch(BATCH)
        .idle(TICK);
    let mut flying: JoinSet<Attempt> = JoinSet::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut checked = std::time::Instant::now();
    let mut saved_at = std::time::Instant::now();
    let mut unsaved = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Some(lease) = &mut lease {
            // At most once a tick: the loop turns at every commit.
            if checked.elapsed() >= TICK {
                if !lease.held().await {
                    tracing::warn!("the webhooks' lease was lost");
                    return;
                }
                checked = std::time::Instant::now();
            }
        }
        // What finished meanwhile.
        while let Some(finished) = flying.join_next().now_or_never().flatten() {
            if let Ok(done) = finished {
                busy.remove(&done.endpoint_id);
                record(state, config, done).await;
            }
        }
        if flying.is_empty() {
            // An attempt that panicked left its endpoint marked busy.
            busy.clear();
        }
        // Owe what the log added. The place is saved with what that wrote; after events that
        // owed nothing, at most every `SAVE_EVERY` and when the log goes quiet (a commit to the
        // log's file per batch, each waiting for its flush, competed with the log's appends;
        // such events are only read again after a crash).
        let from = feed.position();
        let owed = owe_next(state, &mut feed).await;
        let save = match owed {
            Ok(Owed::Written) => true,
            Ok(Owed::Read) => {
                unsaved = true;
                saved_at.elapsed() >= SAVE_EVERY
            }
            Ok(Owed::Nothing) => unsaved,
            Err(_) => false,
        };
        if !save && matches!(owed, Ok(Owed::Read)) {
            state.metrics.webhooks_position.set(feed.position());
        }
        let caught_up = match owed {
            Ok(_) if save => {
                saved_at = std::time::Instant::now();
                unsaved = false;
                let reached = feed.position();
                let saved = match &mut lease {
                    Some(lease) => lease.set_checkpoint(CHECKPOINT, reached).await,
                    None => state.store.set_checkpoint(CHECKPOINT, reached).await,
                };
                match saved {
                    Ok(()) => {
                        state.metrics.webhooks_position.set(reached);
                        false
                    }
                    // Through the lease's connection: the lease is lost with it.
                    Err(error) if lease.is_some() => {
                        tracing::warn!(%error, "the webhooks lost their lease (cannot save their checkpoint)");
                        return;
                    }
                    // The embedded store is away (a full disk): what was owed is owed again,
                    // once, at the next turn.
                    Err(error) => {
                        tracing::warn!(%error, "the webhooks cannot save their checkpoint; retrying");
                        feed.seek(from);
                        true
                    }
                }
            }
            Ok(Owed::Read) => false,
            Ok(Owed::Nothing | Owed::Written) => true,
            Err(error) => {
                tracing::warn!(%error, "the webhooks cannot follow the log; retrying");
                feed.seek(from);
                true
            }
        };
        // Try what came due.
        match table::heads(state.backend()).await {
            Ok(heads) => {
                let now = Utc::now().timestamp_millis();
                for head in heads {
                    if flying.len() >= IN_FLIGHT {
                        break;
                    }
                    if head.parked_at.is_some()
                        || head.next_attempt_at > now
                        || busy.contains(&head.endpoint_id)
                    {
                        continue;
                    }
                    busy.insert(head.endpoint_id.clone());
                    let (state, http) = (state.clone(), http.clone());
                    flying.spawn(async move {
                        let outcome = attempt(&state, &http, &head).await;
                        Attempt {
                            endpoint_id: head.endpoint_id,
                            position: head.position,
                            outcome,
                        }
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "the webhooks cannot read their deliveries"),
        }
        if !caught_up {
            continue;
        }
        tokio::select! {
            done = flying.join_next(), if !flying.is_empty() => {
                if let Some(Ok(done)) = done {
                    busy.remove(&done.endpoint_id);
                    record(state, config, done).await;
                }
            }
            stop = feed.wait(shutdown) => {
                if stop {
                    return;
                }
            }
        }
    }
}

/// A finished attempt, into the table: delivered, retried later, or parked.
async fn record(state: &AppState, config: &Config, done: Attempt) {
    let backend = state.backend();
    let attempts = &state.metrics.webhook_attempts;
    let result = match done.outcome {
        Ok(()) => {
            attempts.with_label_values(&["delivered"]).inc();
            table::delivered(backend, &done.endpoint_id, done.position).await
        }
        Err(error) => {
            let now = Utc::now().timestamp_millis();
            let row = match table::delivery(backend, &done.endpoint_id, done.position).await {
                Ok(Some(row)) => row,
                // Removed (with its endpoint) meanwhile.
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "the webhooks cannot read a delivery");
                    return;
                }
            };
            let first = row.first_attempt_at.unwrap_or(now);
            let delay = backoff(row.attempts + 1, rand::random::<f64>());
            let next = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
            let horizon = i64::try_from(config.horizon.as_millis()).unwrap_or(i64::MAX);
            let parked = (next > first.saturating_add(horizon)).then_some(now);
            let outcome = if parked.is_some() { "parked" } else { "failed" };
            attempts.with_label_values(&[outcome]).inc();
            if parked.is_some() {
                tracing::warn!(endpoint = %done.endpoint_id, position = done.position, %error, "a webhook delivery is parked");
            } else {
                tracing::info!(endpoint = %done.endpoint_id, position = done.position, %error, "a webhook delivery failed; it will be retried");
            }
            table::failed(
                backend,
                &done.endpoint_id,
                done.position,
                first,
                next,
                parked,
                &error,
            )
            .await
        }
    };
    if let Err(error) = result {
        tracing::warn!(%error, "the webhooks cannot record a delivery");
    }
}

/// What one turn of [`owe_next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owed {
    /// No event followed.
    Nothing,
    /// Events followed, and none of them was owed to an endpoint or changed the tables.
    Read,
    /// Some event wrote to the tables (a delivery owed, an endpoint, a private conversation).
    Written,
}

/// Notes and owes the events that follow in `feed`.
async fn owe_next(state: &AppState, feed: &mut Follower) -> Result<Owed, String> {
    let batch = feed.read().await.map_err(|error| error.to_string())?;
    if batch.is_empty() {
        return Ok(Owed::Nothing);
    }
    let backend = state.backend();
    let now = Utc::now().timestamp_millis();
    let mut owed = Owed::Read;
    for event in &batch {
        if owe_event(backend, event, now)
            .await
            .map_err(|error| error.to_string())?
        {
            owed = Owed::Written;
        }
    }
    Ok(owed)
}

async fn owe_event(
    backend: &store::log::Backend,
    event: &StoredEvent,
    now: i64,
) -> Result<bool, store::error::StoreError> {
    let field = |name: &str| event.payload.get(name).and_then(Value::as_str);
    let id = |name: &str| field(name).and_then(|raw| raw.parse::<Uuid>().ok());
    match event.event_type.as_str() {
        "WebhookEndpointAdded" => {
            if let (Some(endpoint), Some(organization), Some(url)) =
                (id("endpoint_id"), id("organization_id"), field("url"))
            {
                let types: Vec<String> = event
                    .payload
                    .get("event_types")
                    .and_then(|types| serde_json::from_value(types.clone()).ok())
                    .unwrap_or_default();
                table::add_endpoint(backend, endpoint, organization, url, &types).await?;
            }
            return Ok(true);
        }
        "WebhookEndpointRemoved" => {
            if let Some(endpoint) = id("endpoint_id") {
                table::remove_endpoint(backend, endpoint).await?;
            }
            return Ok(true);
        }
        "ConversationStarted" => {
            // A customer's conversation: a chat, or a left message.
            if !matches!(field("kind"), Some("customer" | "left_message")) {
                if let Some(conversation) = field("conversation_id") {
                    table::note_private_conversation(backend, conversation).await?;
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        _ => {}
    }
    if !WEBHOOK_EVENT_TYPES.contains(&event.event_type.as_str()) {
        return Ok(false);
    }
    let Some(organization) = field("organization_id") else {
        return Ok(false);
    };
    // Channels and direct chats are the agents' own: nothing of theirs is sent out.
    if let Some(conversation) = field("conversation_id") {
        if table::is_private_conversation(backend, conversation).await? {
            return Ok(false);
        }
    }
    let mut owed = false;
    for endpoint in table::endpoints_of(backend, organization).await? {
        if endpoint.event_types.contains(&event.event_type) {
            owed = true;
            table::owe(
                backend,
                &endpoint.endpoint_id,
                event.position,
                organization,
                &event.event_type,
                now,
            )
            .await?;
        }
    }
    Ok(owed)
}

/// One try of one delivery: `Ok` on a 2xx answer.
async fn attempt(
    state: &AppState,
    http: &outbound::Http,
    delivery: &table::Delivery,
) -> Result<(), String> {
    let url = table::endpoint_url(state.backend(), &delivery.endpoint_id)
        .await
        .map_err(|error| error.to_string())?
        .ok_or_else(|| "the endpoint was removed".to_owned())?;
    let event = state
        .store
        .read_positions(&[delivery.position])
        .await
        .map_err(|error| error.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no event at position {}", delivery.position))?;
    let body = serde_json::to_vec(&body(&event)).map_err(|error| error.to_string())?;
    let timestamp = Utc::now().timestamp();
    let signature = state.webhook_key.signature(timestamp, &body);
    let client = http.to(&url).map_err(|refused| refused.to_string())?;
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .header("user-agent", "Jono-Webhooks/1")
        .header("jono-signature", signature)
        .header("jono-position", event.position.to_string())
        .header("jono-event", event.event_type.as_str())
        .body(body)
        .send()
        .await
        .map_err(|error| outbound::error_text(&error))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // What the endpoint said, for the operators: a little of it, never the whole.
    let mut said = Vec::new();
    let mut response = response;
    while said.len() < RESPONSE_CAP {
        match response.chunk().await {
            Ok(Some(chunk)) => said.extend_from_slice(&chunk),
            _ => break,
        }
    }
    said.truncate(RESPONSE_CAP);
    let said = String::from_utf8_lossy(&said);
    Err(format!("{url} answered {status}: {}", said.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn the_back_off_doubles_from_a_second_with_jitter_and_is_capped() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(40, 1.0), MAX_DELAY);
        assert!(backoff(40, 0.3) < MAX_DELAY);
    }

    #[test]
    fn a_signature_verifies_over_the_timestamp_and_the_body() {
        let signer = Signer::new([7; 32]);
        let header = signer.signature(1_700_000_000, b"{\"position\":3}");
        let (t, signature) = header
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(",ed25519="))
            .unwrap();
        assert_eq!(t, "1700000000");
        let key = VerifyingKey::from_bytes(&signer.public_key()).unwrap();
        let signature = Signature::from_slice(&STANDARD.decode(signature).unwrap()).unwrap();
        assert!(key
            .verify(b"1700000000.{\"position\":3}", &signature)
            .is_ok());
        assert!(key
            .verify(b"1700000001.{\"position\":3}", &signature)
            .is_err());
        let pem = signer.public_key_pem();
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"),
            "{pem}"
        );
    }
}

#[cfg(test)]
mod worker_tests {
    use super::*;
    use domain::organization::{Organization, OrganizationCommand};
    use store::command::CommandContext;
    use store::log::Backend;

    async fn sql(state: &AppState, statement: &str) {
        let Backend::Sqlite(pool) = state.backend() else {
            panic!("the embedded store")
        };
        sqlx::query(statement).execute(pool).await.unwrap();
    }

    /// With the embedded store there is no lease to lose: a checkpoint that cannot be saved
    /// for a while (a full disk) is retried, and the worker goes on once it can. (It used to
    /// stop for good until a restart.)
    #[tokio::test]
    async fn the_embedded_worker_outlives_a_checkpoint_it_could_not_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::log::EventStore::open_sqlite(dir.path())
            .await
            .unwrap();
        crate::secrets::migrate(store.backend()).await.unwrap();
        let state = AppState::new(store);
        let (stop, stopped) = watch::channel(false);
        let worker = tokio::spawn(run(state.clone(), stopped));
        // The checkpoints' table is away while the organization and its endpoint are written.
        sql(&state, "ALTER TABLE checkpoints RENAME TO checkpoints_away").await;
        let org = Uuid::new_v4();
        let ctx = CommandContext {
            actor: None,
            idempotency: None,
        };
        let commands = [
            OrganizationCommand::CreateOrganization {
                organization_id: org,
                name: domain::values::Name::parse("Acme").unwrap(),
                owner_id: None,
            },
            OrganizationCommand::AddWebhookEndpoint {
                endpoint_id: Uuid::new_v4(),
                url: "https://hooks.example.com/x".into(),
                event_types: vec!["MessageSent".into()],
                by: None,
            },
        ];
        for command in commands {
            state
                .commands
                .execute::<Organization>(&org.to_string(), command, &(), &ctx)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sql(&state, "ALTER TABLE checkpoints_away RENAME TO checkpoints").await;
        let head = state.store.head().await.unwrap();
        let mut reached = None;
        for _ in 0..100 {
            reached = state.store.get_checkpoint(CHECKPOINT).await.unwrap();
            if reached == Some(head) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(reached, Some(head), "the worker went on");
        stop.send(true).unwrap();
        worker.await.unwrap();
    }
}
