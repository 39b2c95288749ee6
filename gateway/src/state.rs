//! The state every route shares. Cheap to clone: one `Arc`.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::Aggregate;
use domain::organization::Organization;
use projections::conversations::read::Conversation;
use projections::directory::read::AgentSession;
use projections::runtime::Statuses;
use projections::{conversations, directory, QueryError};
use store::command::Commands;
use store::gathered::Gathered;
use store::log::{Backend, EventStore};

use crate::blobs::{Blobs, UrlSigner};
use crate::limits::Limiter;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::presence::Presence;

/// Settings of the HTTP side (API.md, Running).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `JONO_SIGNUP=open|closed`.
    pub signup_open: bool,
    /// `JONO_RATE_LIMITS=on|off`.
    pub rate_limits: bool,
    /// A folder with the built web console and widget (`--web DIR`, or `web/dist` in the
    /// working folder); without one, the build embedded in the binary (`crate::web::source`).
    pub web_dir: Option<std::path::PathBuf>,
    /// `JONO_TRUSTED_PROXIES`: whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::client::TrustedProxies,
    /// Connection caps and deadlines (`crate::edge`).
    pub edge: crate::edge::EdgeLimits,
    /// `JONO_METRICS_TOKEN`: with it, `GET /metrics` on the main listener needs it as a bearer
    /// token; without it, only a scraper on this host (loopback, not through a proxy) gets it.
    pub metrics_token: Option<String>,
    /// `JONO_NATS_URL`: where the outbox relay publishes the log (Postgres only).
    pub nats_url: Option<String>,
    /// `JONO_NATS_MAX_AGE_HOURS`: how long the JetStream stream keeps an event (erasure's
    /// horizon there).
    pub nats_max_age: std::time::Duration,
    /// The embedded store's data directory, whose filesystem's free space `/metrics` reports.
    pub data_dir: Option<std::path::PathBuf>,
    /// `JONO_SSO_PRIVATE_NETWORKS`: OpenID providers may be on loopback or private networks
    /// (`crate::oidc::client`); off, only public addresses are fetched.
    pub sso_private_networks: bool,
    /// `JONO_SMTP_URL` and its companions (`crate::mail`): `None` sends no email, and every
    /// path works as it did before email.
    pub mail: crate::mail::MailSettings,
    /// `JONO_WEBHOOK_PRIVATE_NETWORKS`: webhook endpoints may be on loopback or private
    /// networks (`crate::webhooks`); off, they are refused at registration and when connecting.
    pub webhook_private_networks: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            signup_open: true,
            rate_limits: true,
            web_dir: None,
            trusted_proxies: crate::client::TrustedProxies::default(),
            edge: crate::edge::EdgeLimits::default(),
            metrics_token: None,
            nats_url: None,
            nats_max_age: std::time::Duration::from_secs(168 * 3600),
            sso_private_networks: false,
            webhook_private_networks: false,
            data_dir: None,
            mail: None,
        }
    }
}

/// What the routes, extractors and background tasks share. axum clones the state for every
/// extractor and middleware of every request (about ten clones a message): as one `Arc` a
/// clone is one counter, where the fields' own `Arc`s and channels were some twenty (3 % of
/// `jono serve`'s samples under 32 writers, clone and drop). Fields read through `Deref`; a
/// field set through `DerefMut` (at start-up, before the state is shared) changes this copy
/// only, as it did when the fields were the state itself (`Arc::make_mut`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub store: EventStore,
    pub commands: Commands,
    pub metrics: Arc<Metrics>,
    /// Where each projector stands; reads wait on it (`consistency`).
    pub projections: Statuses,
    pub settings: Arc<Settings>,
    pub limiter: Arc<Limiter>,
    pub presence: Arc<Presence>,
    /// The live hub, relays and socket closer of the WebSockets.
    pub live: Live,
    /// Where attachments' bytes are kept.
    pub blobs: Blobs,
    /// Signs attachments' URLs.
    pub signer: UrlSigner,
    /// The secret accounts' ids are derived under (`secrets::account_id_secret`).
    pub account_ids: uuid::Uuid,
    /// Makes the keys blocks of visitors hold (`secrets::visitor_key_secret`).
    pub visitors: crate::client::VisitorKeys,
    /// Signs webhook deliveries (`secrets::webhook_signing_seed`).
    pub webhook_key: crate::webhooks::Signer,
    /// Agents' sessions by their tokens' hashes, each with its agent's name and standings
    /// (`auth::authenticate`), read for concurrent requests together.
    pub sessions: Gathered<String, AgentSession, QueryError>,
    /// Conversations by id (`access::conversation`), read for concurrent requests together.
    pub conversations: Gathered<uuid::Uuid, Conversation, QueryError>,
}

/// At most this many keys one gathered read asks.
const KEYS_PER_READ: usize = 64;

/// Lookups of `read` that concurrent requests make, read together (`store::gathered`): on
/// Postgres each statement is a round trip and the server's time to parse, plan and answer it.
fn gathered<K, V, F, Fut>(backend: &Backend, read: F) -> Gathered<K, V, QueryError>
where
    K: Clone + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
    F: Fn(Backend, Vec<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<HashMap<K, V>, QueryError>> + Send + 'static,
{
    let backend = backend.clone();
    Gathered::new(
        KEYS_PER_READ,
        Arc::new(move |keys| Box::pin(read(backend.clone(), keys))),
    )
}

/// How long a read waits for the read models to reach its position before reading anyway.
pub const READ_WAIT: Duration = Duration::from_secs(5);

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }
}

impl AppState {
    pub fn new(store: EventStore) -> Self {
        // The database's own table and a key of this process: `jono serve` puts files in the
        // data directory (with the embedded store) and the kept key in their place.
        let blobs = Blobs::Table(store.backend().clone());
        Self(Arc::new(Shared {
            commands: Commands::new(store.clone()),
            sessions: gathered(store.backend(), |backend, hashes| async move {
                directory::read::agent_sessions(&backend, &hashes, Organization::TYPE).await
            }),
            conversations: gathered(store.backend(), |backend, ids| async move {
                conversations::read::conversations_by_id(&backend, &ids).await
            }),
            store,
            metrics: Arc::default(),
            projections: Statuses::default(),
            settings: Arc::default(),
            limiter: Arc::default(),
            presence: Arc::default(),
            live: Live::default(),
            blobs,
            signer: UrlSigner::ephemeral(),
            // Of this process only; `jono serve` puts the deployment's kept one in its place.
            account_ids: uuid::Uuid::new_v4(),
            visitors: crate::client::VisitorKeys::ephemeral(),
            webhook_key: crate::webhooks::Signer::ephemeral(),
        }))
    }

    pub fn backend(&self) -> &Backend {
        self.store.backend()
    }

    /// Waits until the read models have applied everything up to `position`, so that a read
    /// shows every command answered before it began. The events are durable already; if the
    /// projectors are slow the read goes ahead after the bounded wait, and the lag is logged.
    pub async fn wait_for_read_models(&self, position: i64) {
        if position <= 0 {
            return;
        }
        if let Err(lag) = self.projections.wait_for(position, READ_WAIT).await {
            self.metrics.reads_ahead.inc();
            tracing::warn!(position, %lag, "reading before the read models caught up");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use store::testing::TestDb;
    use tokio::sync::watch;

    use super::AppState;

    /// A read that waits out `READ_WAIT` for the read models says so in `/metrics`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_gone_ahead_of_the_read_models_is_counted() {
        let db = TestDb::sqlite();
        let state = AppState::new(db.open().await);
        let (_stop, shutdown) = watch::channel(false);
        let messages: Vec<Arc<dyn projections::Projection>> = projections::all()
            .into_iter()
            .filter(|projection| projection.name() == "messages")
            .collect();
        let _running = projections::runtime::start_with(
            state.projections.clone(),
            state.store.clone(),
            messages,
            projections::runtime::Options::default(),
            shutdown,
        );
        // Nothing is logged at 0: no wait.
        state.wait_for_read_models(0).await;
        assert_eq!(state.metrics.reads_ahead.get(), 0);
        // The empty log never reaches 1: the read goes ahead after the wait, counted.
        state.wait_for_read_models(1).await;
        assert_eq!(state.metrics.reads_ahead.get(), 1);
    }
}
