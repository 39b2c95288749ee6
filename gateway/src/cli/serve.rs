//! `jono serve`: from the command line's choices to a serving process — its settings, its
//! place among the nodes, its listeners, the keys kept beside the log — in the order that
//! makes each failure one line and a SIGTERM after the address is known a clean stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use store::log::EventStore;
use tokio::net::TcpListener;

use super::Failure;
use crate::blobs::{Blobs, UrlSigner};
use crate::client::TrustedProxies;
use crate::config::{EdgeArgs, MailArgs, Signup, StoreConfig, Switch};
use crate::edge::EdgeLimits;
use crate::state::{AppState, Settings};
use crate::{secrets, server};

/// The command line's choices for `jono serve` (`Command::Serve`'s fields).
pub(super) struct Serve {
    pub(super) listen: SocketAddr,
    pub(super) signup: Option<Signup>,
    pub(super) rate_limits: Switch,
    pub(super) web: Option<PathBuf>,
    pub(super) nats_url: Option<String>,
    pub(super) nats_max_age_hours: u64,
    pub(super) sso_private_networks: bool,
    pub(super) mail: MailArgs,
    pub(super) webhook_private_networks: bool,
    pub(super) edge: EdgeArgs,
}

/// Serves until SIGTERM (or a fatal error).
pub(super) async fn serve(
    store: EventStore,
    store_config: &StoreConfig,
    serve: Serve,
) -> Result<(), Failure> {
    let (listen, metrics_listen) = (serve.listen, serve.edge.metrics_listen);
    let settings = settings(store_config, serve)?;
    // Several nodes on one database need NATS; without it this node runs alone.
    // Held for as long as it serves.
    let nats = settings.nats_url.is_some();
    if let Some(place) = crate::nodes::join(&store, nats).await.map_err(Failure)? {
        tokio::spawn(crate::nodes::keep(store.clone(), place, nats));
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|error| Failure(format!("cannot listen on {listen}: {}", describe(&error))))?;
    let address = listener
        .local_addr()
        .map_err(|error| Failure(error.to_string()))?;
    tracing::info!(%address, "jono is listening");
    say_where_the_console_is(&settings);
    let metrics_listener = match metrics_listen {
        Some(metrics) => Some(bind_metrics(metrics).await?),
        None => None,
    };
    // Before anyone can know the address: a SIGTERM from then on stops it cleanly.
    let shutdown = server::termination();
    // One plain line on stdout, for people and for scripts that bound port 0.
    println!("jono listening on http://{address}");
    let state = state(store, store_config, settings).await?;
    server::serve(state, listener, metrics_listener, shutdown)
        .await
        .map_err(|error| Failure(format!("the server stopped: {error}")))
}

/// The process's settings, from the command line's choices.
fn settings(store_config: &StoreConfig, serve: Serve) -> Result<Settings, Failure> {
    let Serve {
        signup,
        rate_limits,
        web,
        nats_url,
        nats_max_age_hours,
        sso_private_networks,
        mail,
        webhook_private_networks,
        edge,
        ..
    } = serve;
    let mail = match mail.smtp_url.filter(|url| !url.trim().is_empty()) {
        Some(url) => Some(Arc::new(
            crate::mail::Mailer::new(
                url.trim(),
                mail.mail_from.as_deref(),
                mail.public_url.as_deref(),
            )
            .map_err(Failure)?,
        )),
        None => None,
    };
    let trusted_proxies = TrustedProxies::parse(&edge.trusted_proxies).map_err(Failure)?;
    let embedded = matches!(store_config, StoreConfig::Embedded(_));
    Ok(Settings {
        signup_open: signup.map_or(embedded, |signup| signup == Signup::Open),
        rate_limits: rate_limits == Switch::On,
        web_dir: web.or_else(|| {
            let built = PathBuf::from("web/dist");
            built.join("index.html").exists().then_some(built)
        }),
        trusted_proxies,
        edge: EdgeLimits {
            header_deadline: Duration::from_secs(edge.header_timeout_seconds),
            body_deadline: Duration::from_secs(edge.body_timeout_seconds),
            connections_per_address: usize::try_from(edge.max_connections_per_address)
                .unwrap_or(usize::MAX),
            connections: usize::try_from(edge.max_connections).unwrap_or(usize::MAX),
        },
        metrics_token: edge.metrics_token.filter(|token| !token.is_empty()),
        nats_url: nats_url.filter(|url| !url.trim().is_empty()),
        nats_max_age: Duration::from_secs(nats_max_age_hours.saturating_mul(3600)),
        sso_private_networks,
        mail,
        webhook_private_networks,
        data_dir: match store_config {
            StoreConfig::Embedded(dir) => Some(dir.clone()),
            StoreConfig::Postgres(_) => None,
        },
    })
}

/// Where the console is served from, or that there is none.
fn say_where_the_console_is(settings: &Settings) {
    match crate::web::source(settings.web_dir.as_deref()) {
        Some(crate::web::Source::Folder(folder)) => {
            tracing::info!(folder = %folder.display(), "serving the console from a folder");
        }
        Some(crate::web::Source::Embedded) => {
            tracing::info!("serving the console embedded in this binary");
        }
        None => tracing::warn!(
            "no console: this binary was built without web/dist and no --web DIR was given"
        ),
    }
}

/// The listener of `/metrics` alone (`--metrics-listen`).
async fn bind_metrics(metrics: SocketAddr) -> Result<TcpListener, Failure> {
    let bound = TcpListener::bind(metrics).await.map_err(|error| {
        Failure(format!(
            "cannot listen on {metrics} for /metrics: {}",
            describe(&error)
        ))
    })?;
    tracing::info!(address = %metrics, "serving /metrics");
    Ok(bound)
}

/// The state every route shares, with what is kept beside the log: attachments (files beside
/// the embedded log, the Postgres table otherwise) and the kept keys, so URLs, ids and
/// signatures handed out survive a restart.
async fn state(
    store: EventStore,
    store_config: &StoreConfig,
    settings: Settings,
) -> Result<AppState, Failure> {
    let mut state = AppState::new(store);
    state.settings = Arc::new(settings);
    if let StoreConfig::Embedded(dir) = store_config {
        state.blobs = Blobs::in_data_dir(dir)
            .await
            .map_err(|error| Failure(format!("cannot prepare the attachments folder: {error}")))?;
    }
    let key = secrets::url_signing_key(state.backend())
        .await
        .map_err(|error| Failure(format!("cannot read the signing key: {error}")))?;
    state.signer = UrlSigner::new(key);
    state.account_ids = secrets::account_id_secret(state.backend())
        .await
        .map_err(|error| Failure(format!("cannot read the id secret: {error}")))?;
    let visitors = secrets::visitor_key_secret(state.backend())
        .await
        .map_err(|error| Failure(format!("cannot read the visitor secret: {error}")))?;
    state.visitors = crate::client::VisitorKeys::new(visitors);
    let webhooks = secrets::webhook_signing_seed(state.backend())
        .await
        .map_err(|error| Failure(format!("cannot read the webhook key: {error}")))?;
    state.webhook_key = crate::webhooks::Signer::new(webhooks);
    Ok(state)
}

fn describe(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => "the address is in use".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => "the address is not available here".to_owned(),
        _ => error.to_string(),
    }
}
